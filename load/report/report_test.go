package report_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "github.com/cdwhq/cdw/extract/files"
	"github.com/cdwhq/cdw/extract/sample"
	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/internal/mailtest"
	_ "github.com/cdwhq/cdw/load/duckdbfile"
	_ "github.com/cdwhq/cdw/load/parquet"
	"github.com/cdwhq/cdw/load/report"
	"github.com/cdwhq/cdw/pipelines"
	_ "github.com/cdwhq/cdw/transform/clv"      // Go models the marts need (clv_params)
	_ "github.com/cdwhq/cdw/transform/identity" // identity_components, which the built-in models read
)

// warehouse builds a real demo warehouse with published marts.
func warehouse(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath, _, err := pipelines.WriteDemo(dir, sample.Options{Customers: 600, Years: 2, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pipelines.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The real path: a full run that publishes every mart the report reads.
	if _, err := (&pipelines.Runner{Cfg: cfg}).Run(context.Background(), pipelines.Options{Steps: pipelines.AllSteps}); err != nil {
		t.Fatalf("building and publishing the demo marts: %v", err)
	}
	return dir
}

func parse(t *testing.T, dir, yml string) *report.Config {
	t.Helper()
	root, err := config.Parse(filepath.Join(dir, "cdw.yaml"), []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := report.ParseConfig(root.Get("report"), root.Get("smtp"), dir, dir)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// tool finds an external test dependency. A missing one is a failure, not
// a skip: CI installs them (.ci/deps), and a silent skip would hide that the
// mail and rendering paths went untested.
func tool(t *testing.T, name string, extra ...string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, p := range extra {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s is not installed (see .ci/deps); this test needs it", name)
	return ""
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func units(t *testing.T, dir string) []string {
	t.Helper()
	rc := parse(t, dir, "report: {}\n")
	res, err := report.Run(context.Background(), rc, report.RunOptions{Out: filepath.Join(t.TempDir(), "x.html")})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`<tr><td>([A-Za-z]+)</td><td class="n">[0-9,]+</td><td class="n">[0-9,]+</td><td class="n">[0-9.]+%</td></tr>`).FindAllStringSubmatch(string(res.Versions[0].HTML), -1) {
		out = append(out, m[1])
	}
	if len(out) < 2 {
		t.Fatalf("expected several business units in the report, found %v", out)
	}
	return out
}

func TestMailThroughMailpit(t *testing.T) {
	dir := warehouse(t)
	us := units(t, dir)
	smtpPort, api := mailtest.Mailpit(t)
	yml := fmt.Sprintf(`report:
  to: [ceo@example.com, cfo@example.com]
  units: {%s: a-head@example.com, %s: b-head@example.com}
smtp:
  host: 127.0.0.1
  port: %d
  from: cdw@example.com
`, us[0], us[1], smtpPort)
	rc := parse(t, dir, yml)
	res, err := report.Run(context.Background(), rc, report.RunOptions{Send: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 {
		t.Fatalf("sent %d messages, want 3", res.Sent)
	}
	var list struct {
		Messages []struct {
			ID      string
			Subject string
			To      []struct{ Address string }
		}
	}
	getJSON(t, api+"/messages", &list)
	if len(list.Messages) != 3 {
		t.Fatalf("mailpit has %d messages, want 3", len(list.Messages))
	}
	want := map[string]string{"ceo@example.com,cfo@example.com": "", "a-head@example.com": us[0], "b-head@example.com": us[1]}
	for _, m := range list.Messages {
		var to []string
		for _, a := range m.To {
			to = append(to, a.Address)
		}
		unit, ok := want[strings.Join(to, ",")]
		if !ok {
			t.Fatalf("unexpected recipients %v", to)
		}
		delete(want, strings.Join(to, ","))
		msg := checkMailed(t, api, m.ID)
		if !strings.Contains(msg.Text, "Customer segment summary") {
			t.Errorf("message to %v lacks the text part", to)
		}
		if unit == "" {
			for _, u := range us {
				if !strings.Contains(msg.HTML, ">"+u+"<") {
					t.Errorf("all-units message lacks unit %s", u)
				}
			}
			continue
		}
		if !strings.Contains(m.Subject, unit) {
			t.Errorf("subject %q does not name unit %s", m.Subject, unit)
		}
		for _, other := range us {
			if other != unit && strings.Contains(msg.HTML, other) {
				t.Errorf("the %s version mentions unit %s", unit, other)
			}
		}
	}

	// The mailed HTML as a client shows it (cid: images resolved to the
	// PNG parts), in both languages, beside the saved file's SVG.
	bin := tool(t, "chromium", "/usr/bin/chromium")
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			rc := parse(t, dir, fmt.Sprintf("report: {lang: %s, to: [%s@example.com], currency: EUR}\nsmtp: {host: 127.0.0.1, port: %d, from: cdw@example.com}\n", lang, lang, smtpPort))
			res, err := report.Run(context.Background(), rc, report.RunOptions{Send: true, Now: time.Date(2026, 6, 1, 7, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatal(err)
			}
			if lang == "zh-CN" && !strings.Contains(res.Font, "CJK") && !strings.Contains(res.Font, "Droid") {
				t.Errorf("zh-CN charts drawn with %s, want a CJK font", res.Font)
			}
			var found struct {
				Messages []struct{ ID string }
			}
			getJSON(t, api+"/search?query=to:"+lang+"@example.com", &found)
			if len(found.Messages) != 1 {
				t.Fatalf("mailpit has %d messages to %s@example.com", len(found.Messages), lang)
			}
			msg := checkMailed(t, api, found.Messages[0].ID)
			if lang == "zh-CN" && !strings.Contains(msg.HTML, "客户细分摘要") {
				t.Fatal("zh-CN message has no Chinese title")
			}
			if !strings.Contains(msg.HTML, "€") {
				t.Error("report.currency EUR does not show in the message")
			}
			page := filepath.Join(t.TempDir(), "mailed.html")
			h := msg.HTML
			for _, in := range msg.Inline {
				name := in.ContentID + ".png"
				if err := os.WriteFile(filepath.Join(filepath.Dir(page), name), []byte(getRaw(t, api+"/message/"+found.Messages[0].ID+"/part/"+in.PartID)), 0o600); err != nil {
					t.Fatal(err)
				}
				h = strings.ReplaceAll(h, `src="cid:`+in.ContentID+`"`, `src="`+name+`"`)
			}
			if err := os.WriteFile(page, []byte(h), 0o600); err != nil {
				t.Fatal(err)
			}
			shot := checkRendered(t, bin, page, len(msg.Inline))
			keepScreenshot(t, shot, "report-mail-"+lang+".png")
			saved := res.Versions[0].File
			if n := strings.Count(string(res.Versions[0].HTML), "<svg"); n != len(msg.Inline) {
				t.Errorf("saved HTML has %d SVG charts, the mail %d PNGs", n, len(msg.Inline))
			}
			checkRendered(t, bin, saved, len(msg.Inline))
		})
	}
}

// mailed is what mailpit parsed from one message.
type mailed struct {
	Text, HTML string
	Inline     []struct{ PartID, FileName, ContentType, ContentID string }
}

// checkMailed reads a message from mailpit and checks its structure: text
// and HTML alternatives inside multipart/related, no SVG in the HTML, and
// exactly one inline PNG part for each cid: the HTML refers to.
func checkMailed(t *testing.T, api, id string) mailed {
	t.Helper()
	var msg mailed
	getJSON(t, api+"/message/"+id, &msg)
	raw := getRaw(t, api+"/message/"+id+"/raw")
	for _, ct := range []string{"multipart/related", "multipart/alternative", "text/plain; charset=UTF-8", "text/html; charset=UTF-8"} {
		if !strings.Contains(strings.ToLower(raw), strings.ToLower(ct)) {
			t.Errorf("message %s has no %s part", id, ct)
		}
	}
	if strings.Contains(msg.HTML, "<svg") {
		t.Errorf("message %s: mailed HTML has inline SVG, which Gmail and Outlook drop", id)
	}
	refs := map[string]bool{}
	for _, m := range regexp.MustCompile(`src="cid:([^"]+)"`).FindAllStringSubmatch(msg.HTML, -1) {
		refs[m[1]] = true
	}
	if len(refs) < 4 {
		t.Errorf("message %s: HTML refers to %d cid: images, want at least 4 charts", id, len(refs))
	}
	parts := map[string]bool{}
	for _, in := range msg.Inline {
		if in.ContentType != "image/png" {
			t.Errorf("message %s: inline part %s is %s, want image/png", id, in.ContentID, in.ContentType)
		}
		if !refs[in.ContentID] {
			t.Errorf("message %s: inline part %s is not referenced from the HTML", id, in.ContentID)
		}
		parts[in.ContentID] = true
	}
	for r := range refs {
		if !parts[r] {
			t.Errorf("message %s: HTML refers to cid:%s, which has no part", id, r)
		}
	}
	if len(parts) != len(msg.Inline) {
		t.Errorf("message %s: %d inline parts for %d distinct content IDs", id, len(msg.Inline), len(parts))
	}
	return msg
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getRaw(t, url)), v); err != nil {
		t.Fatal(err)
	}
}

func getRaw(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32*1024)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// TestRenderedInChromium checks the saved HTML (inline SVG) in both
// languages, for a unit version too.
func TestRenderedInChromium(t *testing.T) {
	bin := tool(t, "chromium", "/usr/bin/chromium")
	dir := warehouse(t)
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			rc := parse(t, dir, "report: {lang: "+lang+"}\n")
			out := filepath.Join(t.TempDir(), "report.html")
			if _, err := report.Run(context.Background(), rc, report.RunOptions{Out: out}); err != nil {
				t.Fatal(err)
			}
			html, _ := os.ReadFile(out)
			if lang == "zh-CN" && !strings.Contains(string(html), "客户细分摘要") {
				t.Fatal("zh-CN report has no Chinese title")
			}
			n := strings.Count(string(html), "<svg")
			if n < 4 {
				t.Fatalf("saved report has %d SVG charts, want at least 4", n)
			}
			checkRendered(t, bin, out, n)
		})
	}
}

func runChromium(t *testing.T, bin string, args []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "Uncaught") || strings.Contains(line, ":CONSOLE(") {
			t.Errorf("console error: %s", line)
		}
	}
	return stdout.String()
}

func TestChangeSincePreviousReport(t *testing.T) {
	dir := warehouse(t)
	rc := parse(t, dir, "report: {}\n")
	day1 := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	r1, err := report.Run(context.Background(), rc, report.RunOptions{Now: day1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(r1.Versions[0].HTML), "No earlier report") {
		t.Fatal("first report should say there is nothing to compare with")
	}
	// Pretend last week's figures were smaller: edit the saved snapshot.
	snap, _ := os.ReadFile(r1.Snapshot)
	var s map[string]any
	json.Unmarshal(snap, &s)
	all := s["scopes"].(map[string]any)[""].(map[string]any)
	now := int64(all["customers"].(float64))
	all["customers"] = float64(now / 2)
	snap, _ = json.Marshal(s)
	os.WriteFile(r1.Snapshot, snap, 0o600)
	r2, err := report.Run(context.Background(), rc, report.RunOptions{Now: day1.AddDate(0, 0, 7)})
	if err != nil {
		t.Fatal(err)
	}
	h := string(r2.Versions[0].HTML)
	if !strings.Contains(h, "Previous (2026-03-02)") {
		t.Fatal("second report does not compare with the first")
	}
	want := fmt.Sprintf("%+.1f%%", (float64(now)-float64(now/2))/float64(now/2)*100)
	if !strings.Contains(string(r2.Versions[0].Text), want) {
		t.Fatalf("second report lacks the customer change %s", want)
	}
	if _, err := os.Stat(filepath.Join(dir, "reports", "2026-03-09-segment-summary.html")); err != nil {
		t.Fatal(err)
	}
}

// TestReadmeConfigExample parses the configuration shown in README.md, so
// the documented keys stay the ones cdw reads.
func TestReadmeConfigExample(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("README.md has no yaml example")
	}
	dir := t.TempDir()
	rc := parse(t, dir, string(m[1]))
	if rc.Report.Currency != "EUR" || rc.Report.RiskScore != 50 || rc.Report.TopN != 10 || rc.SMTP == nil || !rc.SMTP.StartTLS {
		t.Errorf("README example parsed as %+v / %+v", rc.Report, rc.SMTP)
	}
}
