package secret

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want, err     string
	}{
		{"plain", "s3cret", 0o600, "s3cret", ""},
		{"newline", "s3cret\n", 0o400, "s3cret", ""},
		{"crlf", "s3cret\r\n", 0o600, "s3cret", ""},
		{"inner spaces kept", " a b \n", 0o600, " a b ", ""},
		{"group readable", "x", 0o640, "", "readable by group or others (mode 0640): chmod 600 it"},
		{"empty", "\n", 0o600, "", "is empty"},
	} {
		got, err := ReadFile("password_file", write(tc.name, tc.content, tc.mode))
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), tc.content)) {
			t.Errorf("%s: error %v, want %q without the secret", tc.name, err, tc.err)
		}
	}
	if _, err := ReadFile("password_file", dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	if _, err := ReadFile("password_file", filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), "password_file: ") {
		t.Errorf("missing: %v", err)
	}
}
