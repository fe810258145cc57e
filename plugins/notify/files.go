package notify

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/backup-runner/runner/internal/secret"
)

// readSecretFile reads a secret such as a password_file (package secret:
// refused if group or others may read it; never in an error).
func readSecretFile(attr, path string) (string, error) { return secret.ReadFile(attr, path) }

// tlsConfig is the TLS configuration for talking to serverName: the
// system's roots, plus the certificates of caFile when it is set (a
// private CA). Certificates are always verified.
func tlsConfig(serverName, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}
