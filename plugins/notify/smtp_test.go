package notify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// This file runs a real SMTP server (emersion/go-smtp) on loopback for the
// email tests: STARTTLS with a certificate made for the test, AUTH PLAIN,
// and a record of every message it accepted.

// testCert is a self-signed certificate for 127.0.0.1 and localhost, and
// the PEM file a client trusts it through (ca_file).
type testCert struct {
	cert   tls.Certificate
	caFile string
}

func newTestCert(t *testing.T) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "runner test mail server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile: caFile}
}

// mailOpts configure a test SMTP server.
type mailOpts struct {
	cert        *testCert // nil: no STARTTLS
	implicitTLS bool      // TLS from the first byte instead of STARTTLS
	user, pass  string    // the credentials AUTH PLAIN accepts
	// insecureAuth offers AUTH without TLS, so a test can check that the
	// client still keeps its password to itself.
	insecureAuth bool
	// requireAuth refuses MAIL before a successful AUTH.
	requireAuth bool
}

// delivered is one message the server accepted.
type delivered struct {
	from    string
	to      []string
	data    string
	authAs  string // user name of a successful AUTH, "" if none
	overTLS bool   // whether DATA came over TLS
}

// mailServer is a running test SMTP server.
type mailServer struct {
	addr string

	mu       sync.Mutex
	messages []delivered
	auths    []string // "user:pass" of every AUTH attempt, successful or not
}

func startMailServer(t *testing.T, opts mailOpts) *mailServer {
	t.Helper()
	ms := &mailServer{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &mailSession{ms: ms, opts: opts, conn: c}, nil
	}))
	srv.Domain = "mail.test"
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.AllowInsecureAuth = opts.insecureAuth
	srv.ErrorLog = log.New(io.Discard, "", 0)
	if opts.cert != nil && !opts.implicitTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{opts.cert.cert}}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.implicitTLS {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{opts.cert.cert}})
	}
	ms.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close closes only the listeners Serve has registered, and Serve
		// may not have started yet: close this one too, or Serve would
		// wait in Accept for ever.
		_ = ln.Close()
		<-done
	})
	return ms
}

func (ms *mailServer) received() []delivered {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]delivered(nil), ms.messages...)
}

func (ms *mailServer) authAttempts() []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return append([]string(nil), ms.auths...)
}

type mailSession struct {
	ms     *mailServer
	opts   mailOpts
	conn   *smtp.Conn
	authAs string
	from   string
	to     []string
}

var _ smtp.AuthSession = (*mailSession)(nil)

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.ms.mu.Lock()
		s.ms.auths = append(s.ms.auths, user+":"+pass)
		s.ms.mu.Unlock()
		if user != s.opts.user || pass != s.opts.pass {
			return smtp.ErrAuthFailed
		}
		s.authAs = user
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.opts.requireAuth && s.authAs == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if to == "nobody@example.org" {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return errors.New("empty message")
	}
	_, overTLS := s.conn.TLSConnectionState()
	s.ms.mu.Lock()
	s.ms.messages = append(s.ms.messages, delivered{from: s.from, to: s.to, data: string(b), authAs: s.authAs, overTLS: overTLS})
	s.ms.mu.Unlock()
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }
