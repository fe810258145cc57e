package nas

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/backup-runner/runner/plugins/builtin/command"
)

// How the mount point is brought up for a run (mount_with).
const (
	mountWithSystemd = "systemd" // systemctl start/stop UNIT
	mountWithMount   = "mount"   // mount/umount MOUNTPOINT, using fstab
	mountWithNone    = "none"    // never mount; only verify
)

// defaultMountTimeout bounds each mount and unmount command: an NFS server
// that does not answer can make mount(8) hang for minutes.
const defaultMountTimeout = "2m"

// mounter brings one mount point up and down.
type mounter struct {
	point   string   // the mount point as configured (cleaned)
	with    string   // mountWith*
	up      []string // argv that mounts
	down    []string // argv that unmounts
	timeout time.Duration
}

// newMounter fills in the default commands for the method.
func newMounter(point, with, unit string, up, down []string, timeout time.Duration) (*mounter, error) {
	m := &mounter{point: point, with: with, up: up, down: down, timeout: timeout}
	switch with {
	case mountWithSystemd:
		if unit == "" {
			var err error
			if unit, err = mountUnitName(point); err != nil {
				return nil, err
			}
		}
		if m.up == nil {
			m.up = []string{"systemctl", "start", unit}
		}
		if m.down == nil {
			m.down = []string{"systemctl", "stop", unit}
		}
	case mountWithMount:
		// With only the mount point, mount(8) and umount(8) take the rest
		// from /etc/fstab, where the operator already describes the share.
		if m.up == nil {
			m.up = []string{"mount", point}
		}
		if m.down == nil {
			m.down = []string{"umount", point}
		}
	}
	return m, nil
}

// mount runs the mount command.
func (m *mounter) mount(ctx context.Context) error {
	if _, err := command.Run(ctx, command.Spec{Argv: m.up, Timeout: m.timeout}); err != nil {
		return fmt.Errorf("mount %s: %w", m.point, err)
	}
	return nil
}

// unmount runs the unmount command and checks that the mount point is no
// longer mounted: a "successful" systemctl stop of the wrong unit would
// otherwise leave the share up without anyone noticing.
//
// Unmounting must happen even when ctx was cancelled (the runner is being
// stopped, and a job's context often is what the host has at hand), so a
// done ctx is replaced by one that keeps only its values; the command's
// timeout still bounds the wait.
func (m *mounter) unmount(ctx context.Context, realPoint string) error {
	if ctx.Err() != nil {
		ctx = context.WithoutCancel(ctx)
	}
	if _, err := command.Run(ctx, command.Spec{Argv: m.down, Timeout: m.timeout}); err != nil {
		return fmt.Errorf("unmount %s: %w", m.point, err)
	}
	entries, err := readMountinfo()
	if err != nil {
		return fmt.Errorf("unmount %s: check that it is gone: %w", m.point, err)
	}
	if e, ok := mountAt(entries, realPoint); ok {
		return fmt.Errorf("unmount %s: %s succeeded but %s is still mounted (%s from %s)",
			m.point, command.Format(m.down), m.point, e.FSType, e.Source)
	}
	return nil
}

// mountUnitName derives the systemd mount unit of an absolute mount point
// the way `systemd-escape --path --suffix=mount` does (systemd.unit(5),
// "String Escaping for Inclusion in Unit Names"): slashes at either end
// are dropped, "/" becomes "-", and every byte that is not an ASCII
// letter, digit, ":", "_" or "." (and a "." at the start) becomes \xNN.
// The root directory is "-.mount". Implemented here rather than by running
// systemd-escape so that Validate and tests need no systemd.
func mountUnitName(point string) (string, error) {
	if !filepath.IsAbs(point) {
		return "", fmt.Errorf("mount point %q is not absolute", point)
	}
	p := strings.Trim(filepath.Clean(point), "/")
	if p == "" {
		return "-.mount", nil
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." || seg == "." {
			return "", errors.New("mount point has . or .. segments")
		}
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0:
			// A unit name must not start with a dot (a hidden file).
			fmt.Fprintf(&b, `\x%02x`, c)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String() + ".mount", nil
}
