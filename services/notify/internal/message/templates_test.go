package message_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template/parse"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

func writeTemplates(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	return dir
}

// An override replaces its kind in its language only; a new language
// borrows English for the kinds it lacks.
func TestOverride(t *testing.T) {
	t.Parallel()
	dir := writeTemplates(t, map[string]string{
		"incident.opened.zh-TW.tmpl": `{{with .Incident}}🔥 {{bold .Title}} ({{template "severity" .Severity}}){{end}}`,
		"deploy.failed.ja.tmpl":      `デプロイ失敗: {{.Deploy.App}}`,
	})
	tpl, err := message.NewTemplates(dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	assert.Equal(t, []string{"en", "ja", "zh-TW"}, tpl.Languages())

	draw := func(k message.Kind, lang string) string {
		m := message.Sample(k)
		m.Templates, m.Locale.Language = tpl, lang
		return m.Text(message.Plain)
	}
	assert.Equal(t, "🔥 CrashLoopBackOff: shop/checkout (嚴重)", draw(message.KindIncidentOpened, "zh-TW"))
	assert.True(t, strings.HasPrefix(draw(message.KindIncidentOpened, "en"), "🔴 P1 · shop · Incident opened:"), "English untouched")
	assert.True(t, strings.HasPrefix(draw(message.KindAnalysis, "zh-TW"), "🔎 分析："), "zh-TW's other kinds untouched")
	assert.Equal(t, "デプロイ失敗: shop", draw(message.KindDeployFailed, "ja"))
	assert.True(t, strings.HasPrefix(draw(message.KindDeploySucceeded, "ja"), "✅ Deployed: shop"), "a kind ja lacks is English")
}

// A template that does not parse, does not run on its sample, or is
// named for no kind refuses the set, naming its file (and line).
func TestOverrideRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, file, text string
		want             []string
	}{
		{"parse", "incident.opened.en.tmpl", "line one\n{{if .Incident}}never closed", []string{"incident.opened.en.tmpl", ":2:", "unexpected EOF"}},
		{"unknown field", "repair.failed.zh-TW.tmpl", "{{.Nope}}", []string{"repair.failed.zh-TW.tmpl", ":1:", "Nope"}},
		{"unknown function", "analysis.completed.en.tmpl", "{{shout .Summary}}", []string{"analysis.completed.en.tmpl", "shout"}},
		{"unknown kind", "incident.exploded.en.tmpl", "x", []string{"incident.exploded.en.tmpl", "no kind of message"}},
		{"no language", "incident.tmpl", "x", []string{"incident.tmpl", "<kind>.<language>.tmpl"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tpl, err := message.NewTemplates(writeTemplates(t, map[string]string{tt.file: tt.text}), slog.New(slog.DiscardHandler))
			require.Error(t, err)
			assert.Nil(t, tpl)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// A language without templates is drawn in English, and said once.
func TestUnknownLanguageIsEnglishLoggedOnce(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	tpl, err := message.NewTemplates("", slog.New(slog.NewTextHandler(&logs, nil)))
	require.NoError(t, err)
	for range 3 {
		m := message.Sample(message.KindDeployStarted)
		m.Templates, m.Locale.Language = tpl, "fr"
		assert.True(t, strings.HasPrefix(m.Text(message.Plain), "🚀 Deploy started: shop"))
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "no templates for this language"), logs.String())
	assert.Contains(t, logs.String(), "language=fr")
}

// Vigil's own templates write none of a markup's special characters as
// text (they would break Telegram's HTML or format in Slack): formatting
// goes through bold, code, italic and link.
func TestTemplatesTextHasNoMarkup(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("templates/*.tmpl")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(t, err)
		trees, err := parse.Parse(name, string(b), "{{", "}}", funcsForParse)
		require.NoError(t, err, name)
		for _, tree := range trees {
			walkText(tree.Root, func(text string) {
				assert.False(t, strings.ContainsAny(text, "<>&*_`"), "%s: %q", name, text)
			})
		}
	}
}

// funcsForParse names the functions templates may call (Vigil's and
// text/template's), for parsing alone: parse only checks the names.
var funcsForParse = func() map[string]any {
	m := map[string]any{}
	for _, name := range strings.Fields("bold italic code esc link word join print printf println or and not eq ne lt le gt ge len index slice call html js urlquery") {
		m[name] = true
	}
	return m
}()

func walkText(n parse.Node, see func(string)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkText(c, see)
		}
	case *parse.TextNode:
		see(string(n.Text))
	case *parse.IfNode:
		walkText(n.List, see)
		walkText(n.ElseList, see)
	case *parse.RangeNode:
		walkText(n.List, see)
		walkText(n.ElseList, see)
	case *parse.WithNode:
		walkText(n.List, see)
		walkText(n.ElseList, see)
	}
}

// Each subdirectory is a named set over the directory's own files, which
// are the default set over Vigil's; a broken file in a set refuses the
// whole load, naming the set and the file.
func TestLoadSets(t *testing.T) {
	t.Parallel()
	dir := writeTemplates(t, map[string]string{
		"incident.opened.en.tmpl":   `TOP {{.Incident.Title}}`,
		"incident.resolved.en.tmpl": `TOP resolved {{.Incident.Title}}`,
	})
	require.NoError(t, os.Mkdir(filepath.Join(dir, "terse"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "terse", "incident.opened.en.tmpl"), []byte(`TERSE {{.Incident.Title}}`), 0o600))
	sets, err := message.LoadSets(dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.Equal(t, []string{"terse"}, sets.Names())

	draw := func(tpl *message.Templates, k message.Kind) string {
		m := message.Sample(k)
		m.Templates = tpl
		return m.Text(message.Plain)
	}
	assert.Equal(t, "TOP CrashLoopBackOff: shop/checkout", draw(sets.Default, message.KindIncidentOpened))
	assert.Equal(t, "TERSE CrashLoopBackOff: shop/checkout", draw(sets.Named["terse"], message.KindIncidentOpened))
	assert.Equal(t, "TOP resolved CrashLoopBackOff: shop/checkout", draw(sets.Named["terse"], message.KindIncidentResolved), "the directory's own under the set")
	assert.True(t, strings.HasPrefix(draw(sets.Named["terse"], message.KindAnalysis), "🔎 Analysis:"), "Vigil's own under both")

	loc := message.Defaults{Templates: sets.Default, Sets: sets.Named}
	assert.Equal(t, "TERSE CrashLoopBackOff: shop/checkout", loc.For(message.Sample(message.KindIncidentOpened), message.Locale{Templates: "terse"}).Text(message.Plain))
	assert.Equal(t, "TOP CrashLoopBackOff: shop/checkout", loc.For(message.Sample(message.KindIncidentOpened), message.Locale{Templates: "gone"}).Text(message.Plain), "a set gone since it was checked: the default")

	require.NoError(t, os.Mkdir(filepath.Join(dir, "broken"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "broken", "repair.failed.en.tmpl"), []byte(`{{.Nope}}`), 0o600))
	_, err = message.LoadSets(dir, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "template set broken")
	assert.Contains(t, err.Error(), filepath.Join("broken", "repair.failed.en.tmpl"))
}

// A message sent again after a crash opens with the repeat line, in its
// language and markup, card or not; shared words overridden by a file
// that lacks the line (an older Vigil's) keep theirs and borrow Vigil's
// line.
func TestRepeatLine(t *testing.T) {
	t.Parallel()
	draw := func(m message.Message, tpl *message.Templates, lang string) string {
		m.Repeat, m.Templates, m.Locale.Language = true, tpl, lang
		return m.Text(message.Plain)
	}
	own := message.DefaultTemplates()
	opened := draw(message.Sample(message.KindIncidentOpened), own, "en")
	assert.True(t, strings.HasPrefix(opened, "⚠️ Possibly a repeat: Vigil stopped while sending this"), opened)
	assert.Contains(t, opened, "Incident opened")
	assert.True(t, strings.HasPrefix(draw(message.Sample(message.KindApprovalCard), own, "zh-TW"), "⚠️ 可能重複"))
	plain := message.Sample(message.KindIncidentOpened)
	plain.Templates = own
	assert.NotContains(t, plain.Text(message.Plain), "repeat", "only a repeat says so")

	common, err := os.ReadFile(filepath.Join("templates", "common.en.tmpl"))
	require.NoError(t, err)
	var older []string
	for line := range strings.Lines(string(common)) {
		if !strings.Contains(line, `define "repeat"`) {
			older = append(older, strings.Replace(line, `{{if eq . "critical"}}critical{{`, `{{if eq . "critical"}}CRIT{{`, 1))
		}
	}
	tpl, err := message.NewTemplates(writeTemplates(t, map[string]string{"common.en.tmpl": strings.Join(older, "")}), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	text := draw(message.Sample(message.KindIncidentOpened), tpl, "en")
	assert.True(t, strings.HasPrefix(text, "⚠️ Possibly a repeat"), text)
	assert.Contains(t, text, "CRIT", "the overridden words kept")
}
