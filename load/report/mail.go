package report

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cdwhq/cdw/internal/secret"
	gomail "github.com/wneessen/go-mail"
)

// Image is one chart of the mailed version, a PNG referenced from its HTML
// as cid:<ID>.
type Image struct {
	ID  string
	PNG []byte
}

// message builds the e-mail: multipart/related holding the alternative
// (text/plain, then text/html that refers to the charts by cid:) and one
// inline PNG part per chart.
func message(from string, v Version, now time.Time) (*gomail.Msg, error) {
	m := gomail.NewMsg()
	if err := m.From(from); err != nil {
		return nil, fmt.Errorf("sender %q: %w", from, err)
	}
	if err := m.To(v.To...); err != nil {
		return nil, fmt.Errorf("recipients %v: %w", v.To, err)
	}
	m.Subject(v.Subject)
	m.SetDateWithValue(now)
	m.SetMessageID()
	m.SetBodyString(gomail.TypeTextPlain, string(v.Text))
	m.AddAlternativeString(gomail.TypeTextHTML, string(v.MailHTML))
	for _, img := range v.Images {
		if err := m.EmbedReader(img.ID+".png", bytes.NewReader(img.PNG),
			gomail.WithFileContentID(img.ID), gomail.WithFileContentType("image/png")); err != nil {
			return nil, fmt.Errorf("embedding chart %s: %w", img.ID, err)
		}
	}
	return m, nil
}

// send delivers one version. STARTTLS is used whenever the server offers it
// and is required when s.StartTLS; credentials come from the environment.
func send(ctx context.Context, s *SMTPOptions, v Version) error {
	msg, err := message(s.From, v, time.Now())
	if err != nil {
		return fmt.Errorf("building message: %w", err)
	}
	return deliver(ctx, s, msg)
}

// Notice is a short plain-text e-mail (an alert, not a report). MessageID,
// when set, is the Message-ID without angle brackets: a resend after a crash
// carries the same one, so a mail system that dedupes by it shows one.
type Notice struct {
	To        []string
	Subject   string
	Text      string
	MessageID string
}

// SendNotice delivers one notice through the smtp: server, the same way
// reports go (STARTTLS policy, credentials, scrubbed errors).
func SendNotice(ctx context.Context, s *SMTPOptions, n Notice) error {
	m := gomail.NewMsg()
	if err := m.From(s.From); err != nil {
		return fmt.Errorf("sender %q: %w", s.From, err)
	}
	if err := m.To(n.To...); err != nil {
		return fmt.Errorf("recipients %v: %w", n.To, err)
	}
	m.Subject(n.Subject)
	m.SetDateWithValue(time.Now())
	if n.MessageID != "" {
		m.SetMessageIDWithValue(n.MessageID)
	} else {
		m.SetMessageID()
	}
	m.SetBodyString(gomail.TypeTextPlain, n.Text)
	return deliver(ctx, s, m)
}

// deliver sends a built message.
func deliver(ctx context.Context, s *SMTPOptions, msg *gomail.Msg) error {
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
	policy := gomail.TLSOpportunistic
	if s.StartTLS {
		policy = gomail.TLSMandatory
	}
	opts := []gomail.Option{gomail.WithPort(s.Port), gomail.WithTimeout(s.Timeout), gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(tc), gomail.WithHELO("localhost")}
	if s.UsernameEnv != "" {
		user, pass := os.Getenv(s.UsernameEnv), os.Getenv(s.PasswordEnv)
		if user == "" || pass == "" {
			return fmt.Errorf("SMTP credentials: environment variables %s and %s must both be set", s.UsernameEnv, s.PasswordEnv)
		}
		// A server may echo the credentials in its replies (a 535 with the
		// AUTH line): every error below goes through the scrubber.
		secret.Add(user, pass)
		// PLAIN, which go-mail only sends over TLS (or to localhost).
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(user), gomail.WithPassword(pass))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("setting up SMTP client: %w", err)
	}
	addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		var tlsErr *tls.CertificateVerificationError
		switch {
		// go-mail has no sentinel for a missing STARTTLS under TLSMandatory.
		case s.StartTLS && strings.Contains(err.Error(), "does not support STARTTLS"):
			return fmt.Errorf("SMTP server %s does not offer STARTTLS, which smtp.starttls requires", addr)
		case errors.As(err, &tlsErr):
			return secret.Err(fmt.Errorf("starting TLS with %s (set smtp.ca_file for a private CA): %w", addr, err))
		}
		return secret.Err(fmt.Errorf("connecting to SMTP server %s: %w", addr, err))
	}
	defer c.CloseWithSMTPClient(sc)
	if err := c.SendWithSMTPClient(sc, msg); err != nil {
		return secret.Err(fmt.Errorf("sending message through %s: %w", addr, err))
	}
	return nil
}
