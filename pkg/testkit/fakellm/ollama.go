package fakellm

import (
	"encoding/json"
	"net/http"
	"time"
)

// ollama serves POST /api/chat. Ollama answers errors as {"error": "..."}.
func (s *Server) ollama(_ http.ResponseWriter, r *http.Request, req *Request, body map[string]any) (func(Reply) (int, any), *apiError) {
	refuse := func(status int, msg string) *apiError {
		return &apiError{status: status, body: map[string]any{"error": msg}}
	}
	if s.ollKey != "" && r.Header.Get("Authorization") != "Bearer "+s.ollKey {
		return nil, refuse(http.StatusUnauthorized, "unauthorized")
	}
	if body == nil {
		return nil, refuse(http.StatusBadRequest, "invalid character in request body")
	}
	req.Model = str(body["model"])
	if req.Model == "" {
		return nil, refuse(http.StatusBadRequest, "model is required")
	}
	if req.Model != s.model {
		return nil, refuse(http.StatusNotFound, `model "`+req.Model+`" not found, try pulling it first`)
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return nil, refuse(http.StatusBadRequest, "messages are required")
	}
	req.System, req.User = messagesText(msgs)
	// Ollama streams unless told not to; Vigil reads one answer.
	if stream, ok := body["stream"].(bool); !ok || stream {
		return nil, refuse(http.StatusBadRequest, "fakellm: only stream:false is served (Ollama streams NDJSON by default)")
	}
	format, ok := body["format"].(map[string]any)
	if !ok || format["type"] != "object" {
		return nil, refuse(http.StatusBadRequest, "fakellm: format must be the answer's JSON schema (an object schema)")
	}
	req.Schema, _ = json.Marshal(format)
	return func(rep Reply) (int, any) {
		if rep.Status != 0 && rep.Status != http.StatusOK {
			return rep.Status, map[string]any{"error": http.StatusText(rep.Status)}
		}
		reason := "stop"
		if rep.MaxTokens {
			reason = "length"
		}
		return http.StatusOK, map[string]any{
			"model":             s.model,
			"created_at":        time.Now().UTC().Format(time.RFC3339Nano),
			"message":           map[string]any{"role": "assistant", "content": rep.Answer},
			"done":              true,
			"done_reason":       reason,
			"total_duration":    1_500_000_000,
			"prompt_eval_count": rep.InputTokens,
			"eval_count":        rep.OutputTokens,
		}
	}, nil
}
