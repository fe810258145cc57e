//go:build !unix

package files

import "io/fs"

// Without device numbers, one_file_system cannot tell file systems apart.
func device(fs.FileInfo) (uint64, bool) { return 0, false }

func readable(string) bool { return true }
