package wordpress

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultSocket is the Unix socket DB_HOST "localhost" means on Debian
// (PHP's mysqli.default_socket there).
const DefaultSocket = "/run/mysqld/mysqld.sock"

// ParseDBHost turns WordPress's DB_HOST into an address for package dump:
// host:port for TCP or the absolute path of a Unix socket. It follows
// wpdb::parse_db_host and PHP's mysqli: "host", "host:port",
// "host:/path/to/socket", "[::1]:3307", "/path/to/socket"; "localhost"
// (also with a port, which mysqli then ignores) means the Unix socket
// localSocket, as it does for PHP. The default port is 3306.
func ParseDBHost(host, localSocket string) (string, error) {
	h := strings.TrimSpace(host)
	if h == "" {
		h = "localhost"
	}
	if strings.HasPrefix(h, "/") {
		return h, nil
	}
	socket := ""
	if i := strings.Index(h, ":/"); i >= 0 {
		h, socket = h[:i], h[i+1:]
	}
	if socket != "" {
		return socket, nil
	}
	port := "3306"
	switch {
	case strings.HasPrefix(h, "["):
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", fmt.Errorf("DB_HOST %q: unclosed [", host)
		}
		rest := h[end+1:]
		h = h[1:end]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return "", fmt.Errorf("DB_HOST %q: want [address]:port", host)
			}
			port = rest[1:]
		}
	case strings.Count(h, ":") == 1:
		i := strings.IndexByte(h, ':')
		h, port = h[:i], h[i+1:]
	case strings.Count(h, ":") > 1:
		// A bare IPv6 address.
	}
	if h == "" {
		h = "localhost"
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("DB_HOST %q: bad port %q", host, port)
	}
	if strings.EqualFold(h, "localhost") {
		return localSocket, nil
	}
	return net.JoinHostPort(h, port), nil
}
