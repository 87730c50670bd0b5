package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/cdwhq/cdw/pipelines"
)

// Servers that echo the credentials they were given in their error replies,
// as misconfigured proxies and some SMTP servers do. Whatever they echo, no
// error line, log line, run-history line or `cdw runs` output may show a
// secret named by an *_env key.

// echoSMTP answers AUTH PLAIN with a 535 that repeats the decoded
// credentials, like the server in the reliability report.
func echoSMTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				fmt.Fprint(c, "220 echo ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.TrimSpace(line)
					switch {
					case strings.HasPrefix(cmd, "EHLO"):
						fmt.Fprint(c, "250-echo\r\n250 AUTH PLAIN\r\n")
					case strings.HasPrefix(cmd, "AUTH PLAIN "):
						b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(cmd, "AUTH PLAIN "))
						fmt.Fprintf(c, "535 5.7.8 credentials %s rejected\r\n", strings.ReplaceAll(string(b), "\x00", "|"))
					case cmd == "QUIT":
						fmt.Fprint(c, "221 bye\r\n")
						return
					default:
						fmt.Fprint(c, "502 what\r\n")
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String()
}

// echoPostgres asks for a clear-text password and refuses it by name, as a
// connection proxy that logs badly might.
func echoPostgres(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				be := pgproto3.NewBackend(c, c)
				msg, err := be.ReceiveStartupMessage()
				if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
					c.Write([]byte("N"))
					msg, err = be.ReceiveStartupMessage()
				}
				if err != nil {
					return
				}
				be.Send(&pgproto3.AuthenticationCleartextPassword{})
				if be.Flush() != nil {
					return
				}
				be.SetAuthType(pgproto3.AuthTypeCleartextPassword)
				m, err := be.Receive()
				if err != nil {
					return
				}
				pw := ""
				if p, ok := m.(*pgproto3.PasswordMessage); ok {
					pw = p.Password
				}
				be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: "password " + pw + " is not the password"})
				be.Flush()
			}(c)
		}
	}()
	return ln.Addr().String()
}

// assertNoSecret fails if any of the texts shows one of the secrets.
func assertNoSecret(t *testing.T, where string, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s shows the secret %q:\n%s", where, s, text)
		}
	}
}

func assertHistoryClean(t *testing.T, dir, cfg string, secrets ...string) {
	t.Helper()
	h, err := os.ReadFile(filepath.Join(dir, "state", "runs.jsonl"))
	if err != nil {
		t.Fatalf("no run history: %v", err)
	}
	if !strings.Contains(string(h), `"error"`) {
		t.Fatalf("run history records no failure:\n%s", h)
	}
	assertNoSecret(t, "state/runs.jsonl", string(h), secrets...)
	code, stdout, stderr := cdw(t, "runs", "--config", cfg)
	if code != 0 || !strings.Contains(stdout, "REDACTED") {
		t.Fatalf("cdw runs: exit %d, want the masked error in:\n%s%s", code, stdout, stderr)
	}
	assertNoSecret(t, "cdw runs", stdout+stderr, secrets...)
}

func TestSecretsNeverShownHTTP(t *testing.T) {
	const token = "Http-Secret-tok-777"
	t.Setenv("CDW_TEST_API_TOKEN", token)
	t.Setenv("CDW_TEST_API_KEY", "Key/Secret+888")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"error": "bad credentials %s for %s"}`, r.Header.Get("Authorization"), r.URL.RawQuery)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cdw.yaml")
	os.WriteFile(cfg, []byte(`warehouse: wh
sources:
  - name: helpdesk
    kind: httpapi
    base_url: `+srv.URL+`
    auth: {type: bearer, token_env: CDW_TEST_API_TOKEN}
    params_env: {key: CDW_TEST_API_KEY}
    retry: {max_attempts: 1}
    entities:
      tickets:
        path: /tickets
        records: data
        fields: {ticket_id: id, customer_id: requester.external_id, created_at: created_at, resolved_at: solved_at, status: status, priority: priority, category: type, satisfaction: satisfaction.score, updated_at: updated_at}
`), 0o600)
	code, stdout, stderr := cdw(t, "run", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "401") {
		t.Fatalf("extract: exit %d, want the 401 in: %s", code, stderr)
	}
	secrets := []string{token, "Key/Secret+888", "Key%2FSecret%2B888"}
	assertNoSecret(t, "the error line", stdout+stderr, secrets...)
	assertHistoryClean(t, filepath.Join(dir, "wh"), cfg, secrets...)
}

func TestSecretsNeverShownPostgres(t *testing.T) {
	const pw = "Pg-Secret-pw-999"
	t.Setenv("CDW_TEST_PG_PASSWORD", pw)
	host, port, _ := net.SplitHostPort(echoPostgres(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cdw.yaml")
	os.WriteFile(cfg, []byte(`warehouse: wh
sources:
  - name: erp
    kind: postgres
    host: `+host+`
    port: `+port+`
    database: erp
    user: cdw_reader
    sslmode: disable
    password_env: CDW_TEST_PG_PASSWORD
    entities:
      orders:
        table: public.order_lines
`), 0o600)
	code, stdout, stderr := cdw(t, "run", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "28P01") {
		t.Fatalf("run: exit %d, want the server's refusal in: %s", code, stderr)
	}
	assertNoSecret(t, "the error line", stdout+stderr, pw)
	assertHistoryClean(t, filepath.Join(dir, "wh"), cfg, pw)
}

// TestSecretsNeverShownSMTP: the report step of `cdw serve` and `cdw report`
// against a server that echoes the SMTP password in its 535 (issue #16 item 4).
func TestSecretsNeverShownSMTP(t *testing.T) {
	const user, pass = "smtpuser", "SmTp-Secret-pw-555"
	t.Setenv("CDW_TEST_SMTP_USER", user)
	t.Setenv("CDW_TEST_SMTP_PASSWORD", pass)
	host, port, _ := net.SplitHostPort(echoSMTP(t))
	dir := filepath.Join(t.TempDir(), "wh")
	if code, _, stderr := cdw(t, "demo", "--dir", dir, "--customers", "200"); code != 0 {
		t.Fatal(stderr)
	}
	cfg := filepath.Join(dir, "cdw.yaml")
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `report:
  to: [ceo@example.com]
smtp:
  host: %s
  port: %s
  from: cdw@example.com
  username_env: CDW_TEST_SMTP_USER
  password_env: CDW_TEST_SMTP_PASSWORD
serve:
  listen: "off"
pipelines:
  - name: mail
    schedule: "@every 1s"
    steps: [report]
`, host, port)
	f.Close()

	code, stdout, stderr := cdw(t, "report", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "535") {
		t.Fatalf("report: exit %d, want the 535 in: %s", code, stderr)
	}
	assertNoSecret(t, "cdw report's error", stdout+stderr, pass, user)

	// cdw serve in-process; SIGTERM once the first report run is recorded
	// (the serve command has installed its handler by then).
	var serveErr strings.Builder
	done := make(chan int)
	go func() { done <- run([]string{"serve", "--config", cfg}, io.Discard, &serveErr) }()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		recs, _ := pipelines.ReadHistory(dir, 0)
		if len(recs) > 0 && recs[0].Pipeline == "mail" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("cdw serve recorded no report run in 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(os.Getpid(), syscall.SIGTERM)
	<-done
	if !strings.Contains(serveErr.String(), "535") {
		t.Fatalf("the serve log does not show the failure:\n%s", serveErr.String())
	}
	assertNoSecret(t, "the cdw serve log", serveErr.String(), pass, user)
	assertHistoryClean(t, dir, cfg, pass, user)
}
