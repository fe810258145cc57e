package rpc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"time"
)

// Local mTLS for the built-in plugins.
//
// go-plugin's AutoMTLS has each side make a P-521 key and certificate and
// verify the other's, about 30 ms of CPU per plugin process on the
// benchmark machine: more than half of starting a plugin, and a runner
// command starts two or three. A built-in plugin is runner's own
// executable (runner internal-plugin NAME), so the host can hand it its
// key instead: the host makes a P-256 key and certificate for each side
// (microseconds), keeps its own, and passes the plugin's key, the
// plugin's certificate and its own certificate to the process in
// LocalTLSEnv, which the plugin reads and removes from its environment
// before anything else runs (so commands it starts do not inherit it).
// Both sides then require and verify the other's certificate, as with
// AutoMTLS. The environment of a process is readable only by its own user,
// who could read the process's memory anyway.
//
// External plugins keep AutoMTLS: the host cannot know whether their SDK
// understands LocalTLSEnv.

// LocalTLSEnv carries a built-in plugin's TLS material from the host.
const LocalTLSEnv = "RUNNER_PLUGIN_TLS"

// tlsServerName is the name in both certificates, as AutoMTLS uses.
const tlsServerName = "localhost"

// LocalTLS is the host's side of one built-in plugin process's mTLS.
type LocalTLS struct {
	client *tls.Config
	env    string
}

// NewLocalTLS makes the keys and certificates for one plugin process.
func NewLocalTLS() (*LocalTLS, error) {
	hostCert, hostKey, hostDER, err := localCert()
	if err != nil {
		return nil, err
	}
	pluginCert, pluginKey, pluginDER, err := localCert()
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(pluginKey)
	if err != nil {
		return nil, fmt.Errorf("plugin tls: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pluginCert)
	enc := base64.RawStdEncoding.EncodeToString
	return &LocalTLS{
		client: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{hostDER}, PrivateKey: hostKey, Leaf: hostCert}},
			RootCAs:      roots,
			ServerName:   tlsServerName,
			MinVersion:   tls.VersionTLS13,
		},
		env: LocalTLSEnv + "=" + strings.Join([]string{enc(pluginDER), enc(keyDER), enc(hostDER)}, "."),
	}, nil
}

// ClientConfig is the host's TLS configuration for connecting to the
// plugin.
func (l *LocalTLS) ClientConfig() *tls.Config { return l.client.Clone() }

// Env is the NAME=VALUE to add to the plugin process's environment.
func (l *LocalTLS) Env() string { return l.env }

// ServerTLSFromEnv reads the TLS configuration a host passed in
// LocalTLSEnv and removes the variable from the environment. It returns
// nil without an error when the variable is not set (an external plugin,
// or a host that uses AutoMTLS).
func ServerTLSFromEnv() (*tls.Config, error) {
	v, ok := os.LookupEnv(LocalTLSEnv)
	if !ok {
		return nil, nil
	}
	if err := os.Unsetenv(LocalTLSEnv); err != nil {
		return nil, fmt.Errorf("%s: %w", LocalTLSEnv, err)
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%s: %d fields, want 3", LocalTLSEnv, len(parts))
	}
	var der [3][]byte
	for i, p := range parts {
		b, err := base64.RawStdEncoding.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("%s: field %d: %w", LocalTLSEnv, i+1, err)
		}
		der[i] = b
	}
	cert, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, fmt.Errorf("%s: plugin certificate: %w", LocalTLSEnv, err)
	}
	key, err := x509.ParseECPrivateKey(der[1])
	if err != nil {
		return nil, fmt.Errorf("%s: plugin key: %w", LocalTLSEnv, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New(LocalTLSEnv + ": the plugin key does not match its certificate")
	}
	host, err := x509.ParseCertificate(der[2])
	if err != nil {
		return nil, fmt.Errorf("%s: host certificate: %w", LocalTLSEnv, err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(host)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der[0]}, PrivateKey: key, Leaf: cert}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// localCert makes a P-256 key and a self-signed certificate for it, valid
// for tlsServerName, as a client and as a server.
func localCert() (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin tls: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin tls: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: tlsServerName, Organization: []string{"runner plugin"}},
		DNSNames:              []string{tlsServerName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour), // a plugin process may run as long as runner serve
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // self-signed: each side trusts exactly this certificate
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin tls: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("plugin tls: %w", err)
	}
	return cert, key, der, nil
}
