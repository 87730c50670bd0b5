package extract

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cdwhq/cdw/internal/config"
)

// MappingSQL reads a mapping value of the form {sql: "price * quantity"}:
// a column computed by DuckDB in the raw view raw.<source>_<entity> from
// the columns the source lands there (mapped columns under their canonical
// names, the others under their own). It reports false for any other value.
// Required columns (the key, the timestamp) cannot be computed: the
// extract needs them to accept a row.
func MappingSQL(n config.Node, c Column) (string, bool, error) {
	if n.Y == nil || n.Y.Kind != yaml.MappingNode || n.Get("sql").Y == nil {
		return "", false, nil
	}
	var v struct {
		SQL string `yaml:"sql"`
	}
	if err := n.Decode(&v); err != nil {
		return "", true, err
	}
	if strings.TrimSpace(v.SQL) == "" {
		return "", true, n.Get("sql").Errorf("empty expression")
	}
	if c.Required {
		return "", true, n.Errorf("%s is required: map it to a source column (expressions are for optional columns, computed after the extract)", c.Name)
	}
	return v.SQL, true, nil
}
