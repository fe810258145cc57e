package nas

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// mountinfoPath is where the kernel describes this process's mounts. A
// plugin runs in the runner's mount namespace, so it sees what the runner
// sees.
const mountinfoPath = "/proc/self/mountinfo"

// mountEntry is one line of /proc/self/mountinfo (see proc_pid_mountinfo(5)):
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Paths arrive with space, tab, newline and backslash escaped as \ooo.
type mountEntry struct {
	ID, ParentID int
	Device       string // major:minor, as the kernel prints it
	Root         string // the directory of the file system mounted here
	MountPoint   string
	Options      string // per-mount options (rw/ro, nosuid, ...)
	FSType       string // e.g. "nfs4", "tmpfs", "fuse.sshfs"
	Source       string
	SuperOptions string // per-file-system options
}

// readOnly reports whether writes are refused here, either because this
// mount is read-only (mount -o remount,bind,ro) or because the whole
// file system is.
func (e mountEntry) readOnly() bool {
	return hasOption(e.Options, "ro") || hasOption(e.SuperOptions, "ro")
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// readMountinfo reads and parses /proc/self/mountinfo.
func readMountinfo() ([]mountEntry, error) {
	f, err := os.Open(mountinfoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", mountinfoPath, err)
	}
	return entries, nil
}

// parseMountinfo parses the mountinfo format. A malformed line is an error
// rather than skipped: a mount we failed to see could be the one that
// matters.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var out []mountEntry
	sc := bufio.NewScanner(r)
	// Lines are short, but super options of some file systems (overlayfs
	// with many layers) can be long.
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		e, err := parseMountinfoLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func parseMountinfoLine(line string) (mountEntry, error) {
	// Fields are separated by single spaces; spaces inside paths are
	// escaped, so splitting is exact (an empty source would show as an
	// empty field, which Split keeps).
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ { // optional fields start at index 6
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+4 {
		return mountEntry{}, fmt.Errorf("malformed mountinfo line %q", line)
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || !strings.Contains(f[2], ":") {
		return mountEntry{}, fmt.Errorf("malformed mountinfo line %q", line)
	}
	return mountEntry{
		ID:           id,
		ParentID:     parent,
		Device:       f[2],
		Root:         unescapeOctal(f[3]),
		MountPoint:   unescapeOctal(f[4]),
		Options:      f[5],
		FSType:       unescapeOctal(f[sep+1]),
		Source:       unescapeOctal(f[sep+2]),
		SuperOptions: unescapeOctal(f[sep+3]),
	}, nil
}

// unescapeOctal undoes the kernel's mangling of paths in mountinfo: a
// backslash followed by three octal digits stands for that byte (\040 is a
// space, \134 a backslash). Anything else is kept as it is.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		// The first digit is at most 3: \377 is the largest byte.
		if s[i] == '\\' && i+3 < len(s) && s[i+1] >= '0' && s[i+1] <= '3' && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0')
			b.WriteByte(v)
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// mountAt returns the mount visible at point (an absolute path with
// symlinks resolved), if point is a mount point. When several mounts are
// stacked on the same point, the kernel lists them in mount order, so the
// last one is the one on top, the one a path lookup reaches.
func mountAt(entries []mountEntry, point string) (mountEntry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].MountPoint == point {
			return entries[i], true
		}
	}
	return mountEntry{}, false
}
