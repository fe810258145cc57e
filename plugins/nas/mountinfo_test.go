package nas

import (
	"os/exec"
	"strings"
	"testing"
)

func TestParseMountinfo(t *testing.T) {
	const text = `22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
36 22 98:0 /mnt1 /mnt/my\040nas rw,noatime master:1 - nfs4 nas.lan:/export/back\134up rw,vers=4.2
37 22 0:50 / /srv/ro ro,nosuid - tmpfs tmpfs rw,size=16384k
38 22 0:51 / /srv/sb rw - tmpfs tmpfs ro
39 22 0:52 / /tab\011and\012newline rw - fuse.sshfs user@host: rw
40 22 0:53 / /mnt/my\040nas rw - tmpfs on\040top rw
`
	entries, err := parseMountinfo(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		t.Fatalf("%d entries", len(entries))
	}
	e := entries[1]
	if e.ID != 36 || e.ParentID != 22 || e.Device != "98:0" || e.Root != "/mnt1" || e.MountPoint != "/mnt/my nas" ||
		e.Options != "rw,noatime" || e.FSType != "nfs4" || e.Source != `nas.lan:/export/back\up` || e.SuperOptions != "rw,vers=4.2" {
		t.Errorf("entry with optional fields and escapes = %+v", e)
	}
	if entries[4].MountPoint != "/tab\tand\nnewline" || entries[4].FSType != "fuse.sshfs" {
		t.Errorf("tab and newline: %+v", entries[4])
	}
	for i, want := range []bool{false, false, true, true, false, false} {
		if got := entries[i].readOnly(); got != want {
			t.Errorf("entry %d readOnly = %v, want %v", i, got, want)
		}
	}
	// Stacked mounts: the last one listed is the one on top.
	if e, ok := mountAt(entries, "/mnt/my nas"); !ok || e.ID != 40 {
		t.Errorf("mountAt(/mnt/my nas) = %+v, %v; want the top mount 40", e, ok)
	}
	if _, ok := mountAt(entries, "/mnt"); ok {
		t.Error("/mnt is not a mount point")
	}

	for _, bad := range []string{
		"36 22 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw", // no separator
		"36 22 98:0 /mnt1 /mnt2 rw - ext3 /dev/root",                   // no super options
		"x 22 98:0 / /m rw - ext3 /dev/root rw",                        // bad id
		"36 22 98 / /m rw - ext3 /dev/root rw",                         // bad device
	} {
		if _, err := parseMountinfo(strings.NewReader(bad + "\n")); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	for in, want := range map[string]string{
		``:                  ``,
		`/plain`:            `/plain`,
		`/a\040b`:           `/a b`,
		`\134`:              `\`,
		`/x\134040`:         `/x\040`,  // an escaped backslash followed by digits
		`/end\04`:           `/end\04`, // too short: kept
		`/bad\089`:          `/bad\089`,
		`/big\777`:          `/big\777`, // not a byte
		`/utf8\303\251`:     "/utf8\u00e9",
		`\040lead\040trail`: " lead trail",
	} {
		if got := unescapeOctal(in); got != want {
			t.Errorf("unescapeOctal(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMountUnitName(t *testing.T) {
	cases := map[string]string{
		"/":                   "-.mount",
		"/mnt/nas":            "mnt-nas.mount",
		"/mnt/nas/":           "mnt-nas.mount",
		"/mnt//nas":           "mnt-nas.mount",
		"/mnt/Backup-Desktop": `mnt-Backup\x2dDesktop.mount`,
		"/mnt/my nas":         `mnt-my\x20nas.mount`,
		"/.hidden/x.y":        `\x2ehidden-x.y.mount`,
		"/a/.b":               "a-.b.mount",
		"/srv/a:b_c":          "srv-a:b_c.mount",
		"/srv/back\\slash":    `srv-back\x5cslash.mount`,
		"/srv/caf\u00e9":      `srv-caf\xc3\xa9.mount`,
	}
	for in, want := range cases {
		got, err := mountUnitName(in)
		if err != nil || got != want {
			t.Errorf("mountUnitName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := mountUnitName("relative"); err == nil {
		t.Error("relative mount point accepted")
	}
	// Where systemd is installed, it must agree.
	tool, err := exec.LookPath("systemd-escape")
	if err != nil {
		t.Log("systemd-escape not installed; compared against fixed names only")
		return
	}
	for in := range cases {
		out, err := exec.Command(tool, "--path", "--suffix=mount", in).Output()
		if err != nil {
			t.Errorf("systemd-escape %q: %v", in, err)
			continue
		}
		got, _ := mountUnitName(in)
		if want := strings.TrimSuffix(string(out), "\n"); got != want {
			t.Errorf("mountUnitName(%q) = %q, systemd-escape says %q", in, got, want)
		}
	}
}

func TestDefaultCommands(t *testing.T) {
	for _, tc := range []struct {
		with, unit string
		up, down   string
	}{
		{mountWithMount, "", "mount /mnt/my nas", "umount /mnt/my nas"},
		{mountWithSystemd, "", `systemctl start mnt-my\x20nas.mount`, `systemctl stop mnt-my\x20nas.mount`},
		{mountWithSystemd, "nas.service", "systemctl start nas.service", "systemctl stop nas.service"},
	} {
		m, err := newMounter("/mnt/my nas", tc.with, tc.unit, nil, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		if up, down := strings.Join(m.up, " "), strings.Join(m.down, " "); up != tc.up || down != tc.down {
			t.Errorf("%s %q: up %q, down %q; want %q, %q", tc.with, tc.unit, up, down, tc.up, tc.down)
		}
	}
	m, _ := newMounter("/mnt/nas", mountWithSystemd, "", []string{"my-mount"}, nil, 0)
	if strings.Join(m.up, " ") != "my-mount" || strings.Join(m.down, " ") != "systemctl stop mnt-nas.mount" {
		t.Errorf("override of up only: %q, %q", m.up, m.down)
	}
}
