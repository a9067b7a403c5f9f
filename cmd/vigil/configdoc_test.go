package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/services/analysis"
)

// configDoc is the configuration reference.
const configDoc = "../../docs/configuration.md"

// providerSettings are the settings llmOptions reads per LLM provider
// (providerVar(provider, setting)); the test fails when llmOptions names
// one that is not here.
var providerSettings = []string{"URL", "MODEL", "API_KEY", "PRICE_INPUT", "PRICE_OUTPUT"}

// Every environment variable the binary reads is a row of a table in
// docs/configuration.md, and every row names a variable it reads. The
// variables are found in the source: every VIGIL_* (and OTEL_*, GOMEMLIMIT)
// name in a string of cmd/vigil, the names built by dbPasswordVar,
// providerVar and publicKeyVar, and the _FILE of each secretEnv.
func TestConfigDocListsEveryVariable(t *testing.T) {
	t.Parallel()
	read := variablesRead(t)
	documented := documentedVariables(t)
	undocumented := slices.DeleteFunc(slices.Clone(read), func(v string) bool { return slices.Contains(documented, v) })
	require.Empty(t, undocumented, "read by cmd/vigil, but no row in a variable table of %s", configDoc)
	unread := slices.DeleteFunc(slices.Clone(documented), func(v string) bool { return slices.Contains(read, v) })
	require.Empty(t, unread, "a row in %s, but cmd/vigil does not read it", configDoc)
}

var envName = regexp.MustCompile(`(?:^|[^A-Z0-9_])((?:VIGIL|OTEL)_[A-Z0-9_]*[A-Z0-9]|GOMEMLIMIT)`)

// variablesRead are the variables cmd/vigil reads, sorted.
func variablesRead(t *testing.T) []string {
	t.Helper()
	found := map[string]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					s, err := strconv.Unquote(n.Value)
					if n.Kind != token.STRING || err != nil {
						return true
					}
					for _, m := range envName.FindAllStringSubmatchIndex(s, -1) {
						// VIGIL_DB_ in "VIGIL_DB_<SERVICE>_PASSWORD" is a
						// template's head, built by a function below.
						if end := m[3]; end < len(s) && s[end] == '_' {
							continue
						}
						found[s[m[2]:m[3]]] = true
					}
				case *ast.CallExpr:
					fn, _ := n.Fun.(*ast.Ident)
					switch {
					case fn == nil:
					case fn.Name == "secretEnv":
						for _, v := range names(t, fset, decl, n.Args[0]) {
							found[v], found[v+"_FILE"] = true, true
						}
					case slices.Contains([]string{"providerVar", "dbPasswordVar", "publicKeyVar"}, fn.Name):
						for _, v := range names(t, fset, decl, n) {
							found[v] = true
						}
					}
				}
				return true
			})
		}
		return nil
	})
	require.NoError(t, err)
	out := make([]string, 0, len(found))
	for v := range found {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// names are the variable names expression e, in declaration decl, may
// evaluate to. An expression it cannot read fails the test: teach it.
func names(t *testing.T, fset *token.FileSet, decl ast.Decl, e ast.Expr) []string {
	t.Helper()
	switch e := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(e.Value)
		require.NoError(t, err)
		return []string{s}
	case *ast.Ident:
		// k in `for _, k := range []string{"A", "B"}`.
		var out []string
		ast.Inspect(decl, func(n ast.Node) bool {
			r, ok := n.(*ast.RangeStmt)
			if !ok {
				return true
			}
			if v, ok := r.Value.(*ast.Ident); !ok || v.Name != e.Name {
				return true
			}
			if lit, ok := r.X.(*ast.CompositeLit); ok {
				for _, elt := range lit.Elts {
					out = append(out, names(t, fset, decl, elt)...)
				}
			}
			return true
		})
		require.NotEmpty(t, out, "%s: cannot tell which variable %s names", fset.Position(e.Pos()), e.Name)
		return out
	case *ast.CallExpr:
		fn, _ := e.Fun.(*ast.Ident)
		var out []string
		switch {
		case fn == nil:
		case fn.Name == "dbPasswordVar":
			for _, s := range app.Services {
				out = append(out, dbPasswordVar(s))
			}
		case fn.Name == "publicKeyVar":
			for _, peers := range peerServices {
				for _, p := range peers {
					out = append(out, publicKeyVar(p))
				}
			}
		case fn.Name == "providerVar":
			settings := providerSettings
			if lit, ok := e.Args[1].(*ast.BasicLit); ok {
				setting, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				require.Contains(t, providerSettings, setting, "%s: add %s to providerSettings", fset.Position(e.Pos()), setting)
				settings = []string{setting}
			}
			for _, p := range analysis.Providers {
				for _, s := range settings {
					out = append(out, providerVar(p, s))
				}
			}
		}
		require.NotEmpty(t, out, "%s: cannot tell which variables this call names", fset.Position(e.Pos()))
		return out
	}
	require.Failf(t, "unknown variable name", "%s: cannot tell which variable this names", fset.Position(e.Pos()))
	return nil
}

// documentedVariables are the variables in the first column of every table
// of configDoc whose header starts with "variable", sorted. A cell lists
// names in backticks; `_FILE` after a name is that name's _FILE;
// <SERVICE> and <PROVIDER> stand for each service and LLM provider.
func documentedVariables(t *testing.T) []string {
	t.Helper()
	page, err := os.ReadFile(configDoc)
	require.NoError(t, err)
	templates := map[string][]string{"<SERVICE>": app.Services, "<PROVIDER>": analysis.Providers}
	found := map[string]bool{}
	inTable := false
	for line := range strings.SplitSeq(string(page), "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		first := strings.TrimSpace(strings.Split(line, "|")[1])
		if first == "variable" {
			inTable = true
			continue
		}
		if !inTable {
			continue
		}
		var prev string
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(first, -1) {
			name := m[1]
			if strings.HasPrefix(name, "_") {
				require.NotEmpty(t, prev, "%s: %q follows no variable: %s", configDoc, name, line)
				name = prev + name
			} else {
				prev = name
			}
			expanded := []string{name}
			for tmpl, values := range templates {
				if !strings.Contains(name, tmpl) {
					continue
				}
				expanded = expanded[:0]
				for _, v := range values {
					expanded = append(expanded, strings.ReplaceAll(name, tmpl, strings.ToUpper(v)))
				}
			}
			for _, v := range expanded {
				found[v] = true
			}
		}
	}
	require.NotEmpty(t, found, "%s: no table with a header starting with \"variable\"", configDoc)
	out := make([]string, 0, len(found))
	for v := range found {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}
