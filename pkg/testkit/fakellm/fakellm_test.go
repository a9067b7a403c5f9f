package fakellm_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakellm"
)

func post(t *testing.T, url string, header http.Header, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header = header
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

var schema = map[string]any{
	"type": "object", "additionalProperties": false, "required": []string{"a"},
	"properties": map[string]any{"a": map[string]any{"type": "string"}},
}

// The fake refuses what the real APIs refuse; each case is one rule.
func TestServerEnforcesTheAPIs(t *testing.T) {
	t.Parallel()
	s := fakellm.New(t, fakellm.Options{})
	s.Always(fakellm.Reply{Answer: `{"a":"x"}`})
	key := fakellm.DefaultAPIKey
	model := fakellm.DefaultModel
	msgs := []map[string]any{{"role": "user", "content": "hi"}}
	bearer := http.Header{"Authorization": {"Bearer " + key}}
	anth := http.Header{"X-Api-Key": {key}, "Anthropic-Version": {"2023-06-01"}}
	gem := http.Header{"X-Goog-Api-Key": {key}}
	gemURL := s.URL() + "/v1beta/models/" + model + ":generateContent"
	gemSchema := map[string]any{"type": "OBJECT", "properties": map[string]any{"a": map[string]any{"type": "STRING"}}}
	tool := []map[string]any{{"name": "t", "input_schema": schema}}
	openaiFormat := func(s map[string]any) map[string]any {
		return map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": "answer", "schema": s, "strict": true}}
	}
	loose := map[string]any{"type": "object", "properties": map[string]any{"a": map[string]any{"type": "string"}}}

	tests := []struct {
		name   string
		url    string
		header http.Header
		body   map[string]any
		status int
		says   string
	}{
		{"ollama ok", "/api/chat", http.Header{}, map[string]any{"model": model, "messages": msgs, "stream": false, "format": schema}, 200, `"done":true`},
		{"ollama streams by default", "/api/chat", http.Header{}, map[string]any{"model": model, "messages": msgs, "format": schema}, 400, "stream:false"},
		{"ollama format json is not a schema", "/api/chat", http.Header{}, map[string]any{"model": model, "messages": msgs, "stream": false, "format": "json"}, 400, "format"},
		{"ollama unknown model", "/api/chat", http.Header{}, map[string]any{"model": "llama9", "messages": msgs, "stream": false, "format": schema}, 404, "not found, try pulling it first"},

		{"openai ok", "/v1/chat/completions", bearer, map[string]any{"model": model, "messages": msgs, "response_format": openaiFormat(schema)}, 200, `"prompt_tokens":1000`},
		{"openai no key", "/v1/chat/completions", http.Header{}, map[string]any{"model": model}, 401, "You didn't provide an API key"},
		{"openai wrong key", "/v1/chat/completions", http.Header{"Authorization": {"Bearer sk-wrong-000000"}}, map[string]any{"model": model}, 401, "invalid_api_key"},
		{"openai strict needs additionalProperties false", "/v1/chat/completions", bearer, map[string]any{"model": model, "messages": msgs, "response_format": openaiFormat(loose)}, 400, "'additionalProperties' is required to be supplied and to be false"},
		{"openai no response_format", "/v1/chat/completions", bearer, map[string]any{"model": model, "messages": msgs}, 400, "json_schema"},

		{"anthropic ok", "/v1/messages", anth, map[string]any{"model": model, "max_tokens": 100, "messages": msgs, "tools": tool, "tool_choice": map[string]any{"type": "tool", "name": "t"}}, 200, `"type":"tool_use"`},
		{"anthropic no version", "/v1/messages", http.Header{"X-Api-Key": {key}}, map[string]any{"model": model}, 400, "anthropic-version"},
		{"anthropic wrong key", "/v1/messages", http.Header{"X-Api-Key": {"nope"}, "Anthropic-Version": {"2023-06-01"}}, map[string]any{"model": model}, 401, "authentication_error"},
		{"anthropic needs max_tokens", "/v1/messages", anth, map[string]any{"model": model, "messages": msgs}, 400, "max_tokens: Field required"},
		{"anthropic system is not a role", "/v1/messages", anth, map[string]any{"model": model, "max_tokens": 1, "messages": []map[string]any{{"role": "system", "content": "x"}}}, 400, "top-level `system`"},
		{"anthropic tool not forced", "/v1/messages", anth, map[string]any{"model": model, "max_tokens": 100, "messages": msgs, "tools": tool}, 400, "tool_choice"},

		{"gemini ok", gemURL, gem, map[string]any{"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]any{"text": "hi"}}}}, "generationConfig": map[string]any{"responseMimeType": "application/json", "responseSchema": gemSchema}}, 200, `"promptTokenCount":1000`},
		{"gemini bad key is a 400", gemURL, http.Header{"X-Goog-Api-Key": {"nope"}}, map[string]any{}, 400, "API_KEY_INVALID"},
		{"gemini no key", gemURL, http.Header{}, map[string]any{}, 403, "PERMISSION_DENIED"},
		{"gemini refuses additionalProperties", gemURL, gem, map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}, "generationConfig": map[string]any{"responseMimeType": "application/json", "responseSchema": schema}}, 400, `Unknown name \"additionalProperties\"`},
		{"gemini schema needs JSON mime type", gemURL, gem, map[string]any{"contents": []any{map[string]any{"parts": []any{map[string]any{"text": "hi"}}}}, "generationConfig": map[string]any{"responseSchema": gemSchema}}, 400, "application/json"},
		{"gemini unknown model", s.URL() + "/v1beta/models/gemini-0:generateContent", gem, map[string]any{}, 404, "models/gemini-0 is not found"},
	}
	for _, tt := range tests {
		url := tt.url
		if url[0] == '/' {
			url = s.URL() + url
		}
		status, body := post(t, url, tt.header, tt.body)
		require.Equal(t, tt.status, status, "%s: %s", tt.name, body)
		require.Contains(t, body, tt.says, tt.name)
	}
	require.Len(t, s.Requests(), len(tests))
}
