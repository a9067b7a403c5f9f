package openai

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/llmtest"
)

// choice is one of a completion's choices, with members replaced (see
// llmtest.Replace).
func choice(content string, changes ...string) string {
	fields := []string{
		`"index":0`,
		`"message":{"role":"assistant","content":` + llmtest.Quote(content) + `,"refusal":null,"annotations":[]}`,
		`"logprobs":null`,
		`"finish_reason":"stop"`,
	}
	return "{" + strings.Join(llmtest.Replace(fields, changes...), ",") + "}"
}

// completion is a chat completion as OpenAI sends it, with one choice
// holding the answer, and members replaced.
func completion(changes ...string) string {
	fields := []string{
		`"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"`,
		`"object":"chat.completion"`,
		`"created":1741569952`,
		`"model":"gpt-4.1-2025-04-14"`,
		`"choices":[` + choice(llmtest.Answer) + `]`,
		`"usage":{"prompt_tokens":1500,"completion_tokens":300,"total_tokens":1800,` +
			`"prompt_tokens_details":{"cached_tokens":1024,"audio_tokens":0},` +
			`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
		`"service_tier":"default"`,
		`"system_fingerprint":"fp_799e4ca3f1"`,
	}
	return "{" + strings.Join(llmtest.Replace(fields, changes...), ",") + "}"
}

const refusal = `I'm sorry, I can't help with that.`

var decodeTests = []struct {
	name     string
	body     string
	wantText string
	wantIn   int
	wantOut  int
	wantErr  string
}{
	{name: "answer", body: completion(), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "two choices, the first counts", body: completion(`"choices":[` + choice(llmtest.Answer) + `,` + choice("other") + `]`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "no usage (some compatible servers)", body: completion(`"usage":null`), wantText: llmtest.Answer},
	{name: "empty refusal", body: completion(`"choices":[` + choice(llmtest.Answer, `"message":{"role":"assistant","content":`+llmtest.Quote(llmtest.Answer)+`,"refusal":""}`) + `]`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	// What the engine's parser refuses is passed on as it is.
	{name: "fenced", body: completion(`"choices":[` + choice("```json\n"+llmtest.Answer+"\n```") + `]`), wantText: "```json\n" + llmtest.Answer + "\n```", wantIn: 1500, wantOut: 300},
	{name: "empty content", body: completion(`"choices":[` + choice("") + `]`), wantIn: 1500, wantOut: 300},

	{name: "refusal", body: completion(`"choices":[` + choice("", `"message":{"role":"assistant","content":null,"refusal":`+llmtest.Quote(refusal)+`}`) + `]`), wantErr: "the model refused"},
	{name: "long refusal", body: completion(`"choices":[` + choice("", `"message":{"role":"assistant","content":null,"refusal":"`+strings.Repeat("no ", 100000)+`"}`) + `]`), wantErr: "the model refused"},
	{name: "cut at the token limit", body: completion(`"choices":[` + choice(`{"summary":"shop`, `"finish_reason":"length"`) + `]`), wantErr: "token limit"},
	{name: "content filter", body: completion(`"choices":[` + choice("", `"finish_reason":"content_filter"`) + `]`), wantErr: "content filter"},
	{name: "tool call instead", body: completion(`"choices":[` + choice("", `"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"x","arguments":"{}"}}]}`, `"finish_reason":"tool_calls"`) + `]`), wantErr: "no content"},
	{name: "no choices", body: completion(`"choices":[]`), wantErr: "no choices"},
	{name: "choices null", body: completion(`"choices":null`), wantErr: "no choices"},
	{name: "choice null", body: completion(`"choices":[null]`), wantErr: "no content"},
	{name: "an error in a 200", body: `{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}`, wantErr: "no choices"},
	{name: "content as parts", body: completion(`"choices":[` + choice("", `"message":{"role":"assistant","content":[{"type":"text","text":"{}"}]}`) + `]`), wantErr: "not the API's JSON"},
	{name: "choices as an object", body: completion(`"choices":{"0":{}}`), wantErr: "not the API's JSON"},
	{name: "streamed chunk", body: "data: " + completion() + "\n\ndata: [DONE]\n\n", wantErr: "not the API's JSON"},
	{name: "count as a string", body: completion(`"usage":{"prompt_tokens":"1500","completion_tokens":300}`), wantErr: "not the API's JSON"},
	{name: "count past int64", body: completion(`"usage":{"prompt_tokens":1500,"completion_tokens":18446744073709551616}`), wantErr: "not the API's JSON"},
	{name: "huge number", body: completion(`"usage":{"prompt_tokens":1` + strings.Repeat("0", 100000) + `,"completion_tokens":300}`), wantErr: "not the API's JSON"},
	{name: "negative count", body: completion(`"usage":{"prompt_tokens":1500,"completion_tokens":-300}`), wantErr: "token count"},
	{name: "absurd count", body: completion(`"usage":{"prompt_tokens":4611686018427387904,"completion_tokens":4611686018427387904}`), wantErr: "token count"},
	{name: "absurd model name", body: completion(`"model":"` + strings.Repeat("gpt", 1000) + `"`), wantErr: "model name"},
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
			require.Equal(t, "gpt-4.1-2025-04-14", got.Model)
			require.Equal(t, tt.wantIn, got.InputTokens)
			require.Equal(t, tt.wantOut, got.OutputTokens)
		})
	}
	for _, body := range llmtest.Malformed() {
		_, err := decode([]byte(body))
		require.Error(t, err, "%q", body)
	}
}

// FuzzDecode: whatever the body of a chat completion, decode returns
// usage in range and either an unusable error or a text the engine's
// parser can judge.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add([]byte(tt.body))
	}
	for _, body := range llmtest.Malformed() {
		f.Add([]byte(body))
	}
	for _, body := range llmtest.Truncations(completion()) {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decode(body)
		llmtest.CheckDecoded(t, body, got, err)
	})
}

// FuzzErrorBody: whatever the body of a refusal, the error is the status's
// kind, fit to log, and an account out of credit is not retried.
func FuzzErrorBody(f *testing.F) {
	f.Add(429, []byte(`{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`), "20")
	f.Add(429, []byte(`{"error":{"message":"Rate limit reached for gpt-4.1 on tokens per min (TPM): Limit 30000, Used 29000.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`), "1.5")
	f.Add(401, []byte(`{"error":{"message":"Incorrect API key provided: sk-abc*****wxyz.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`), "")
	f.Add(400, []byte(`{"error":{"message":"Invalid schema for response_format 'incident_analysis'","type":"invalid_request_error","param":"response_format","code":500}}`), "")
	f.Add(500, []byte(`{"error":"plain string"}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Add(502, []byte("<html>Bad Gateway</html>"), "-1")
	f.Add(503, []byte(`{"error":{"message":"`+strings.Repeat("overloaded ", 1000)+`","code":"insufficient_quota"}}`), "10")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		status = llmtest.ErrorStatus(status)
		err := quotaIsNotRetryable(llm.NewStatusError(name, status, http.Header{"Retry-After": {retryAfter}}, errorMessage(body)))
		llmtest.CheckStatusError(t, err, status)
		var se *llm.StatusError
		if errors.As(err, &se) && strings.Contains(se.Message, "insufficient_quota") {
			require.Zero(t, se.RetryAfter, "retry after running out of credit")
		}
	})
}
