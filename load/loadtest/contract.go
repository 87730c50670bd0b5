package loadtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/config"
	"github.com/cdwhq/cdw/load"
)

// Target is one publish kind under the contract suite, in the style of
// golang-migrate's database/testing: each publisher's tests call the suite
// with a valid options text and it checks what every publisher promises.
type Target struct {
	Kind    string // the registered kind, e.g. "parquet"
	Options string // a valid options mapping (YAML, without kind:)
}

// Contract runs the publisher contract's config checks on tg: a valid
// options text opens without touching the warehouse directory; a mistyped
// key, added at a known line, fails Open with one error naming
// cdw.yaml:<line> and the key. (Atomic visibility, exactly once after a
// kill and secrets are proven by each publisher's own tests and
// pipelines/reliability for now; they belong here next.)
func Contract(t *testing.T, tg Target) {
	t.Helper()
	t.Run("opens", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wh")
		if _, err := open(t, tg.Kind, tg.Options, dir); err != nil {
			t.Fatalf("%s: valid options do not open: %v", tg.Kind, err)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s: Open created the warehouse directory; it must only check settings", tg.Kind)
		}
	})
	t.Run("typo names file, line and key", func(t *testing.T) {
		text := strings.TrimRight(tg.Options, "\n") + "\nno_such_key_x: 1\n"
		line := strings.Count(text, "\n")
		_, err := open(t, tg.Kind, text, t.TempDir())
		if err == nil {
			t.Fatalf("%s: an unknown key opened", tg.Kind)
		}
		if want := fmt.Sprintf("cdw.yaml:%d:", line); !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), `"no_such_key_x"`) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q; want one line starting %s naming the key", tg.Kind, err, want)
		}
	})
}

func open(t *testing.T, kind, text, dir string) (load.Publisher, error) {
	t.Helper()
	n, err := config.Parse("cdw.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	k, err := load.LookupKind(kind)
	if err != nil {
		t.Fatal(err)
	}
	return k.Open(load.TargetConfig{Options: n, Dir: dir, BaseDir: dir})
}
