// Package secret reads secrets from files (password_file and the like),
// the one way runner takes secrets besides the environment: never inline
// in a configuration, where they would end up in git.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// ReadFile reads the secret in path for the attribute attr (named in
// errors). A file that group or others may read is refused: a secret
// shared with every local user is not one. One trailing newline (or CRLF),
// as editors add, is dropped; an empty secret is an error. The secret
// itself never appears in an error.
func ReadFile(attr, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", attr, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s %s is not a regular file", attr, path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s is readable by group or others (mode %04o): chmod 600 it", attr, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", attr, err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", attr, path)
	}
	return s, nil
}
