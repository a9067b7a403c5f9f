package fakellm

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

func geminiError(status int, grpcStatus, msg string, details ...any) *apiError {
	e := map[string]any{"code": status, "message": msg, "status": grpcStatus}
	if len(details) > 0 {
		e["details"] = details
	}
	return &apiError{status: status, body: map[string]any{"error": e}}
}

// schemaFields are the fields of Gemini's Schema object; any other key in
// responseSchema is refused, as the API's JSON parser refuses it.
var schemaFields = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true, "enum": true,
	"maxItems": true, "minItems": true, "properties": true, "required": true, "minProperties": true,
	"maxProperties": true, "minLength": true, "maxLength": true, "pattern": true, "example": true,
	"anyOf": true, "propertyOrdering": true, "default": true, "items": true, "minimum": true, "maximum": true,
}

// schemaTypes are the names of Gemini's Type enum.
var schemaTypes = map[string]bool{"STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true, "ARRAY": true, "OBJECT": true, "NULL": true}

// gemini serves POST /v1beta/models/{model}:generateContent.
func (s *Server) gemini(_ http.ResponseWriter, r *http.Request, req *Request, body map[string]any) (func(Reply) (int, any), *apiError) {
	rest := strings.TrimPrefix(r.URL.Path, "/v1beta/models/")
	model, method, ok := strings.Cut(rest, ":")
	if !ok || method != "generateContent" {
		return nil, geminiError(http.StatusNotFound, "NOT_FOUND", "fakellm: only models/{model}:generateContent is served")
	}
	key := r.Header.Get("X-Goog-Api-Key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	if key == "" {
		return nil, geminiError(http.StatusForbidden, "PERMISSION_DENIED",
			"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
	}
	if key != s.apiKey {
		return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
			map[string]any{
				"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
				"metadata": map[string]any{"service": "generativelanguage.googleapis.com"},
			})
	}
	req.Model = model
	if model != s.model {
		return nil, geminiError(http.StatusNotFound, "NOT_FOUND",
			fmt.Sprintf("models/%s is not found for API version v1beta, or is not supported for generateContent.", model))
	}
	if body == nil {
		return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received.")
	}
	contents, _ := body["contents"].([]any)
	if len(contents) == 0 {
		return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
	}
	var user []string
	for _, c := range contents {
		cm, _ := c.(map[string]any)
		if role := str(cm["role"]); role != "" && role != "user" && role != "model" {
			return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "Please use a valid role: user, model.")
		}
		user = append(user, contentText(cm["parts"]))
	}
	req.User = strings.Join(user, "\n")
	if si, ok := body["systemInstruction"].(map[string]any); ok {
		req.System = contentText(si["parts"])
	}
	gc, _ := body["generationConfig"].(map[string]any)
	schema, ok := gc["responseSchema"].(map[string]any)
	if !ok {
		return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "fakellm: generationConfig.responseSchema is required")
	}
	if str(gc["responseMimeType"]) != "application/json" {
		return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT",
			"* GenerateContentRequest.generation_config.response_mime_type: only application/json is supported with response_schema")
	}
	if msg := geminiSchema(schema, "generation_config.response_schema"); msg != "" {
		return nil, geminiError(http.StatusBadRequest, "INVALID_ARGUMENT", msg)
	}
	req.Schema, _ = json.Marshal(schema)
	return func(rep Reply) (int, any) {
		if rep.Status != 0 && rep.Status != http.StatusOK {
			grpc := "INTERNAL"
			var details []any
			switch rep.Status {
			case http.StatusTooManyRequests:
				grpc = "RESOURCE_EXHAUSTED"
				if rep.RetryAfter > 0 {
					details = append(details, map[string]any{
						"@type":      "type.googleapis.com/google.rpc.RetryInfo",
						"retryDelay": fmt.Sprintf("%ds", int(rep.RetryAfter.Seconds()+0.999)),
					})
				}
			case http.StatusServiceUnavailable:
				grpc = "UNAVAILABLE"
			}
			return rep.Status, geminiError(rep.Status, grpc, "fakellm: "+http.StatusText(rep.Status), details...).body
		}
		reason := "STOP"
		if rep.MaxTokens {
			reason = "MAX_TOKENS"
		}
		return http.StatusOK, map[string]any{
			"candidates": []any{map[string]any{
				"content":      map[string]any{"role": "model", "parts": []any{map[string]any{"text": rep.Answer}}},
				"finishReason": reason, "index": 0,
			}},
			"usageMetadata": map[string]any{
				"promptTokenCount": rep.InputTokens, "candidatesTokenCount": rep.OutputTokens,
				"totalTokenCount": rep.InputTokens + rep.OutputTokens,
			},
			"modelVersion": s.model + "-001",
		}
	}, nil
}

// geminiSchema checks a responseSchema against Gemini's Schema object;
// it returns the API's message, or "".
func geminiSchema(s map[string]any, at string) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !schemaFields[k] {
			return fmt.Sprintf("Invalid JSON payload received. Unknown name %q at '%s': Cannot find field.", k, at)
		}
	}
	t, ok := s["type"].(string)
	if !ok || !schemaTypes[t] {
		return fmt.Sprintf("Invalid JSON payload received. Invalid value at '%s.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), %s", at, mustJSON(s["type"]))
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for name, p := range props {
			pm, _ := p.(map[string]any)
			if msg := geminiSchema(pm, at+".properties["+name+"].value"); msg != "" {
				return msg
			}
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		return geminiSchema(items, at+".items")
	}
	return ""
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
