package pgconf

import (
	"strings"
	"testing"

	"github.com/cdwhq/cdw/internal/config"
)

type opts struct {
	Options `yaml:",inline"`
}

func parse(t *testing.T, text string) (Settings, error) {
	t.Helper()
	n, err := config.Parse("cdw.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var o opts
	if err := n.Decode(&o); err != nil {
		return Settings{}, err
	}
	return Parse(n, o.Options, "cdw")
}

func TestParse(t *testing.T) {
	t.Setenv("CDW_TEST_PGCONF_PW", "pw-from-env")
	for text, where := range map[string]string{
		"database: d\nuser: u\n": "localhost:5432 database d as user u",
		"host: h\nport: 6543\ndatabase: d\nuser: u\nsslmode: disable\npassword_env: CDW_TEST_PGCONF_PW\n": "h:6543 database d as user u",
		"dsn: postgres://u@h:7/d?sslmode=disable\n":                                                       "h:7 database d as user u",
		"dsn: host=h dbname=d user=u\n":                                                                   "h:5432 database d as user u",
	} {
		s, err := parse(t, text)
		if err != nil || s.Where != where || s.Config.RuntimeParams["application_name"] != "cdw" || s.Config.ConnectTimeout != DefaultConnectTimeout {
			t.Errorf("%q: where %q, %v; want %q", text, s.Where, err, where)
		}
	}
	for text, want := range map[string]string{
		"user: u\n":                                         `cdw.yaml:1: missing required key "database" (or give dsn)`,
		"database: d\nuser: u\nport: 0x\n":                  "cdw.yaml:3: port: expected",
		"database: d\nuser: u\nsslmode: maybe\n":            "cdw.yaml:3: sslmode: expected one of disable",
		"database: d\nuser: u\npassword_env: CDW_NO_SUCH\n": "cdw.yaml:3: password_env: environment variable CDW_NO_SUCH is not set",
		"dsn: host=h\nuser: u\n":                            "cdw.yaml:2: user: give either dsn",
		"dsn: postgres://u:hunter22@h/d\n":                  "cdw.yaml:1: dsn: contains a password",
		"database: d\nuser: u\nconnect_timeout: -1s\n":      "cdw.yaml:3: connect_timeout: must not be negative",
	} {
		_, err := parse(t, text)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "hunter22") {
			t.Errorf("%q: got %v, want %s", text, err, want)
		}
	}
}
