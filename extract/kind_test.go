package extract

import (
	"context"
	"strings"
	"testing"
)

// TestRegisterNeedsEntities: a source kind that does not say which
// entities its options configure would silently get no raw views, so
// registering it panics.
func TestRegisterNeedsEntities(t *testing.T) {
	defer func() {
		r := recover()
		if s, _ := r.(string); !strings.Contains(s, "declares no Entities") {
			t.Fatalf("recovered %v", r)
		}
	}()
	Register(Kind{Name: "no-entities", Open: func(context.Context, SourceConfig) (Source, error) { return nil, nil }})
}
