package report_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cdwhq/cdw/internal/mailtest"
	"github.com/cdwhq/cdw/load/report"
)

// testPKI writes a throwaway CA and a server certificate for 127.0.0.1
// signed by it; it returns the CA file and the server's cert and key files.
func testPKI(t *testing.T) (caFile, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cdw test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", leafDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestMailOverSTARTTLS sends the report to a mailpit that requires STARTTLS
// and SMTP AUTH (a real password file), with credentials taken from the
// environment and the server certificate trusted through smtp.ca_file; then
// checks the failures a user must see clearly.
func TestMailOverSTARTTLS(t *testing.T) {
	dir := warehouse(t)
	caFile, certFile, keyFile := testPKI(t)
	const user, pass = "reporter", "s3cret-Pass"
	sum := sha1.Sum([]byte(pass))
	authFile := filepath.Join(t.TempDir(), "smtp-auth")
	if err := os.WriteFile(authFile, []byte(user+":{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsPort, tlsAPI := mailtest.Mailpit(t, "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile, "--smtp-require-starttls",
		"--smtp-auth-file", authFile)
	t.Setenv("CDW_TEST_SMTP_USER", user)

	const creds = "  username_env: CDW_TEST_SMTP_USER\n  password_env: CDW_TEST_SMTP_PASSWORD\n"
	cfg := func(port int, extra string) *report.Config {
		return parse(t, dir, fmt.Sprintf(`report:
  to: [ceo@example.com]
smtp:
  host: 127.0.0.1
  port: %d
  starttls: true
  from: cdw@example.com
  timeout: 10s
%s`, port, extra))
	}
	send := func(rc *report.Config) (*report.Result, error) {
		return report.Run(context.Background(), rc, report.RunOptions{Send: true})
	}
	type msgList struct {
		Messages []struct {
			ID      string
			Subject string
			Tags    []string
		}
	}

	t.Run("delivered", func(t *testing.T) {
		t.Setenv("CDW_TEST_SMTP_PASSWORD", pass)
		res, err := send(cfg(tlsPort, creds+"  ca_file: "+caFile+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent != 1 {
			t.Fatalf("sent %d messages, want 1", res.Sent)
		}
		var list msgList
		getJSON(t, tlsAPI+"/messages", &list)
		if len(list.Messages) != 1 {
			t.Fatalf("mailpit has %d messages, want 1", len(list.Messages))
		}
		m := list.Messages[0]
		if !strings.Contains(m.Subject, "Customer segment summary") {
			t.Errorf("subject %q", m.Subject)
		}
	})

	failures := []struct {
		name, password, extra string
		want                  string
	}{
		{"wrong password", "nope", creds + "  ca_file: " + caFile + "\n", "SMTP AUTH failed: 535"},
		// The server insists on AUTH, so the delivery above was authenticated
		// with the credentials from the environment.
		{"no credentials configured", pass, "  ca_file: " + caFile + "\n", "MAIL FROM command: 530"},
		{"server certificate not trusted without ca_file", pass, creds, "starting TLS with 127.0.0.1:"},
		{"password env unset", "", creds + "  ca_file: " + caFile + "\n", "CDW_TEST_SMTP_PASSWORD must both be set"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			t.Setenv("CDW_TEST_SMTP_PASSWORD", f.password)
			_, err := send(cfg(tlsPort, f.extra))
			if err == nil || !strings.Contains(err.Error(), f.want) {
				t.Fatalf("error %v, want one containing %q", err, f.want)
			}
			var list msgList
			getJSON(t, tlsAPI+"/messages", &list)
			if len(list.Messages) != 1 {
				t.Fatalf("mailpit has %d messages after a failed send, want still 1", len(list.Messages))
			}
		})
	}

	// A server without STARTTLS that would accept a password in clear text
	// (auth allowed without TLS): with starttls: true, cdw must refuse
	// before it sends the credentials or the message.
	t.Run("no STARTTLS offered", func(t *testing.T) {
		t.Setenv("CDW_TEST_SMTP_PASSWORD", pass)
		plainPort, plainAPI := mailtest.Mailpit(t, "--smtp-auth-accept-any", "--smtp-auth-allow-insecure")
		_, err := send(cfg(plainPort, creds))
		if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS, which smtp.starttls requires") {
			t.Fatalf("error %v, want a refusal to continue without STARTTLS", err)
		}
		var list msgList
		getJSON(t, plainAPI+"/messages", &list)
		if len(list.Messages) != 0 {
			t.Fatalf("a message went out in clear text: %+v", list.Messages)
		}
	})
}
