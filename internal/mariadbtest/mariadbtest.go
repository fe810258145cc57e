// Package mariadbtest starts private MariaDB servers for tests: each with
// its own datadir, socket, pid file, TCP port on 127.0.0.1 and binlog, so
// a test never touches a system server (which may be running on 3306).
// The server is stopped and its directory removed when the test ends,
// even when it fails.
package mariadbtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is a running private MariaDB server.
type Server struct {
	Dir    string // holds data/, tmp/, binlog/, the socket and the error log
	Port   int
	Socket string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Tools the helper needs; Start fails naming the missing one: tests that
// need MariaDB must not silently skip in CI.
var tools = []string{"mariadb-install-db", "mariadbd", "mariadb-admin"}

// Start initialises and starts a server for t, and stops it at cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("mariadbtest: %v", err)
		}
	})
	return s
}

// New starts a server outside any one test, for a TestMain that shares
// one server among a package's tests; the caller must Stop it.
func New() (*Server, error) { return start() }

// Main is a package's TestMain sharing one server among its tests: it
// starts the server into *srv, runs the tests, stops the server and exits
// with the tests' code (1, with the reason, if the server cannot start).
func Main(m *testing.M, srv **Server) {
	s, err := start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mariadbtest:", err)
		os.Exit(1)
	}
	*srv = s
	code := m.Run()
	_ = s.Stop()
	os.Exit(code)
}

// findTool looks a program up in PATH, then where Debian installs it
// (mariadbd is in /usr/sbin, which a non-login PATH may lack).
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in PATH, /usr/sbin or /usr/bin (make deps installs mariadb-server and mariadb-client)", name)
}

func start() (*Server, error) {
	paths := map[string]string{}
	for _, tool := range tools {
		p, err := findTool(tool)
		if err != nil {
			return nil, err
		}
		paths[tool] = p
	}
	// A short directory: Unix socket paths must stay under ~107 bytes.
	dir, err := os.MkdirTemp("", "mdb")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "mysqld.sock"), exited: make(chan struct{})}
	for _, d := range []string{"data", "tmp", "binlog"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, s.fail(err)
		}
	}
	common := []string{
		"--no-defaults", // must be first, or /etc/mysql settings leak in
		"--datadir=" + filepath.Join(dir, "data"),
		"--tmpdir=" + filepath.Join(dir, "tmp"),
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(dir, "mysqld.pid"),
		"--user=root", // mariadbd refuses to run as root without it
		"--innodb-log-file-size=48M",
	}
	if err := initDatadir(paths, common, filepath.Join(dir, "data")); err != nil {
		return nil, s.fail(err)
	}
	if s.Port, err = freePort(); err != nil {
		return nil, s.fail(err)
	}
	args := append(append([]string{}, common...),
		"--port="+strconv.Itoa(s.Port),
		"--bind-address=127.0.0.1",
		"--skip-name-resolve",
		"--log-error="+filepath.Join(dir, "mysqld.err"),
		"--log-bin="+filepath.Join(dir, "binlog", "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--server-id=1",
		"--max-allowed-packet=256M",
		// Tests trade durability for speed.
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
		"--innodb-doublewrite=0",
	)
	s.cmd = exec.Command(paths["mariadbd"], args...)
	// Its own session: a ^C to the test does not reach it before cleanup.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, s.fail(fmt.Errorf("start mariadbd: %w", err))
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(paths["mariadb-admin"], 60*time.Second); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// Kill ends the server abruptly (SIGKILL), as a crash would, and waits
// for it to exit; its directory stays until Stop (or cleanup) removes it.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// A freshly installed datadir is the same every time, so the first Start
// of a process installs one into a template directory shared by the
// processes of this machine (keyed by the server binary), and every
// Start copies it: a copy and a start take well under a second, an
// install over one.
var template struct {
	once sync.Once
	dir  string
	err  error
}

// initDatadir fills data (an empty directory) with a fresh datadir.
func initDatadir(paths map[string]string, common []string, data string) error {
	template.once.Do(func() { template.dir, template.err = makeTemplate(paths, common) })
	if template.err != nil {
		return template.err
	}
	if out, err := exec.Command("cp", "-a", template.dir+"/.", data).CombinedOutput(); err != nil {
		return fmt.Errorf("copy template datadir: %v\n%s", err, tail(out))
	}
	return nil
}

// makeTemplate returns the template datadir, installing it first when no
// earlier process did. It is installed beside its final name and renamed
// into place, so a process never sees half of one.
func makeTemplate(paths map[string]string, common []string) (string, error) {
	fi, err := os.Stat(paths["mariadbd"])
	if err != nil {
		return "", err
	}
	final := filepath.Join(os.TempDir(), fmt.Sprintf("mariadbtest-template-%d-%d", fi.Size(), fi.ModTime().Unix()))
	if _, err := os.Stat(filepath.Join(final, "mysql")); err == nil {
		return final, nil
	}
	work, err := os.MkdirTemp(os.TempDir(), "mdbtpl")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	data := filepath.Join(work, "data")
	args := []string{}
	for _, a := range common {
		switch {
		case strings.HasPrefix(a, "--datadir="):
			a = "--datadir=" + data
		case strings.HasPrefix(a, "--tmpdir="):
			a = "--tmpdir=" + work
		case strings.HasPrefix(a, "--socket="):
			a = "--socket=" + filepath.Join(work, "s.sock")
		case strings.HasPrefix(a, "--pid-file="):
			a = "--pid-file=" + filepath.Join(work, "p.pid")
		}
		args = append(args, a)
	}
	args = append(args, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve")
	if out, err := exec.Command(paths["mariadb-install-db"], args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("mariadb-install-db: %v\n%s", err, tail(out))
	}
	if err := os.Rename(data, final); err != nil {
		if _, serr := os.Stat(filepath.Join(final, "mysql")); serr == nil {
			return final, nil // another process was first
		}
		return "", err
	}
	return final, nil
}

func (s *Server) fail(err error) error {
	_ = os.RemoveAll(s.Dir)
	return err
}

// waitReady polls mariadb-admin ping until the server answers.
func (s *Server) waitReady(admin string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := exec.CommandContext(ctx, admin, "--no-defaults", "--protocol=TCP", "-h127.0.0.1",
			"-P"+strconv.Itoa(s.Port), "-uroot", "ping").Run()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("mariadbd exited while starting:\n%s", s.errorLog())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd did not answer within %s:\n%s", limit, s.errorLog())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "mysqld.err"))
	return tail(b)
}

// DSN is a go-sql-driver-style address of the server for user root.
func (s *Server) DSN(database string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", s.Port, database)
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Stop ends the server (SIGTERM, then SIGKILL after 30 s) and removes its
// directory. It is safe to call more than once.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.exited:
			case <-time.After(30 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
			}
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		return fmt.Errorf("remove %s: %w", s.Dir, err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail keeps the last lines of a command's output for an error message.
func tail(b []byte) string {
	lines := strings.Split(string(bytes.TrimSpace(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}
