package report

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"github.com/cdwhq/cdw/internal/secret"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

// message builds a multipart/alternative message: text/plain first, then
// text/html, so clients show the richest part they can.
func message(from string, v Version, now time.Time) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct {
		ctype string
		data  []byte
	}{{"text/plain; charset=utf-8", v.Text}, {"text/html; charset=utf-8", v.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(w)
		if _, err := qp.Write(part.data); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	id := make([]byte, 12)
	rand.Read(id)
	host := "cdw.local"
	if a, err := mail.ParseAddress(from); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			host = a.Address[i+1:]
		}
	}
	var msg bytes.Buffer
	fmt.Fprintf(&msg, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=%q\r\n\r\n",
		from, strings.Join(v.To, ", "), mime.QEncoding.Encode("utf-8", v.Subject), now.Format(time.RFC1123Z),
		hex.EncodeToString(id), host, mw.Boundary())
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// send delivers one version. STARTTLS is used whenever the server offers it
// and is required when s.StartTLS; credentials come from the environment.
func send(ctx context.Context, s *SMTPOptions, v Version) error {
	data, err := message(s.From, v, time.Now())
	if err != nil {
		return fmt.Errorf("building message: %w", err)
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	d := net.Dialer{Timeout: s.Timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to SMTP server %s: %w", addr, err)
	}
	conn.SetDeadline(time.Now().Add(s.Timeout))
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("greeting SMTP server %s: %w", addr, err)
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return fmt.Errorf("saying hello to %s: %w", addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		tc := &tls.Config{ServerName: s.Host, MinVersion: tls.VersionTLS12}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return fmt.Errorf("reading smtp ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return fmt.Errorf("reading smtp ca_file %s: no PEM certificate in it", s.CAFile)
			}
			tc.RootCAs = pool
		}
		if err := c.StartTLS(tc); err != nil {
			return fmt.Errorf("starting TLS with %s: %w", addr, err)
		}
	} else if s.StartTLS {
		return fmt.Errorf("SMTP server %s does not offer STARTTLS, which smtp.starttls requires", addr)
	}
	if s.UsernameEnv != "" {
		user, pass := os.Getenv(s.UsernameEnv), os.Getenv(s.PasswordEnv)
		if user == "" || pass == "" {
			return fmt.Errorf("SMTP credentials: environment variables %s and %s must both be set", s.UsernameEnv, s.PasswordEnv)
		}
		secret.Add(user, pass)
		if err := c.Auth(smtp.PlainAuth("", user, pass, s.Host)); err != nil {
			// A server may echo the credentials in its 535 reply.
			return secret.Err(fmt.Errorf("authenticating to %s as %s: %w", addr, user, err))
		}
	}
	from, _ := mail.ParseAddress(s.From)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("MAIL FROM %s: %w", from.Address, err)
	}
	for _, to := range v.To {
		a, err := mail.ParseAddress(to)
		if err != nil {
			return fmt.Errorf("recipient %q: %w", to, err)
		}
		if err := c.Rcpt(a.Address); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("starting DATA: %w", err)
	}
	if _, err := w.Write(data); err != nil {
		return fmt.Errorf("writing message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("finishing message: %w", err)
	}
	return c.Quit()
}
