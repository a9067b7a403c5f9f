// Package llmtest holds what the tests of the LLM providers share: the
// properties a provider's reading of a response body must have whatever
// the body was, and bodies no provider may accept. The providers' fuzz
// targets check them, so that the four parsers are held to one standard.
package llmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
)

// Bounds of what a parser passes on, whatever it read. Errors are logged
// and kept with the analysis (a proto string, so UTF-8); token counts are
// added and priced; the model's name is recorded.
const (
	maxError  = 2048
	maxTokens = 1 << 30 // no call comes near a billion tokens
	maxModel  = 256
)

// Bounds of an accepted answer (llm.ParseAnswer's).
const (
	maxText       = 4000
	maxListItems  = 50
	maxReplicas   = 10000
	maxLimitBytes = 1 << 40
)

// Answer is an answer llm.ParseAnswer accepts, to put in bodies.
const Answer = `{"summary":"shop runs out of memory","root_cause":"container app exceeds its 256Mi limit",` +
	`"evidence":["E1","E2"],"ruled_out":["a bad deploy: no recent change"],"action":"INCREASE_MEMORY_LIMIT",` +
	`"target":{"kind":"Deployment","namespace":"payments","name":"shop"},` +
	`"params":{"replicas":null,"container":"app","limit_bytes":402653184,"revision":null},` +
	`"confidence":0.8,"reasoning":"OOMKilled with exit 137"}`

// CheckDecoded checks what a provider returned for a 2xx body: usage in
// range even with an error (the engine records it either way); an error
// that wraps engine.ErrUnusable; success only for a JSON object; and an
// answer text that llm.ParseAnswer either refuses or turns into a result
// in shape, as the engine relies on.
func CheckDecoded(t testing.TB, body []byte, resp llm.Response, err error) {
	t.Helper()
	require.GreaterOrEqual(t, resp.InputTokens, 0, "input tokens")
	require.LessOrEqual(t, resp.InputTokens, maxTokens, "input tokens")
	require.GreaterOrEqual(t, resp.OutputTokens, 0, "output tokens")
	require.LessOrEqual(t, resp.OutputTokens, maxTokens, "output tokens")
	require.LessOrEqual(t, len(resp.Model), maxModel, "model name")
	if err != nil {
		CheckError(t, err, engine.ErrUnusable)
		return
	}
	trimmed := bytes.TrimSpace(body)
	require.True(t, json.Valid(trimmed) && bytes.HasPrefix(trimmed, []byte("{")), "accepted a body that is not a JSON object: %q", body)

	r, err := llm.ParseAnswer(resp.Text)
	if err != nil {
		CheckError(t, err, engine.ErrUnusable)
		return
	}
	CheckResult(t, r)
}

// CheckError checks an error is the kind promised and fit to log and keep:
// bounded and valid UTF-8 however large or broken the input was.
func CheckError(t testing.TB, err, kind error) {
	t.Helper()
	require.ErrorIs(t, err, kind)
	msg := err.Error()
	require.LessOrEqual(t, len(msg), maxError, "error message of %d bytes: %.300q...", len(msg), msg)
	require.True(t, utf8.ValidString(msg), "error message is not UTF-8: %q", msg)
}

// CheckStatusError checks what a provider made of a non-2xx answer: a
// *llm.StatusError of the status, whose kind follows from it (a provider
// may only turn a refusal into ErrAuth), fit to log and keep.
func CheckStatusError(t testing.TB, err error, status int) {
	t.Helper()
	var se *llm.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, status, se.Status)
	want := llm.ErrRejected
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || errors.Is(err, llm.ErrAuth):
		want = llm.ErrAuth
	case status == http.StatusTooManyRequests:
		want = llm.ErrRateLimited
	case status >= 500:
		want = llm.ErrUnavailable
	}
	CheckError(t, err, want)
	require.GreaterOrEqual(t, se.RetryAfter, time.Duration(0))
}

// CheckResult checks a result llm.ParseAnswer accepted is in the shape the
// schema promises; whether it fits the incident is engine.Check's to say.
func CheckResult(t testing.TB, r engine.Result) {
	t.Helper()
	require.NotEmpty(t, strings.TrimSpace(r.Summary), "summary")
	for _, s := range []string{r.Summary, r.RootCause, r.Reasoning} {
		require.LessOrEqual(t, len(s), maxText)
	}
	for _, list := range [][]string{r.Evidence, r.RuledOut} {
		require.LessOrEqual(t, len(list), maxListItems)
		for _, s := range list {
			require.LessOrEqual(t, len(s), maxText)
		}
	}
	require.GreaterOrEqual(t, r.Confidence, 0.0, "confidence")
	require.LessOrEqual(t, r.Confidence, 1.0, "confidence")

	p := r.Proposal
	require.NotNil(t, p, "proposal")
	action := p.GetAction()
	require.NotEqual(t, typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED, action)
	require.Contains(t, typesv1.RepairAction_name, int32(action))
	if action != typesv1.RepairAction_REPAIR_ACTION_NONE {
		tg := p.GetTarget()
		require.NotEmpty(t, tg.GetKind(), "%s without a target kind", action)
		require.NotEmpty(t, tg.GetNamespace(), "%s without a target namespace", action)
		require.NotEmpty(t, tg.GetName(), "%s without a target name", action)
	}
	switch action {
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		require.NotNil(t, p.GetScale(), "scale without replicas")
		require.GreaterOrEqual(t, p.GetScale().GetReplicas(), int32(0))
		require.LessOrEqual(t, p.GetScale().GetReplicas(), int32(maxReplicas))
	case typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
		m := p.GetMemoryLimit()
		require.NotNil(t, m, "memory limit without parameters")
		require.NotEmpty(t, m.GetContainer())
		require.Positive(t, m.GetLimitBytes())
		require.LessOrEqual(t, m.GetLimitBytes(), int64(maxLimitBytes))
	case typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT:
		require.NotNil(t, p.GetRollback(), "rollback without parameters")
		require.GreaterOrEqual(t, p.GetRollback().GetRevision(), int64(0))
	default:
		require.Nil(t, p.GetParams(), "%s with parameters", action)
	}
}

// Malformed are bodies that are not any API's answer: empty, not JSON (a
// proxy's HTML page, a plain-text error), JSON of the wrong kind, JSON
// with trailing data, broken UTF-8 and a number too large for any field.
func Malformed() []string {
	return []string{
		"",
		" \n",
		"<html><body><h1>502 Bad Gateway</h1></body></html>",
		"upstream connect error or disconnect/reset before headers",
		"null",
		"[]",
		`"a string"`,
		"42",
		"true",
		"{",
		`{"model":`,
		`{} {}`,
		`{}garbage`,
		"{\"model\":\"\xff\xfe\"}",
		`{"model":"m","` + strings.Repeat(`x`, 300) + `":1e999999}`,
		"\xef\xbb\xbf{}",
	}
}

// Truncations are the prefixes of body a connection broken mid-answer
// leaves: at each structural character, and the first and last bytes.
func Truncations(body string) []string {
	var out []string
	for i := 1; i < len(body); i++ {
		if strings.ContainsRune(`{}[]:,"`, rune(body[i])) || i < 3 || i > len(body)-3 {
			out = append(out, body[:i])
		}
	}
	return out
}

// Quote is s as a JSON string, to put an answer in a body.
func Quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}

// Replace puts each change, a `"key":value` member of a JSON object, in
// place of the member of fields with that key, or appends it when there
// is none; bodies in tests are written as lists of members.
func Replace(fields []string, changes ...string) []string {
	out := append([]string(nil), fields...)
	for _, c := range changes {
		key, _, _ := strings.Cut(c, ":")
		i := slices.IndexFunc(out, func(f string) bool { return strings.HasPrefix(f, key+":") })
		if i < 0 {
			out = append(out, c)
			continue
		}
		out[i] = c
	}
	return out
}

// ErrorStatus maps a fuzzed number to a status a provider's error body
// comes with (300-599: anything not 2xx reaches errorMessage).
func ErrorStatus(n int) int {
	return 300 + int(uint(n)%300)
}
