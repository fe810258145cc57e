//go:build !unix

package nas

import (
	"fmt"
	"io/fs"
)

// fileIDs is unknown where files have no unix owner and device.
func fileIDs(fs.FileInfo) (dev uint64, uid, gid uint32, ok bool) { return 0, 0, 0, false }

func devString(dev uint64) string { return fmt.Sprint(dev) }
