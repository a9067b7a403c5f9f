// Package anthropic is the LLM provider for Anthropic's Messages API
// (POST /v1/messages). Structured output goes through a tool: the answer's
// schema is the tool's input_schema, tool_choice forces the model to call
// it, and the answer is the tool_use block's input.
package anthropic

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
)

const (
	name = "anthropic"
	// Version is the API version sent as anthropic-version.
	Version = "2023-06-01"
)

// Options configures a Client.
type Options struct {
	// URL is the API's base URL; https://api.anthropic.com if empty.
	URL    string
	APIKey string
	// HTTPClient; http.DefaultClient if nil.
	HTTPClient *http.Client
}

// Client talks to the Messages API.
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
		c.url = "https://api.anthropic.com"
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

type tool struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

type messagesRequest struct {
	Model      string     `json:"model"`
	MaxTokens  int        `json:"max_tokens"`
	System     string     `json:"system"`
	Messages   []message  `json:"messages"`
	Tools      []tool     `json:"tools"`
	ToolChoice toolChoice `json:"tool_choice"`
}

type messagesResponse struct {
	Model   string `json:"model"`
	Content []struct {
		Type  string          `json:"type"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	StopReason string `json:"stop_reason"`
	Usage      struct {
		InputTokens              int `json:"input_tokens"`
		OutputTokens             int `json:"output_tokens"`
		CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	} `json:"usage"`
}

// Complete implements llm.Provider.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	body := messagesRequest{
		Model:     req.Model,
		MaxTokens: req.MaxTokens,
		System:    req.System,
		Messages:  []message{{Role: "user", Content: req.User}},
		Tools: []tool{{
			Name:        req.SchemaName,
			Description: "Report the analysis of the incident.",
			InputSchema: req.Schema,
		}},
		ToolChoice: toolChoice{Type: "tool", Name: req.SchemaName},
	}
	header := http.Header{"X-Api-Key": {c.key}, "Anthropic-Version": {Version}}
	raw, err := llm.Post(ctx, c.client, name, c.url+"/v1/messages", header, body, errorMessage)
	if err != nil {
		return llm.Response{}, err
	}
	return decode(raw, req.SchemaName)
}

// decode reads a Messages API answer: the input of the tool_use block
// that calls tool is the answer.
func decode(raw []byte, tool string) (llm.Response, error) {
	var resp messagesResponse
	if err := llm.Decode(name, raw, &resp); err != nil {
		return llm.Response{}, err
	}
	u := resp.Usage
	// Cached input is input too (billed differently; the price table is
	// per provider, so it is counted at the input price).
	out, err := llm.Reported(name, resp.Model,
		[]int{u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens}, []int{u.OutputTokens})
	if err != nil {
		return out, err
	}
	switch resp.StopReason {
	case "max_tokens":
		return out, fmt.Errorf("%s: answer cut at the token limit: %w", name, engine.ErrUnusable)
	case "refusal":
		// The safety classifiers stopped the answer, whatever of it
		// was written.
		return out, fmt.Errorf("%s: the model refused: %w", name, engine.ErrUnusable)
	}
	for _, block := range resp.Content {
		if block.Type == "tool_use" && block.Name == tool {
			out.Text = string(block.Input)
			return out, nil
		}
	}
	return out, fmt.Errorf("%s: no %s tool call in the answer (stop reason %q): %w", name, tool, llm.Excerpt(resp.StopReason), engine.ErrUnusable)
}

func errorMessage(raw []byte) string {
	var e struct {
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Type == "" {
		return ""
	}
	return e.Error.Type + ": " + e.Error.Message
}
