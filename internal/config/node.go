// Package config decodes cdw's YAML strictly: an unknown key, a missing required
// key or a value of the wrong type is an error that names the file, the line and
// the key's full path, so a person can fix it without guessing.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Node is a piece of a config file together with where it came from.
// Components that own their settings (a source kind, a publisher) receive a
// Node and decode it into their own options struct.
type Node struct {
	File string     // config file path, for error messages
	Path string     // key path inside the file, e.g. "sources.shop"
	Y    *yaml.Node // nil when the key was absent
}

// Error is a config problem at a place in a file.
type Error struct {
	File string
	Line int
	Path string
	Msg  string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	msg := e.Msg
	if e.Path != "" {
		msg = e.Path + ": " + msg
	}
	if loc == "" {
		return msg
	}
	return loc + ": " + msg
}

// Load reads a YAML file into a Node.
func Load(path string) (Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Node{}, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses YAML text; file is used in error messages only.
func Parse(file string, data []byte) (Node, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return Node{}, &Error{File: file, Msg: "parsing YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(doc.Content) == 0 {
		return Node{File: file}, nil
	}
	return Node{File: file, Y: doc.Content[0]}, nil
}

// Errorf returns an Error located at this node.
func (n Node) Errorf(format string, args ...any) error {
	line := 0
	if n.Y != nil {
		line = n.Y.Line
	}
	return &Error{File: n.File, Line: line, Path: n.Path, Msg: fmt.Sprintf(format, args...)}
}

// Decode decodes the node into v, a pointer to a struct whose fields carry
// `yaml:"name"` tags. Fields tagged `required:"true"` must be present. Unknown
// keys are errors. Fields of type Node receive the raw sub-node so that the
// owner of that part of the config can decode it later.
func (n Node) Decode(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config.Decode needs a pointer to a struct, got %T", v)
	}
	return n.decodeStruct(rv.Elem())
}

var nodeType = reflect.TypeOf(Node{})
var durationType = reflect.TypeOf(time.Duration(0))

func (n Node) decodeStruct(sv reflect.Value) error {
	st := sv.Type()
	if n.Y == nil {
		return n.checkRequired(st, map[string]bool{})
	}
	if n.Y.Kind != yaml.MappingNode {
		return n.Errorf("expected a mapping of keys, found %s", kindName(n.Y))
	}
	fields := map[string][]int{}
	var known []string
	for _, f := range structFields(st) {
		fields[f.name] = f.index
		known = append(known, f.name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Y.Content); i += 2 {
		k, val := n.Y.Content[i], n.Y.Content[i+1]
		child := n.child(k.Value, val)
		idx, ok := fields[k.Value]
		if !ok {
			return (&Node{File: n.File, Path: n.Path, Y: k}).Errorf("unknown key %q (known keys: %s)", k.Value, strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return child.Errorf("key given twice")
		}
		seen[k.Value] = true
		if err := child.decodeValue(sv.FieldByIndex(idx)); err != nil {
			return err
		}
	}
	return n.checkRequired(st, seen)
}

func (n Node) checkRequired(st reflect.Type, seen map[string]bool) error {
	for _, f := range structFields(st) {
		if f.required && !seen[f.name] {
			return n.Errorf("missing required key %q", f.name)
		}
	}
	return nil
}

type structField struct {
	name     string
	index    []int
	required bool
}

// structFields lists the keys of a struct type in field order. An embedded
// struct tagged `yaml:",inline"` contributes its own keys at this level, so
// settings shared by components (PostgreSQL connection keys, say) are
// declared once and still checked as one mapping.
func structFields(st reflect.Type) []structField {
	var out []structField
	for i := 0; i < st.NumField(); i++ {
		f := st.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct && strings.Contains(f.Tag.Get("yaml"), ",inline") {
			for _, sf := range structFields(f.Type) {
				sf.index = append([]int{i}, sf.index...)
				out = append(out, sf)
			}
			continue
		}
		if name := yamlName(f); name != "" {
			out = append(out, structField{name: name, index: []int{i}, required: f.Tag.Get("required") == "true"})
		}
	}
	return out
}

func (n Node) child(key string, y *yaml.Node) Node {
	p := key
	if n.Path != "" {
		p = n.Path + "." + key
	}
	return Node{File: n.File, Path: p, Y: y}
}

func (n Node) decodeValue(fv reflect.Value) error {
	switch {
	case fv.Type() == nodeType:
		fv.Set(reflect.ValueOf(n))
		return nil
	case fv.Type() == durationType:
		d, err := time.ParseDuration(n.Y.Value)
		if err != nil || n.Y.Kind != yaml.ScalarNode {
			return n.Errorf("expected a duration such as 30s, 15m or 2h, found %q", n.Y.Value)
		}
		fv.SetInt(int64(d))
		return nil
	}
	switch fv.Kind() {
	case reflect.Struct:
		return n.decodeStruct(fv)
	case reflect.Pointer:
		nv := reflect.New(fv.Type().Elem())
		if err := n.decodeValue(nv.Elem()); err != nil {
			return err
		}
		fv.Set(nv)
		return nil
	case reflect.Slice:
		if n.Y.Kind == yaml.ScalarNode && fv.Type().Elem().Kind() == reflect.String && n.Y.Tag != "!!null" {
			fv.Set(reflect.Append(reflect.MakeSlice(fv.Type(), 0, 1), reflect.ValueOf(n.Y.Value).Convert(fv.Type().Elem())))
			return nil
		}
		if n.Y.Kind != yaml.SequenceNode {
			return n.Errorf("expected a list, found %s", kindName(n.Y))
		}
		out := reflect.MakeSlice(fv.Type(), len(n.Y.Content), len(n.Y.Content))
		for i, item := range n.Y.Content {
			c := Node{File: n.File, Path: fmt.Sprintf("%s[%d]", n.Path, i), Y: item}
			if err := c.decodeValue(out.Index(i)); err != nil {
				return err
			}
		}
		fv.Set(out)
		return nil
	case reflect.Map:
		if n.Y.Kind != yaml.MappingNode {
			return n.Errorf("expected a mapping, found %s", kindName(n.Y))
		}
		if fv.Type().Key().Kind() != reflect.String {
			return errors.New("config: map keys must be strings")
		}
		m := reflect.MakeMap(fv.Type())
		for i := 0; i+1 < len(n.Y.Content); i += 2 {
			k := n.Y.Content[i].Value
			if m.MapIndex(reflect.ValueOf(k).Convert(fv.Type().Key())).IsValid() {
				return n.child(k, n.Y.Content[i+1]).Errorf("key given twice")
			}
			ev := reflect.New(fv.Type().Elem()).Elem()
			if err := n.child(k, n.Y.Content[i+1]).decodeValue(ev); err != nil {
				return err
			}
			m.SetMapIndex(reflect.ValueOf(k).Convert(fv.Type().Key()), ev)
		}
		fv.Set(m)
		return nil
	default:
		if n.Y.Kind != yaml.ScalarNode {
			return n.Errorf("expected a single value, found %s", kindName(n.Y))
		}
		if err := n.Y.Decode(fv.Addr().Interface()); err != nil {
			return n.Errorf("expected a %s, found %q", fv.Kind(), n.Y.Value)
		}
		return nil
	}
}

// Keys returns the keys of a mapping node in file order.
func (n Node) Keys() []string {
	if n.Y == nil || n.Y.Kind != yaml.MappingNode {
		return nil
	}
	var ks []string
	for i := 0; i+1 < len(n.Y.Content); i += 2 {
		ks = append(ks, n.Y.Content[i].Value)
	}
	return ks
}

// Get returns the child node under key (with a nil Y when absent).
func (n Node) Get(key string) Node {
	if n.Y != nil && n.Y.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Y.Content); i += 2 {
			if n.Y.Content[i].Value == key {
				return n.child(key, n.Y.Content[i+1])
			}
		}
	}
	return n.child(key, nil)
}

// Without returns a copy of a mapping node minus the given keys, so a generic
// layer can take its own keys (name, kind) and hand the rest to a component.
func (n Node) Without(keys ...string) Node {
	if n.Y == nil || n.Y.Kind != yaml.MappingNode {
		return n
	}
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	cp := *n.Y
	cp.Content = nil
	for i := 0; i+1 < len(n.Y.Content); i += 2 {
		if !drop[n.Y.Content[i].Value] {
			cp.Content = append(cp.Content, n.Y.Content[i], n.Y.Content[i+1])
		}
	}
	return Node{File: n.File, Path: n.Path, Y: &cp}
}

// Only returns a copy of a mapping node with just the given keys, so a
// generic layer can strictly decode its own keys (name, kind) of an entry
// whose other keys belong to a component.
func (n Node) Only(keys ...string) Node {
	keep := map[string]bool{}
	for _, k := range keys {
		keep[k] = true
	}
	var drop []string
	for _, k := range n.Keys() {
		if !keep[k] {
			drop = append(drop, k)
		}
	}
	return n.Without(drop...)
}

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	if tag == "-" || !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func kindName(y *yaml.Node) string {
	switch y.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	default:
		return fmt.Sprintf("%q", y.Value)
	}
}

// EnvRefs lists the environment variables the config names in `*_env` keys
// (a name, or a map of names such as params_env), anywhere in the tree: the
// values cdw treats as secrets.
func (n Node) EnvRefs() []string {
	var out []string
	var walk func(y *yaml.Node)
	walk = func(y *yaml.Node) {
		if y == nil {
			return
		}
		if y.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(y.Content); i += 2 {
				k, v := y.Content[i], y.Content[i+1]
				if strings.HasSuffix(k.Value, "_env") {
					switch v.Kind {
					case yaml.ScalarNode:
						out = append(out, v.Value)
					case yaml.MappingNode:
						for j := 1; j < len(v.Content); j += 2 {
							if v.Content[j].Kind == yaml.ScalarNode {
								out = append(out, v.Content[j].Value)
							}
						}
					}
				}
				walk(v)
			}
			return
		}
		for _, c := range y.Content {
			walk(c)
		}
	}
	walk(n.Y)
	return out
}
