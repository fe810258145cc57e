//go:build !linux

package main

// lutimes is a no-op where utimensat is not available: symlink times are
// then whatever creating them gave.
func lutimes(string, int64) error { return nil }
