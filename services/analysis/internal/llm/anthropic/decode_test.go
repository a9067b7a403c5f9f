package anthropic

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/llmtest"
)

// toolUse is the block that calls tool with input (a JSON value).
func toolUse(tool, input string) string {
	return `{"type":"tool_use","id":"toolu_01A09q90qw90lq917835lq9","name":` + llmtest.Quote(tool) + `,"input":` + input + `}`
}

// reply is a Messages API answer as Anthropic sends it when the tool is
// forced, with members replaced (see llmtest.Replace).
func reply(changes ...string) string {
	fields := []string{
		`"id":"msg_01XFDUDYJgAACzvnptvVoYEL"`,
		`"type":"message"`,
		`"role":"assistant"`,
		`"model":"claude-sonnet-4-20250514"`,
		`"content":[` + toolUse(llm.SchemaName, llmtest.Answer) + `]`,
		`"stop_reason":"tool_use"`,
		`"stop_sequence":null`,
		`"usage":{"input_tokens":1000,"cache_creation_input_tokens":300,"cache_read_input_tokens":200,"output_tokens":300,"service_tier":"standard"}`,
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
	{name: "answer", body: reply(), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "text before the tool call", body: reply(`"content":[{"type":"text","text":"Let me report."},` + toolUse(llm.SchemaName, llmtest.Answer) + `]`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "another tool first", body: reply(`"content":[` + toolUse("other_tool", `{}`) + `,` + toolUse(llm.SchemaName, llmtest.Answer) + `]`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	{name: "no cache counts", body: reply(`"usage":{"input_tokens":1500,"output_tokens":300}`), wantText: llmtest.Answer, wantIn: 1500, wantOut: 300},
	// What the engine's parser refuses is passed on as it is.
	{name: "input not an object", body: reply(`"content":[` + toolUse(llm.SchemaName, `"a string"`) + `]`), wantText: `"a string"`, wantIn: 1500, wantOut: 300},
	{name: "input missing", body: reply(`"content":[{"type":"tool_use","id":"toolu_1","name":"` + llm.SchemaName + `"}]`), wantIn: 1500, wantOut: 300},

	{name: "wrong tool name", body: reply(`"content":[` + toolUse("incident_analysis_v2", llmtest.Answer) + `]`), wantErr: "no incident_analysis tool call"},
	{name: "tool name in another case", body: reply(`"content":[` + toolUse("Incident_Analysis", llmtest.Answer) + `]`), wantErr: "no incident_analysis tool call"},
	{name: "text instead of the tool", body: reply(`"content":[{"type":"text","text":`+llmtest.Quote(llmtest.Answer)+`}]`, `"stop_reason":"end_turn"`), wantErr: "no incident_analysis tool call"},
	{name: "refusal", body: reply(`"content":[{"type":"text","text":"I can't help with that."}]`, `"stop_reason":"refusal"`), wantErr: "refused"},
	{name: "refusal after the tool call began", body: reply(`"stop_reason":"refusal"`), wantErr: "refused"},
	{name: "cut at the token limit", body: reply(`"stop_reason":"max_tokens"`), wantErr: "token limit"},
	{name: "no content", body: reply(`"content":[]`), wantErr: "no incident_analysis tool call"},
	{name: "content null", body: reply(`"content":null`), wantErr: "no incident_analysis tool call"},
	{name: "long stop reason", body: reply(`"content":[]`, `"stop_reason":"`+strings.Repeat("x", 100000)+`"`), wantErr: "no incident_analysis tool call"},
	{name: "an error in a 200", body: `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, wantErr: "no incident_analysis tool call"},
	{name: "content as a string", body: reply(`"content":"hello"`), wantErr: "not the API's JSON"},
	{name: "name as a number", body: reply(`"content":[{"type":"tool_use","name":1,"input":{}}]`), wantErr: "not the API's JSON"},
	{name: "streamed event", body: "event: message_start\ndata: " + reply() + "\n\n", wantErr: "not the API's JSON"},
	{name: "count past int64", body: reply(`"usage":{"input_tokens":9223372036854775808,"output_tokens":300}`), wantErr: "not the API's JSON"},
	{name: "negative count", body: reply(`"usage":{"input_tokens":1500,"cache_read_input_tokens":-1500,"output_tokens":300}`), wantErr: "token count"},
	{name: "counts that overflow their sum", body: reply(`"usage":{"input_tokens":9223372036854775807,"cache_creation_input_tokens":9223372036854775807,"output_tokens":300}`), wantErr: "token count"},
	{name: "absurd model name", body: reply(`"model":"` + strings.Repeat("claude", 1000) + `"`), wantErr: "model name"},
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tt := range decodeTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := decode([]byte(tt.body), llm.SchemaName)
			checkDecoded(t, []byte(tt.body), got, err)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantText, got.Text)
			require.Equal(t, "claude-sonnet-4-20250514", got.Model)
			require.Equal(t, tt.wantIn, got.InputTokens)
			require.Equal(t, tt.wantOut, got.OutputTokens)
		})
	}
	for _, body := range llmtest.Malformed() {
		_, err := decode([]byte(body), llm.SchemaName)
		require.Error(t, err, "%q", body)
	}
}

// checkDecoded adds to llmtest.CheckDecoded that the text of a tool call
// is the input as it was in the body: JSON, or nothing.
func checkDecoded(t *testing.T, body []byte, got llm.Response, err error) {
	t.Helper()
	llmtest.CheckDecoded(t, body, got, err)
	if err == nil && got.Text != "" {
		require.True(t, json.Valid([]byte(got.Text)), "a tool call's input is JSON: %q", got.Text)
	}
}

// FuzzDecode: whatever the body of a Messages API answer, decode returns
// usage in range and either an unusable error or a text the engine's
// parser can judge.
func FuzzDecode(f *testing.F) {
	for _, tt := range decodeTests {
		f.Add([]byte(tt.body))
	}
	for _, body := range llmtest.Malformed() {
		f.Add([]byte(body))
	}
	for _, body := range llmtest.Truncations(reply()) {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := decode(body, llm.SchemaName)
		checkDecoded(t, body, got, err)
	})
}

// FuzzErrorBody: whatever the body of a refusal, the error is the status's
// kind and fit to log.
func FuzzErrorBody(f *testing.F) {
	f.Add(529, []byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`), "30")
	f.Add(429, []byte(`{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization of 50,000 input tokens per minute."}}`), "12")
	f.Add(401, []byte(`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`), "")
	f.Add(400, []byte(`{"type":"error","error":{"type":"invalid_request_error","message":"tools.0.custom.input_schema.type: Input should be 'object'"}}`), "")
	f.Add(404, []byte(`{"type":"error","error":{"type":"","message":"no type"}}`), "")
	f.Add(500, []byte(`{"type":"error","error":{"type":"api_error","message":"`+strings.Repeat("x", 5000)+`"}}`), "")
	f.Add(502, []byte("<html>Bad Gateway</html>"), "1e9")
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		status = llmtest.ErrorStatus(status)
		err := llm.NewStatusError(name, status, http.Header{"Retry-After": {retryAfter}}, errorMessage(body))
		llmtest.CheckStatusError(t, err, status)
	})
}
