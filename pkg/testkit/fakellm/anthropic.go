package fakellm

import (
	"encoding/json"
	"net/http"
)

func anthropicError(status int, typ, msg string) *apiError {
	return &apiError{status: status, body: map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}}}
}

// anthropic serves POST /v1/messages.
func (s *Server) anthropic(_ http.ResponseWriter, r *http.Request, req *Request, body map[string]any) (func(Reply) (int, any), *apiError) {
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		return nil, anthropicError(http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
	}
	if key != s.apiKey {
		return nil, anthropicError(http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
	}
	if v := r.Header.Get("Anthropic-Version"); v != "2023-06-01" {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required and must be a supported version")
	}
	if body == nil {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "request body is not valid JSON")
	}
	req.Model = str(body["model"])
	if req.Model == "" {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "model: Field required")
	}
	if req.Model != s.model {
		return nil, anthropicError(http.StatusNotFound, "not_found_error", "model: "+req.Model)
	}
	if mt, ok := body["max_tokens"].(float64); !ok || mt < 1 || mt != float64(int64(mt)) {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "max_tokens: Field required")
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "messages: Field required")
	}
	for _, m := range msgs {
		if role := str(m.(map[string]any)["role"]); role != "user" && role != "assistant" {
			return nil, anthropicError(http.StatusBadRequest, "invalid_request_error",
				`messages: Unexpected role "`+role+`". The Messages API accepts a top-level `+"`system`"+` parameter, not "system" as an input message role.`)
		}
	}
	if first := str(msgs[0].(map[string]any)["role"]); first != "user" {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "messages: first message must use the \"user\" role")
	}
	req.System = contentText(body["system"])
	_, req.User = messagesText(msgs)
	if stream, _ := body["stream"].(bool); stream {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "fakellm: streaming is not served")
	}
	tools, _ := body["tools"].([]any)
	byName := map[string]map[string]any{}
	for _, t := range tools {
		tm, _ := t.(map[string]any)
		name := str(tm["name"])
		if !schemaNameRE.MatchString(name) {
			return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'")
		}
		schema, _ := tm["input_schema"].(map[string]any)
		if schema == nil || schema["type"] != "object" {
			return nil, anthropicError(http.StatusBadRequest, "invalid_request_error", "tools.0.custom.input_schema.type: Input should be 'object'")
		}
		byName[name] = schema
	}
	tc, _ := body["tool_choice"].(map[string]any)
	toolName := str(tc["name"])
	if str(tc["type"]) != "tool" || byName[toolName] == nil {
		return nil, anthropicError(http.StatusBadRequest, "invalid_request_error",
			"fakellm: tool_choice must be {type: tool, name} naming one of the tools (structured output through a forced tool)")
	}
	req.Schema, _ = json.Marshal(byName[toolName])
	return func(rep Reply) (int, any) {
		if rep.Status != 0 && rep.Status != http.StatusOK {
			typ := "api_error"
			switch rep.Status {
			case http.StatusTooManyRequests:
				typ = "rate_limit_error"
			case 529:
				typ = "overloaded_error"
			}
			return rep.Status, anthropicError(rep.Status, typ, "fakellm: "+http.StatusText(rep.Status)).body
		}
		input, err := answerObject(rep.Answer)
		if err != nil {
			return http.StatusInternalServerError, anthropicError(http.StatusInternalServerError, "api_error", err.Error()).body
		}
		stop := "tool_use"
		if rep.MaxTokens {
			stop = "max_tokens"
		}
		return http.StatusOK, map[string]any{
			"id": "msg_fake", "type": "message", "role": "assistant", "model": s.model,
			"content":     []any{map[string]any{"type": "tool_use", "id": "toolu_fake", "name": toolName, "input": input}},
			"stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]any{
				"input_tokens": rep.InputTokens, "output_tokens": rep.OutputTokens,
				"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
			},
		}
	}, nil
}
