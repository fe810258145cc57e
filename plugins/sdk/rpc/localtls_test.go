package rpc

import (
	"crypto/tls"
	"net"
	"os"
	"strings"
	"testing"
)

// serverFor sets the environment as the host does and reads it back as a
// plugin does.
func serverFor(t *testing.T, lt *LocalTLS) *tls.Config {
	t.Helper()
	name, value, _ := strings.Cut(lt.Env(), "=")
	t.Setenv(name, value)
	cfg, err := ServerTLSFromEnv()
	if err != nil || cfg == nil {
		t.Fatalf("ServerTLSFromEnv: %v, %v", cfg, err)
	}
	if _, still := os.LookupEnv(LocalTLSEnv); still {
		t.Fatal("the TLS material is still in the environment, where commands the plugin runs would inherit it")
	}
	return cfg
}

// handshake runs a TLS handshake between the two configurations over an
// in-memory connection, and a one-byte exchange after it (in TLS 1.3 the
// server checks the client's certificate after the client's side of the
// handshake is done), and returns each side's error.
func handshake(client, server *tls.Config) (clientErr, serverErr error) {
	a, b := net.Pipe()
	defer a.Close()
	done := make(chan error, 1)
	go func() {
		defer b.Close()
		s := tls.Server(b, server)
		err := s.Handshake()
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		done <- err
	}()
	c := tls.Client(a, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	_ = a.Close()
	return clientErr, <-done
}

func TestLocalTLS(t *testing.T) {
	lt, err := NewLocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	server := serverFor(t, lt)
	if cerr, serr := handshake(lt.ClientConfig(), server); cerr != nil || serr != nil {
		t.Fatalf("matching pair: client %v, server %v", cerr, serr)
	}

	// Material from another process's pair is refused both ways.
	other, err := NewLocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	if _, serr := handshake(other.ClientConfig(), server); serr == nil {
		t.Error("the plugin accepted a host certificate it was not given")
	}
	if cerr, _ := handshake(lt.ClientConfig(), serverFor(t, other)); cerr == nil {
		t.Error("the host accepted a plugin certificate it did not make")
	}
}

func TestServerTLSFromEnvErrors(t *testing.T) {
	if err := os.Unsetenv(LocalTLSEnv); err != nil {
		t.Fatal(err)
	}
	if cfg, err := ServerTLSFromEnv(); cfg != nil || err != nil {
		t.Fatalf("unset: %v, %v; want nothing (AutoMTLS or no TLS)", cfg, err)
	}
	lt, err := NewLocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	_, good, _ := strings.Cut(lt.Env(), "=")
	f := strings.Split(good, ".")
	other, err := NewLocalTLS()
	if err != nil {
		t.Fatal(err)
	}
	_, otherValue, _ := strings.Cut(other.Env(), "=")
	for name, v := range map[string]string{
		"two fields":       f[0] + "." + f[1],
		"not base64":       f[0] + ".%%%." + f[2],
		"key of another":   f[0] + "." + strings.Split(otherValue, ".")[1] + "." + f[2],
		"no certificate":   "AAAA." + f[1] + "." + f[2],
		"host cert broken": f[0] + "." + f[1] + ".AAAA",
	} {
		t.Setenv(LocalTLSEnv, v)
		if cfg, err := ServerTLSFromEnv(); err == nil || cfg != nil {
			t.Errorf("%s: no error", name)
		}
	}
}
