// Package wptest gives tests a real WordPress site: WordPress's own files
// (from Debian's wordpress package) in a directory of the test's choosing,
// with a stock wp-config.php, and its database created by WordPress's own
// installer (wp_install through php-cli) on a private MariaDB server from
// package mariadbtest.
//
// What it needs on the machine (make deps installs them):
//
//   - apt packages php-cli and php-mysql (the installer; no services), and
//     mariadb-server and mariadb-client (for mariadbtest);
//   - apt-get and dpkg-deb, and once, network access to the Debian mirror:
//     the first use downloads (apt-get download, which installs nothing)
//     the packages wordpress, wordpress-theme-twentytwentythree,
//     php-getid3, libjs-underscore and libjs-cropper, extracts them with
//     dpkg-deb -x and keeps the assembled WordPress tree in a cache
//     directory ($RUNNER_WPTEST_CACHE, default /var/tmp/runner-wptest).
//     Later uses, by any process, only copy it. `go test ./internal/wptest`
//     fills the cache.
//
// Debian's package splits WordPress across /usr/share/wordpress,
// /var/lib/wordpress/wp-content and /etc/wordpress, symlinks some
// libraries to other packages, and replaces wp-config.php with a loader of
// /etc/wordpress/config-*.php. The cached tree undoes that: it is laid out
// as a stock WordPress download (one directory, wp-content inside,
// symlinks into the other packages replaced by the files they point to,
// dangling ones dropped, no wp-config.php but wp-config-sample.php), so a
// site built from it looks like a site an operator installed by hand.
//
// When something is missing the helper fails the test with a message
// saying what to install; it never skips.
package wptest

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// AptPackages are the packages the machine needs installed for this
// helper (besides mariadbtest's mariadb-server and mariadb-client).
var AptPackages = []string{"php-cli", "php-mysql"}

// DownloadedPackages are fetched with apt-get download (not installed)
// the first time the cache is filled.
var DownloadedPackages = []string{"wordpress", "wordpress-theme-twentytwentythree", "php-getid3", "libjs-underscore", "libjs-cropper"}

// CacheDir is where the assembled WordPress tree is kept.
func CacheDir() string {
	if d := os.Getenv("RUNNER_WPTEST_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/runner-wptest"
}

var dist struct {
	once    sync.Once
	dir     string
	version string
	err     error
}

// Dist returns the directory holding WordPress's files as a stock
// download lays them out (read-only: copy it, never change it), and
// WordPress's version. The first call of a process fills the cache if no
// process did before.
func Dist(t testing.TB) (dir, version string) {
	t.Helper()
	dir, version, err := Fetch()
	if err != nil {
		t.Fatalf("wptest: %v", err)
	}
	return dir, version
}

// Fetch is Dist without a test: it returns the cached WordPress tree,
// building it first when needed.
func Fetch() (dir, version string, err error) {
	dist.once.Do(func() { dist.dir, dist.version, dist.err = fetch() })
	return dist.dir, dist.version, dist.err
}

var versionRe = regexp.MustCompile(`(?m)^\$wp_version\s*=\s*'([^']+)'`)

// ReadVersion reads $wp_version from a WordPress root's
// wp-includes/version.php.
func ReadVersion(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, "wp-includes", "version.php"))
	if err != nil {
		return "", err
	}
	m := versionRe.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("%s: no $wp_version", filepath.Join(root, "wp-includes", "version.php"))
	}
	return string(m[1]), nil
}

func fetch() (string, string, error) {
	cache := CacheDir()
	final := filepath.Join(cache, "wordpress")
	if v, err := ReadVersion(final); err == nil {
		return final, v, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", "", fmt.Errorf("cache directory: %w", err)
	}
	// One process builds; the others wait on the lock and then find it.
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", "", fmt.Errorf("cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("cache lock: %w", err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if v, err := ReadVersion(final); err == nil {
		return final, v, nil
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", "", fmt.Errorf("%s not found: wptest takes WordPress from Debian's wordpress package (needs apt-get and dpkg-deb)", tool)
		}
	}
	debs := filepath.Join(cache, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil {
		return "", "", err
	}
	have, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	if len(have) < len(DownloadedPackages) {
		cmd := exec.Command("apt-get", append([]string{"download"}, DownloadedPackages...)...)
		cmd.Dir = debs
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("apt-get download %s in %s: %v\n%s\n(the first run needs the Debian mirror; run `apt-get update` if the package lists are missing)",
				strings.Join(DownloadedPackages, " "), debs, err, tail(out))
		}
		have, _ = filepath.Glob(filepath.Join(debs, "*.deb"))
	}
	work, err := os.MkdirTemp(cache, "build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(work)
	x := filepath.Join(work, "x")
	for _, deb := range have {
		if out, err := exec.Command("dpkg-deb", "-x", deb, x).CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("dpkg-deb -x %s: %v\n%s", deb, err, tail(out))
		}
	}
	out := filepath.Join(work, "wordpress")
	if err := assemble(x, out); err != nil {
		return "", "", fmt.Errorf("assemble WordPress from %s: %w", x, err)
	}
	v, err := ReadVersion(out)
	if err != nil {
		return "", "", fmt.Errorf("the extracted package holds no WordPress: %w", err)
	}
	if err := os.Rename(out, final); err != nil {
		return "", "", err
	}
	return final, v, nil
}

// assemble builds a stock WordPress tree at out from the extracted
// packages under x.
func assemble(x, out string) error {
	share := filepath.Join(x, "usr/share/wordpress")
	if err := copyResolved(x, share, out); err != nil {
		return err
	}
	// Debian's wp-content (uploads, languages, ...) joins the one in the
	// tree; its theme symlinks point back into the tree and are skipped.
	if err := copyResolved(x, filepath.Join(x, "var/lib/wordpress/wp-content"), filepath.Join(out, "wp-content")); err != nil {
		return err
	}
	// Debian's wp-config.php only loads /etc/wordpress/config-*.php; a
	// stock download has none (the installer writes it).
	return os.Remove(filepath.Join(out, "wp-config.php"))
}

// copyResolved copies the tree src to dst (merging into existing
// directories), replacing every symlink by what it points to inside the
// extraction root x (absolute targets are read as x/target), and dropping
// symlinks whose target is not there.
func copyResolved(x, src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		real := p
		if d.Type()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if filepath.IsAbs(link) {
				real = filepath.Join(x, link)
			} else {
				real = filepath.Join(filepath.Dir(p), link)
			}
			fi, err := os.Stat(real)
			if err != nil || !strings.HasPrefix(real, x+"/") {
				return nil // dangling outside the packages: drop it
			}
			if fi.IsDir() {
				if _, err := os.Lstat(target); err == nil {
					return nil // already there (a theme linked back into the tree)
				}
				return copyResolved(x, real, target)
			}
		}
		fi, err := os.Stat(real)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(real, target, fi.Mode().Perm())
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// CopyTree copies the WordPress tree dist into dir (created; it may
// exist and be empty), as a fresh download unpacked there.
func CopyTree(dist, dir string) error {
	return filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dist, p)
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return copyFile(p, target, fi.Mode().Perm())
	})
}

// tail keeps the last lines of a command's output for an error message.
func tail(b []byte) string {
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
