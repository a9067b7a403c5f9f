package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

var schemaNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

func openaiError(status int, typ, code, msg string) *apiError {
	var c any
	if code != "" {
		c = code
	}
	return &apiError{status: status, body: map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}}}
}

// openai serves POST /v1/chat/completions.
func (s *Server) openai(_ http.ResponseWriter, r *http.Request, req *Request, body map[string]any) (func(Reply) (int, any), *apiError) {
	auth := r.Header.Get("Authorization")
	if !strings.HasPrefix(auth, "Bearer ") {
		return nil, openaiError(http.StatusUnauthorized, "invalid_request_error", "",
			"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
	}
	if key := strings.TrimPrefix(auth, "Bearer "); key != s.apiKey {
		return nil, openaiError(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key", "Incorrect API key provided: "+mask(key)+".")
	}
	if body == nil {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
	}
	req.Model = str(body["model"])
	if req.Model == "" {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "you must provide a model parameter")
	}
	if req.Model != s.model {
		return nil, openaiError(http.StatusNotFound, "invalid_request_error", "model_not_found",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", req.Model))
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "[] is too short - 'messages'")
	}
	req.System, req.User = messagesText(msgs)
	if stream, _ := body["stream"].(bool); stream {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "fakellm: streaming is not served")
	}
	rf, _ := body["response_format"].(map[string]any)
	if str(rf["type"]) != "json_schema" {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "fakellm: response_format must be {type: json_schema}")
	}
	js, _ := rf["json_schema"].(map[string]any)
	name := str(js["name"])
	if !schemaNameRE.MatchString(name) {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "invalid_value",
			"Invalid 'response_format.json_schema.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.")
	}
	if strict, _ := js["strict"].(bool); !strict {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "fakellm: json_schema.strict must be true")
	}
	schema, _ := js["schema"].(map[string]any)
	if schema == nil {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "", "Missing required parameter: 'response_format.json_schema.schema'.")
	}
	if msg := strictSchema(schema, "()"); msg != "" {
		return nil, openaiError(http.StatusBadRequest, "invalid_request_error", "invalid_value",
			fmt.Sprintf("Invalid schema for response_format '%s': %s", name, msg))
	}
	req.Schema, _ = json.Marshal(schema)
	return func(rep Reply) (int, any) {
		if rep.Status != 0 && rep.Status != http.StatusOK {
			typ, code := "server_error", ""
			if rep.Status == http.StatusTooManyRequests {
				typ, code = "requests", "rate_limit_exceeded"
			}
			return rep.Status, openaiError(rep.Status, typ, code, "fakellm: "+http.StatusText(rep.Status)).body
		}
		reason := "stop"
		if rep.MaxTokens {
			reason = "length"
		}
		return http.StatusOK, map[string]any{
			"id":      "chatcmpl-fake",
			"object":  "chat.completion",
			"created": time.Now().Unix(),
			"model":   s.model + "-2025-01-01",
			"choices": []any{map[string]any{
				"index":         0,
				"message":       map[string]any{"role": "assistant", "content": rep.Answer, "refusal": nil},
				"finish_reason": reason,
			}},
			"usage": map[string]any{
				"prompt_tokens": rep.InputTokens, "completion_tokens": rep.OutputTokens,
				"total_tokens": rep.InputTokens + rep.OutputTokens,
			},
		}
	}, nil
}

// strictSchema applies the rules of OpenAI's strict mode that a schema
// most often breaks: every object sets additionalProperties to false and
// lists every property as required. It returns OpenAI's message, or "".
func strictSchema(s map[string]any, ctx string) string {
	if isType(s["type"], "object") {
		if ap, ok := s["additionalProperties"].(bool); !ok || ap {
			return fmt.Sprintf("In context=%s, 'additionalProperties' is required to be supplied and to be false.", ctx)
		}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for name := range props {
			if !slices.Contains(req, any(name)) {
				return fmt.Sprintf("In context=%s, 'required' is required to be supplied and to be an array including every key in properties. Missing '%s'.", ctx, name)
			}
		}
		for name, p := range props {
			pm, _ := p.(map[string]any)
			if msg := strictSchema(pm, fmt.Sprintf("('properties', '%s')", name)); msg != "" {
				return msg
			}
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		return strictSchema(items, ctx+", 'items'")
	}
	return ""
}

func isType(t any, want string) bool {
	switch t := t.(type) {
	case string:
		return t == want
	case []any:
		return slices.Contains(t, any(want))
	}
	return false
}

func mask(key string) string {
	if len(key) <= 8 {
		return "****"
	}
	return key[:3] + "*****" + key[len(key)-4:]
}
