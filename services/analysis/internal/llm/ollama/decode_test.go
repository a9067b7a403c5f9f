package ollama

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/llmtest"
)

// chat is an /api/chat answer as Ollama sends it (stream off), with
// fields replaced: each change is `"key":value` put in place of the
// field of that key, or appended when it has none.
func chat(content string, changes ...string) string {
	fields := []string{
		`"model":"qwen2.5:7b"`,
		`"created_at":"2025-03-01T12:00:00.123456Z"`,
		`"message":{"role":"assistant","content":` + llmtest.Quote(content) + `}`,
		`"done":true`,
		`"done_reason":"stop"`,
		`"total_duration":1500000000`,
		`"load_duration":12000000`,
		`"prompt_eval_count":1500`,
		`"prompt_eval_duration":400000000`,
		`"eval_count":300`,
		`"eval_duration":1000000000`,
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
	{name: "answer", body: chat(llmtest.Answer), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "no done reason (older servers)", body: chat(llmtest.Answer, `"done_reason":null`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "no usage", body: chat(llmtest.Answer, `"prompt_eval_count":null`, `"eval_count":null`), wantText: llmtest.Answer},
	// What the engine's parser refuses is passed on as it is.
	{name: "prose", body: chat("The pod is out of memory."), wantText: "The pod is out of memory.", wantIn: 1500, wantOut: 300},
	{name: "empty content", body: chat(""), wantIn: 1500, wantOut: 300},

	{name: "not done", body: chat(llmtest.Answer, `"done":false`, `"done_reason":null`), wantErr: "not done"},
	{name: "done missing", body: chat(llmtest.Answer, `"done":null`), wantErr: "not done"},
	{name: "cut at the token limit", body: chat(`{"summary":"shop`, `"done_reason":"length"`), wantErr: "token limit"},
	{name: "an error in a 200", body: `{"error":"model 'qwen2.5:7b' not found"}`, wantErr: "not done"},
	{name: "streamed", body: chat(`{"sum`, `"done":false`) + "\n" + chat(`mary"}`), wantErr: "not the API's JSON"},
	{name: "done as a string", body: chat(llmtest.Answer, `"done":"true"`), wantErr: "not the API's JSON"},
	{name: "content as an object", body: chat("", `"message":{"role":"assistant","content":{"summary":"x"}}`), wantErr: "not the API's JSON"},
	{name: "message as a string", body: chat("", `"message":"hello"`), wantErr: "not the API's JSON"},
	{name: "fractional count", body: chat(llmtest.Answer, `"eval_count":300.5`), wantErr: "not the API's JSON"},
	{name: "count past int64", body: chat(llmtest.Answer, `"eval_count":99999999999999999999`), wantErr: "not the API's JSON"},
	{name: "count in exponent form", body: chat(llmtest.Answer, `"eval_count":1e999`), wantErr: "not the API's JSON"},
	{name: "negative count", body: chat(llmtest.Answer, `"prompt_eval_count":-1500`), wantErr: "token count"},
	{name: "absurd count", body: chat(llmtest.Answer, `"eval_count":9223372036854775807`), wantErr: "token count"},
	{name: "absurd model name", body: chat(llmtest.Answer, `"model":"`+strings.Repeat("m", 10000)+`"`), wantErr: "model name"},
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
			require.Equal(t, "qwen2.5:7b", got.Model)
			require.Equal(t, tt.wantIn, got.InputTokens)
			require.Equal(t, tt.wantOut, got.OutputTokens)
		})
	}
	for _, body := range llmtest.Malformed() {
		_, err := decode([]byte(body))
		require.Error(t, err, "%q", body)
	}
}

// FuzzDecode: whatever Ollama's body, decode returns usage in range and
// either an unusable error or a text the engine's parser can judge.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add([]byte(tt.body))
	}
	for _, body := range llmtest.Malformed() {
		f.Add([]byte(body))
	}
	for _, body := range llmtest.Truncations(chat(llmtest.Answer)) {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decode(body)
		llmtest.CheckDecoded(t, body, got, err)
	})
}

// FuzzErrorBody: whatever the body of a refusal, the error is the status's
// kind and fit to log.
func FuzzErrorBody(f *testing.F) {
	f.Add(404, []byte(`{"error":"model 'qwen2.5:7b' not found, try pulling it first"}`), "")
	f.Add(400, []byte(`{"error":"invalid format: expected \"json\" or a JSON schema"}`), "")
	f.Add(401, []byte(`{"error":"unauthorized"}`), "")
	f.Add(500, []byte(`{"error":{"message":"nested"}}`), "")
	f.Add(502, []byte("<html>Bad Gateway</html>"), "5")
	f.Add(503, []byte(`{"error":"`+strings.Repeat("x", 5000)+`"}`), "Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		status = llmtest.ErrorStatus(status)
		err := llm.NewStatusError(name, status, http.Header{"Retry-After": {retryAfter}}, errorMessage(body))
		llmtest.CheckStatusError(t, err, status)
	})
}
