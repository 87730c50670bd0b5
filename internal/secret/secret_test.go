package secret

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestScrubMasksEveryForm(t *testing.T) {
	t.Cleanup(reset)
	pw := "p@ss word/ü-555"
	if short := Add(pw, "abc"); len(short) != 1 || short[0] != "abc" {
		t.Fatalf("too short = %v, want [abc]", short)
	}
	for _, in := range []string{
		"535 credentials |user|" + pw,
		`Get "https://api.example/x?key=` + url.QueryEscape(pw) + `": 401`,
		"auth " + base64.StdEncoding.EncodeToString([]byte(pw)),
		"/" + url.PathEscape(pw) + "/",
	} {
		got := Scrub(in)
		if strings.Contains(got, pw) || strings.Contains(got, url.QueryEscape(pw)) || !strings.Contains(got, Mask) {
			t.Errorf("Scrub(%q) = %q", in, got)
		}
	}
	if got := Scrub("abc abc"); got != "abc abc" {
		t.Errorf("a too short value was scrubbed: %q", got)
	}
}

func TestErrKeepsChain(t *testing.T) {
	t.Cleanup(reset)
	Add("hunter2-secret")
	err := Err(fmt.Errorf("connecting as hunter2-secret: %w", fs.ErrPermission))
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("not scrubbed: %v", err)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Fatal("errors.Is lost the wrapped error")
	}
	if Err(nil) != nil {
		t.Fatal("Err(nil) is not nil")
	}
}

func TestHandlerScrubsMessageAndAttrs(t *testing.T) {
	t.Cleanup(reset)
	Add("TopSecret-42")
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewTextHandler(&buf, nil))).With("dsn", "password=TopSecret-42")
	log.Error("got TopSecret-42", "err", errors.New("echo TopSecret-42"),
		slog.Group("g", "x", "TopSecret-42"), "any", struct{ S string }{"TopSecret-42"})
	if strings.Contains(buf.String(), "TopSecret") {
		t.Fatalf("log line leaks the secret: %s", buf.String())
	}
	if strings.Count(buf.String(), Mask) != 5 {
		t.Fatalf("want 5 masks in %s", buf.String())
	}
}
