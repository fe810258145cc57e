//go:build !unix

package nas

// statfs is unknown where there is no statfs(2).
func statfs(string) (total, free int64, err error) { return -1, -1, nil }
