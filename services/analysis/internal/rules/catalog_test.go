package rules

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

var verb = regexp.MustCompile(`%[-+# 0]*[0-9]*(\.[0-9]+)?[a-zA-Z%]`)

// A translation keeps its English format's verbs, in order: Sprintf fills
// it with the same arguments.
func TestCatalogVerbs(t *testing.T) {
	t.Parallel()
	require.NotEmpty(t, catalogs["zh-TW"])
	for lang, c := range catalogs {
		for id, s := range c {
			assert.Equal(t, verb.FindAllString(id, -1), verb.FindAllString(s, -1), "%s: %q", lang, id)
		}
	}
}

// Every sentence the code says is in each catalogue, and each catalogue
// says nothing the code does not.
func TestCatalogCoversEveryFormat(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	used := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			arg := -1
			switch fun := call.Fun.(type) {
			case *ast.SelectorExpr:
				if fun.Sel.Name == "tr" {
					arg = 0
				}
			case *ast.Ident:
				if fun.Name == "unschedulable" {
					arg = 4 // its summary, said through tr
				}
			}
			if arg < 0 || len(call.Args) <= arg {
				return true
			}
			lit, ok := call.Args[arg].(*ast.BasicLit)
			if !ok {
				if fun, isSel := call.Fun.(*ast.SelectorExpr); isSel && fun.Sel.Name == "tr" {
					if id, isIdent := call.Args[0].(*ast.Ident); isIdent && id.Name == "summary" {
						return true // unschedulable's, checked at its calls
					}
				}
				t.Errorf("%s: a sentence that is not a literal cannot be translated", fset.Position(call.Pos()))
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			used[s] = true
			return true
		})
	}
	require.NotEmpty(t, used)
	for lang, c := range catalogs {
		for s := range used {
			assert.Contains(t, c, s, "%s lacks a translation", lang)
		}
		for id := range c {
			assert.True(t, used[id], "%s translates %q, which the code no longer says", lang, id)
		}
	}
}

// In Traditional Chinese every rule decides as in English -- the same
// rule, action, parameters and evidence -- and says it in Chinese.
func TestRulesInTraditionalChinese(t *testing.T) {
	t.Parallel()
	clock := func() time.Time { return now }
	en, zh := New(Options{Now: clock}), New(Options{Now: clock, Language: "zh_TW"})
	for _, tc := range ruleCases() {
		a, err := en.Analyze(t.Context(), tc.bundle)
		require.NoError(t, err)
		b, err := zh.Analyze(t.Context(), tc.bundle)
		require.NoError(t, err)
		require.Equal(t, a.Rule, b.Rule, tc.name)
		require.True(t, proto.Equal(a.Proposal, b.Proposal), tc.name)
		require.Equal(t, a.Evidence, b.Evidence, tc.name)
		require.InDelta(t, a.Confidence, b.Confidence, 1e-9, tc.name)
		require.Len(t, b.RuledOut, len(a.RuledOut), tc.name)
		assert.True(t, strings.ContainsFunc(b.Summary, isHan), "%s: %s", tc.name, b.Summary)
		assert.NotEqual(t, a.Summary, b.Summary, tc.name)
	}
	oom, err := zh.Analyze(t.Context(), build(oomKill(0)))
	require.NoError(t, err)
	assert.Equal(t, "容器 app 在記憶體上限 512Mi 時被 OOMKilled（重新啟動 4 次）：提高到 768Mi", oom.Summary)
	assert.Contains(t, oom.RuledOut, "不是映像檔問題：沒有 ImagePullBackOff 或 ErrImagePull")
}

func isHan(r rune) bool { return unicode.Is(unicode.Han, r) }
