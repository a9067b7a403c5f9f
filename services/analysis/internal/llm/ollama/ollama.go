// Package ollama is the LLM provider for Ollama's chat API (POST
// /api/chat), with the answer's JSON schema as the format and streaming
// off.
package ollama

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
)

const name = "ollama"

// Options configures a Client.
type Options struct {
	// URL is Ollama's base URL; http://localhost:11434 if empty.
	URL string
	// APIKey, if set, is sent as a bearer token (an Ollama behind an
	// authenticating proxy).
	APIKey string
	// HTTPClient; http.DefaultClient if nil.
	HTTPClient *http.Client
}

// Client talks to one Ollama server.
type Client struct {
	url    string
	key    string
	client *http.Client
}

var _ llm.Provider = (*Client)(nil)

// New returns a Client.
func New(opts Options) *Client {
	c := &Client{url: strings.TrimRight(opts.URL, "/"), key: opts.APIKey, client: opts.HTTPClient}
	if c.url == "" {
		c.url = "http://localhost:11434"
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	return c
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model    string          `json:"model"`
	Messages []message       `json:"messages"`
	Stream   bool            `json:"stream"`
	Format   json.RawMessage `json:"format"`
	Options  map[string]any  `json:"options,omitempty"`
}

type chatResponse struct {
	Model           string  `json:"model"`
	Message         message `json:"message"`
	Done            bool    `json:"done"`
	DoneReason      string  `json:"done_reason"`
	PromptEvalCount int     `json:"prompt_eval_count"`
	EvalCount       int     `json:"eval_count"`
}

// Complete implements llm.Provider.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	body := chatRequest{
		Model: req.Model,
		Messages: []message{
			{Role: "system", Content: req.System},
			{Role: "user", Content: req.User},
		},
		Stream:  false,
		Format:  req.Schema,
		Options: map[string]any{"temperature": 0, "num_predict": req.MaxTokens},
	}
	header := http.Header{}
	if c.key != "" {
		header.Set("Authorization", "Bearer "+c.key)
	}
	raw, err := llm.Post(ctx, c.client, name, c.url+"/api/chat", header, body, errorMessage)
	if err != nil {
		return llm.Response{}, err
	}
	return decode(raw)
}

// decode reads a /api/chat answer: the message's content is the answer,
// if the model finished it.
func decode(raw []byte) (llm.Response, error) {
	var resp chatResponse
	if err := llm.Decode(name, raw, &resp); err != nil {
		return llm.Response{}, err
	}
	out, err := llm.Reported(name, resp.Model, []int{resp.PromptEvalCount}, []int{resp.EvalCount})
	if err != nil {
		return out, err
	}
	switch {
	case !resp.Done:
		return out, fmt.Errorf("%s: answer not done: %w", name, engine.ErrUnusable)
	case resp.DoneReason == "length":
		return out, fmt.Errorf("%s: answer cut at the token limit: %w", name, engine.ErrUnusable)
	}
	out.Text = resp.Message.Content
	return out, nil
}

func errorMessage(raw []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return ""
	}
	return e.Error
}
