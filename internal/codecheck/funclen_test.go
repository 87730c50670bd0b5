package codecheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// maxLines is the longest a function may be, counted from its func line to
// its closing brace, outside tests and generated files.
const maxLines = 120

// tooLong are the functions over the limit when the check was added, each
// with its length then, in packages other engineers were changing at the
// time. A listed function may only get shorter; once it is 120 lines or
// fewer (or gone) the test asks for its entry to be removed, so the list
// only shrinks.
var tooLong = map[string]int{} // empty since session 11: no function is over maxLines

// TestNoLongFunctions parses every Go file git tracks and fails on a
// non-test function (a declaration or a function literal) over maxLines.
func TestNoLongFunctions(t *testing.T) {
	root := repoRoot(t)
	out, err := exec.Command("git", "-C", root, "ls-files", "*.go").Output()
	if err != nil {
		t.Fatalf("listing Go files with git ls-files: %v", err)
	}
	fset := token.NewFileSet()
	seen := map[string]bool{}
	var long []string
	for _, file := range strings.Fields(string(out)) {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(root, file), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parsing %s: %v", file, err)
		}
		if ast.IsGenerated(f) {
			continue
		}
		for _, fn := range longFunctions(fset, f) {
			key := file + " " + fn.name
			if limit, ok := tooLong[key]; ok {
				seen[key] = true
				if fn.lines > limit {
					long = append(long, fmt.Sprintf("%s:%d: %s is %d lines, longer than the %d it had when listed in tooLong", file, fn.line, fn.name, fn.lines, limit))
				}
				continue
			}
			long = append(long, fmt.Sprintf("%s:%d: %s is %d lines (at most %d)", file, fn.line, fn.name, fn.lines, maxLines))
		}
	}
	for key := range tooLong {
		if !seen[key] {
			long = append(long, fmt.Sprintf("%s is within %d lines now (or gone): remove it from tooLong", key, maxLines))
		}
	}
	sort.Strings(long)
	for _, l := range long {
		t.Error(l)
	}
}

type function struct {
	name        string
	line, lines int
}

// longFunctions lists the functions of f over maxLines; a function literal
// is named after the declaration it is in.
func longFunctions(fset *token.FileSet, f *ast.File) []function {
	var out []function
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Body == nil {
			continue
		}
		ast.Inspect(fd, func(n ast.Node) bool {
			name := fd.Name.Name
			switch n.(type) {
			case *ast.FuncDecl:
			case *ast.FuncLit:
				name += " (func literal)"
			default:
				return true
			}
			start, end := fset.Position(n.Pos()).Line, fset.Position(n.End()).Line
			if lines := end - start + 1; lines > maxLines {
				out = append(out, function{name: name, line: start, lines: lines})
			}
			return true
		})
	}
	return out
}

// repoRoot is the module root, two folders up from this package.
func repoRoot(t *testing.T) string {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestLongFunctionsFindsOne makes sure the check sees a long function and
// a long function literal, so a green TestNoLongFunctions means something.
func TestLongFunctionsFindsOne(t *testing.T) {
	var b strings.Builder
	b.WriteString("package p\n\nfunc long() {\n")
	for i := 0; i < maxLines; i++ {
		b.WriteString("\t_ = 1\n")
	}
	b.WriteString("}\n\nfunc short() {\n\tf := func() {\n")
	for i := 0; i < maxLines; i++ {
		b.WriteString("\t\t_ = 1\n")
	}
	b.WriteString("\t}\n\tf()\n}\n")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", b.String(), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := longFunctions(fset, f)
	if len(got) != 3 || got[0].name != "long" || got[0].lines != maxLines+2 ||
		got[1].name != "short" || got[2].name != "short (func literal)" {
		t.Fatalf("found %+v", got)
	}
}
