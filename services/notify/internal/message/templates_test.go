package message_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
