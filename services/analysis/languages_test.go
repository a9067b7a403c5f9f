package analysis_test

import (
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// An incident's analysis is written in its team's language
// (VIGIL_ANALYSIS_LANGUAGES), another team's or none in the
// installation's (VIGIL_LANGUAGE).
func TestAnalysisInTheTeamsLanguage(t *testing.T) {
	t.Parallel()
	e := analysis.Engines{Language: "en", Languages: map[string]string{"payments": "zh-TW"}}
	han := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Han, r) })
	}
	for _, tc := range []struct {
		team    string
		chinese bool
	}{{"payments", true}, {"web", false}, {"", false}} {
		b := &evidence.Bundle{Incident: evidence.Incident{
			ID: "i1", Title: "KubePodCrashLooping", Severity: "SEVERITY_CRITICAL", Team: tc.team, OpenedAt: time.Now(),
			Labels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop"},
		}}
		res, _, err := e.Analyze(t.Context(), b, "rules")
		require.NoError(t, err)
		require.NotEmpty(t, res.Summary)
		require.Equal(t, tc.chinese, han(res.Summary), "team %q: %s", tc.team, res.Summary)
		want := "en"
		if tc.chinese {
			want = "zh-TW"
		}
		require.Equal(t, want, b.Language, "what the LLMs are asked to write in")
	}
}
