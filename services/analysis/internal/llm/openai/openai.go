// Package openai is the LLM provider for OpenAI's chat completions API
// and the many servers that speak it (vLLM, LM Studio, llama.cpp, Groq,
// OpenRouter, ...): POST {base}/chat/completions with a strict JSON
// schema as the response format.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
)

const name = "openai"

// Options configures a Client.
type Options struct {
	// URL is the API's base URL, /v1 included, as OpenAI's SDKs take it;
	// https://api.openai.com/v1 if empty.
	URL    string
	APIKey string
	// HTTPClient; http.DefaultClient if nil.
	HTTPClient *http.Client
}

// Client talks to one OpenAI-compatible endpoint.
type Client struct {
	url, key string
	client   *http.Client
}

var _ llm.Provider = (*Client)(nil)

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.APIKey == "" {
		return nil, fmt.Errorf("%s: API key missing", name)
	}
	c := &Client{url: strings.TrimRight(opts.URL, "/"), key: opts.APIKey, client: opts.HTTPClient}
	if c.url == "" {
		c.url = "https://api.openai.com/v1"
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	return c, nil
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type jsonSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

type responseFormat struct {
	Type       string     `json:"type"`
	JSONSchema jsonSchema `json:"json_schema"`
}

type chatRequest struct {
	Model          string         `json:"model"`
	Messages       []message      `json:"messages"`
	ResponseFormat responseFormat `json:"response_format"`
	// max_completion_tokens: max_tokens is refused by OpenAI's reasoning
	// models; compatible servers take either.
	MaxCompletionTokens int `json:"max_completion_tokens,omitempty"`
}

type chatResponse struct {
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Content *string `json:"content"`
			Refusal *string `json:"refusal"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
}

// Complete implements llm.Provider.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	body := chatRequest{
		Model: req.Model,
		Messages: []message{
			{Role: "system", Content: req.System},
			{Role: "user", Content: req.User},
		},
		ResponseFormat: responseFormat{
			Type:       "json_schema",
			JSONSchema: jsonSchema{Name: req.SchemaName, Schema: req.Schema, Strict: true},
		},
		MaxCompletionTokens: req.MaxTokens,
	}
	header := http.Header{"Authorization": {"Bearer " + c.key}}
	raw, err := llm.Post(ctx, c.client, name, c.url+"/chat/completions", header, body, errorMessage)
	if err != nil {
		return llm.Response{}, quotaIsNotRetryable(err)
	}
	return decode(raw)
}

// decode reads a chat completion: the first choice's content is the
// answer, unless the model refused or was stopped.
func decode(raw []byte) (llm.Response, error) {
	var resp chatResponse
	if err := llm.Decode(name, raw, &resp); err != nil {
		return llm.Response{}, err
	}
	out, err := llm.Reported(name, resp.Model, []int{resp.Usage.PromptTokens}, []int{resp.Usage.CompletionTokens})
	if err != nil {
		return out, err
	}
	if len(resp.Choices) == 0 {
		return out, fmt.Errorf("%s: no choices in the answer: %w", name, engine.ErrUnusable)
	}
	ch := resp.Choices[0]
	switch {
	case ch.Message.Refusal != nil && *ch.Message.Refusal != "":
		return out, fmt.Errorf("%s: the model refused: %q: %w", name, llm.Excerpt(*ch.Message.Refusal), engine.ErrUnusable)
	case ch.FinishReason == "length":
		return out, fmt.Errorf("%s: answer cut at the token limit: %w", name, engine.ErrUnusable)
	case ch.FinishReason == "content_filter":
		return out, fmt.Errorf("%s: answer stopped by the content filter: %w", name, engine.ErrUnusable)
	case ch.Message.Content == nil:
		return out, fmt.Errorf("%s: answer has no content: %w", name, engine.ErrUnusable)
	}
	out.Text = *ch.Message.Content
	return out, nil
}

// quotaIsNotRetryable: OpenAI answers 429 insufficient_quota when the
// account is out of credit; waiting will not help.
func quotaIsNotRetryable(err error) error {
	var se *llm.StatusError
	if errors.As(err, &se) && strings.Contains(se.Message, "insufficient_quota") {
		se.RetryAfter = 0
	}
	return err
}

func errorMessage(raw []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Message == "" {
		return ""
	}
	if code, ok := e.Error.Code.(string); ok && code != "" {
		return code + ": " + e.Error.Message
	}
	return e.Error.Message
}
