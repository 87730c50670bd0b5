package config

import (
	"strings"
	"testing"
)

type shared struct {
	Host string `yaml:"host" required:"true"`
	Port int    `yaml:"port"`
}

type withShared struct {
	shared `yaml:",inline"`
	Schema string `yaml:"schema"`
}

// TestInline: an embedded struct tagged inline adds its keys at the same
// level, required keys included, and a typo is named with every known key.
func TestInline(t *testing.T) {
	n, err := Parse("cdw.yaml", []byte("host: h\nport: 5\nschema: s\n"))
	if err != nil {
		t.Fatal(err)
	}
	var v withShared
	if err := n.Decode(&v); err != nil || v.Host != "h" || v.Port != 5 || v.Schema != "s" {
		t.Fatalf("got %+v, %v", v, err)
	}
	for text, want := range map[string]string{
		"port: 5\n":          `cdw.yaml:1: missing required key "host"`,
		"host: h\nprot: 5\n": `cdw.yaml:2: unknown key "prot" (known keys: host, port, schema)`,
	} {
		n, _ := Parse("cdw.yaml", []byte(text))
		if err := n.Decode(&withShared{}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %s", text, err, want)
		}
	}
}
