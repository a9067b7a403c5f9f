package gemini

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/llmtest"
)

// candidate is one of an answer's candidates holding text in one part,
// with members replaced (see llmtest.Replace).
func candidate(text string, changes ...string) string {
	fields := []string{
		`"content":{"parts":[{"text":` + llmtest.Quote(text) + `}],"role":"model"}`,
		`"finishReason":"STOP"`,
		`"avgLogprobs":-0.0123`,
		`"index":0`,
	}
	return "{" + strings.Join(llmtest.Replace(fields, changes...), ",") + "}"
}

// generated is a generateContent answer as Gemini sends it, with members
// replaced.
func generated(changes ...string) string {
	fields := []string{
		`"candidates":[` + candidate(llmtest.Answer) + `]`,
		`"usageMetadata":{"promptTokenCount":1500,"candidatesTokenCount":280,"totalTokenCount":1800,"thoughtsTokenCount":20,` +
			`"promptTokensDetails":[{"modality":"TEXT","tokenCount":1500}]}`,
		`"modelVersion":"gemini-2.5-flash"`,
		`"responseId":"mT3kaPLhHqbLvdIPzo2X4Ak"`,
	}
	return "{" + strings.Join(llmtest.Replace(fields, changes...), ",") + "}"
}

var decodeTests = []struct {
	name     string
	body     string
	wantText string
	wantIn   int
	wantOut  int
	wantErr  string
}{
	{name: "answer", body: generated(), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "answer in parts", body: generated(`"candidates":[` + candidate("", `"content":{"parts":[{"text":`+llmtest.Quote(llmtest.Answer[:40])+`},{"text":`+llmtest.Quote(llmtest.Answer[40:])+`}],"role":"model"}`) + `]`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "no thinking count", body: generated(`"usageMetadata":{"promptTokenCount":1500,"candidatesTokenCount":300,"totalTokenCount":1800}`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	// What the engine's parser refuses is passed on as it is.
	{name: "no parts", body: generated(`"candidates":[` + candidate("", `"content":{"role":"model"}`) + `]`), wantIn: 1500, wantOut: 300},
	{name: "a part without text", body: generated(`"candidates":[` + candidate("", `"content":{"parts":[{"functionCall":{"name":"x","args":{}}}],"role":"model"}`) + `]`), wantIn: 1500, wantOut: 300},

	{name: "prompt blocked", body: `{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH"}]},"usageMetadata":{"promptTokenCount":1500,"totalTokenCount":1500},"modelVersion":"gemini-2.5-flash"}`, wantErr: `no candidates (blocked: "SAFETY")`},
	{name: "no candidates", body: generated(`"candidates":[]`), wantErr: "no candidates"},
	{name: "candidates null", body: generated(`"candidates":null`), wantErr: "no candidates"},
	{name: "empty candidate", body: generated(`"candidates":[{}]`), wantErr: "finished with"},
	{name: "cut at the token limit", body: generated(`"candidates":[` + candidate(`{"summary":"shop`, `"finishReason":"MAX_TOKENS"`) + `]`), wantErr: "finished with MAX_TOKENS"},
	{name: "answer blocked", body: generated(`"candidates":[` + candidate("", `"finishReason":"SAFETY"`) + `]`), wantErr: "finished with SAFETY"},
	{name: "recitation", body: generated(`"candidates":[` + candidate(llmtest.Answer, `"finishReason":"RECITATION"`) + `]`), wantErr: "finished with RECITATION"},
	{name: "finish reason in lower case", body: generated(`"candidates":[` + candidate(llmtest.Answer, `"finishReason":"stop"`) + `]`), wantErr: "finished with stop"},
	{name: "long finish reason", body: generated(`"candidates":[` + candidate(llmtest.Answer, `"finishReason":"`+strings.Repeat("STOP", 100000)+`"`) + `]`), wantErr: "finished with STOP"},
	{name: "long block reason", body: `{"promptFeedback":{"blockReason":"` + strings.Repeat("\u00e9", 100000) + `"}}`, wantErr: "no candidates"},
	{name: "an error in a 200", body: `{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}`, wantErr: "no candidates"},
	{name: "parts as a string", body: generated(`"candidates":[` + candidate("", `"content":{"parts":"text"}`) + `]`), wantErr: "not the API's JSON"},
	{name: "streamed", body: "[" + generated() + "]", wantErr: "not the API's JSON"},
	{name: "count as a float", body: generated(`"usageMetadata":{"promptTokenCount":1.5e3}`), wantErr: "not the API's JSON"},
	{name: "negative count", body: generated(`"usageMetadata":{"promptTokenCount":1500,"candidatesTokenCount":300,"thoughtsTokenCount":-300}`), wantErr: "token count"},
	{name: "counts that overflow their sum", body: generated(`"usageMetadata":{"promptTokenCount":1500,"candidatesTokenCount":9223372036854775807,"thoughtsTokenCount":1}`), wantErr: "token count"},
	{name: "absurd model name", body: generated(`"modelVersion":"` + strings.Repeat("gemini", 1000) + `"`), wantErr: "model name"},
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decode([]byte(tt.body))
			llmtest.CheckDecoded(t, []byte(tt.body), got, err)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantText, got.Text)
			require.Equal(t, "gemini-2.5-flash", got.Model)
			require.Equal(t, tt.wantIn, got.InputTokens)
			require.Equal(t, tt.wantOut, got.OutputTokens)
		})
	}
	for _, body := range llmtest.Malformed() {
		_, err := decode([]byte(body))
		require.Error(t, err, "%q", body)
	}
}

// FuzzDecode: whatever the body of a generateContent answer, decode
// returns usage in range and either an unusable error or a text the
// engine's parser can judge.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add([]byte(tt.body))
	}
	for _, body := range llmtest.Malformed() {
		f.Add([]byte(body))
	}
	for _, body := range llmtest.Truncations(generated()) {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decode(body)
		llmtest.CheckDecoded(t, body, got, err)
	})
}

// FuzzErrorBody: whatever the body of a refusal, classify neither panics
// nor loses the status's kind (a bad key may only become ErrAuth), and
// the error is fit to log.
func FuzzErrorBody(f *testing.F) {
	f.Add(400, []byte(`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}`), "")
	f.Add(429, []byte(`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`), "")
	f.Add(429, []byte(`{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}`), "3")
	f.Add(403, []byte(`{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}`), "")
	f.Add(404, []byte(`{"error":{"code":404,"message":"models/x is not found for API version v1beta","status":"NOT_FOUND"}}`), "")
	f.Add(500, []byte(`{"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL","details":[{"retryDelay":"soon"}]}}`), "")
	f.Add(503, []byte(`{"error":{"code":503,"message":"`+strings.Repeat("The model is overloaded. ", 500)+`","status":"UNAVAILABLE","details":[{"reason":"API_KEY_INVALID"}]}}`), "")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		status = llmtest.ErrorStatus(status)
		err := classify(llm.NewStatusError(name, status, http.Header{"Retry-After": {retryAfter}}, errorMessage(body)))
		llmtest.CheckStatusError(t, err, status)
	})
}

func TestClassify(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("The key is not valid. ", 100)
	tests := []struct {
		name      string
		status    int
		body      string
		wantKind  error
		wantRetry time.Duration
	}{
		{name: "bad key", status: 400, body: `{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}`, wantKind: llm.ErrAuth},
		{name: "bad key, long message", status: 400, body: `{"error":{"code":400,"message":"` + long + `","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}`, wantKind: llm.ErrAuth},
		{name: "retry delay", status: 429, body: `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":"37s"}]}}`, wantKind: llm.ErrRateLimited, wantRetry: 37 * time.Second},
		{name: "blank retry delay", status: 429, body: `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":" "}]}}`, wantKind: llm.ErrRateLimited},
		{name: "retry delay ending the message", status: 429, body: `{"error":{"code":429,"message":"wait retry_delay=","status":"RESOURCE_EXHAUSTED"}}`, wantKind: llm.ErrRateLimited},
		{name: "invalid retry delay", status: 429, body: `{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED","details":[{"retryDelay":"soon"}]}}`, wantKind: llm.ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := classify(llm.NewStatusError(name, tt.status, http.Header{}, errorMessage([]byte(tt.body))))
			llmtest.CheckStatusError(t, err, tt.status)
			require.ErrorIs(t, err, tt.wantKind)
			var se *llm.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.wantRetry, se.RetryAfter)
		})
	}
}
