// Package gemini is the LLM provider for the Gemini API's generateContent
// (POST /v1beta/models/{model}:generateContent), with a JSON response
// MIME type and the answer's schema translated to Gemini's Schema
// dialect.
package gemini

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
)

const name = "gemini"

// Options configures a Client.
type Options struct {
	// URL is the API's base URL; https://generativelanguage.googleapis.com
	// if empty.
	URL    string
	APIKey string
	// HTTPClient; http.DefaultClient if nil.
	HTTPClient *http.Client
}

// Client talks to the Gemini API.
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
		c.url = "https://generativelanguage.googleapis.com"
	}
	if c.client == nil {
		c.client = http.DefaultClient
	}
	return c, nil
}

type part struct {
	Text string `json:"text"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts"`
}

type generationConfig struct {
	ResponseMimeType string         `json:"responseMimeType"`
	ResponseSchema   map[string]any `json:"responseSchema"`
	MaxOutputTokens  int            `json:"maxOutputTokens,omitempty"`
	Temperature      float64        `json:"temperature"`
}

type generateRequest struct {
	SystemInstruction content          `json:"systemInstruction"`
	Contents          []content        `json:"contents"`
	GenerationConfig  generationConfig `json:"generationConfig"`
}

type generateResponse struct {
	Candidates []struct {
		Content      content `json:"content"`
		FinishReason string  `json:"finishReason"`
	} `json:"candidates"`
	PromptFeedback struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata struct {
		PromptTokenCount     int `json:"promptTokenCount"`
		CandidatesTokenCount int `json:"candidatesTokenCount"`
		ThoughtsTokenCount   int `json:"thoughtsTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
}

// Complete implements llm.Provider.
func (c *Client) Complete(ctx context.Context, req llm.Request) (llm.Response, error) {
	schema, err := Schema(req.Schema)
	if err != nil {
		return llm.Response{}, fmt.Errorf("%s: %w", name, err)
	}
	body := generateRequest{
		SystemInstruction: content{Parts: []part{{Text: req.System}}},
		Contents:          []content{{Role: "user", Parts: []part{{Text: req.User}}}},
		GenerationConfig: generationConfig{
			ResponseMimeType: "application/json",
			ResponseSchema:   schema,
			MaxOutputTokens:  req.MaxTokens,
		},
	}
	endpoint := c.url + "/v1beta/models/" + url.PathEscape(req.Model) + ":generateContent"
	header := http.Header{"X-Goog-Api-Key": {c.key}}
	raw, err := llm.Post(ctx, c.client, name, endpoint, header, body, errorMessage)
	if err != nil {
		return llm.Response{}, classify(err)
	}
	return decode(raw)
}

// decode reads a generateContent answer: the first candidate's text parts
// are the answer, if the model stopped of its own accord.
func decode(raw []byte) (llm.Response, error) {
	var resp generateResponse
	if err := llm.Decode(name, raw, &resp); err != nil {
		return llm.Response{}, err
	}
	u := resp.UsageMetadata
	// Thinking is billed as output.
	out, err := llm.Reported(name, resp.ModelVersion,
		[]int{u.PromptTokenCount}, []int{u.CandidatesTokenCount, u.ThoughtsTokenCount})
	if err != nil {
		return out, err
	}
	if len(resp.Candidates) == 0 {
		return out, fmt.Errorf("%s: no candidates (blocked: %q): %w", name, llm.Excerpt(resp.PromptFeedback.BlockReason), engine.ErrUnusable)
	}
	cand := resp.Candidates[0]
	if cand.FinishReason != "STOP" {
		return out, fmt.Errorf("%s: answer finished with %s: %w", name, llm.Excerpt(cand.FinishReason), engine.ErrUnusable)
	}
	var text strings.Builder
	for _, p := range cand.Content.Parts {
		text.WriteString(p.Text)
	}
	out.Text = text.String()
	return out, nil
}

// Schema translates a JSON schema (the subset llm.Schema uses) into
// Gemini's Schema object: upper-case type names, a ["t","null"] union as
// nullable, and no additionalProperties (which Gemini refuses; its output
// never has properties the schema does not name).
func Schema(raw json.RawMessage) (map[string]any, error) {
	var s map[string]any
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("answer schema: %w", err)
	}
	return convert(s)
}

func convert(s map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for k, v := range s {
		switch k {
		case "additionalProperties", "$schema":
		case "type":
			switch t := v.(type) {
			case string:
				out["type"] = strings.ToUpper(t)
			case []any:
				var types []string
				for _, x := range t {
					if x == "null" {
						out["nullable"] = true
						continue
					}
					xs, _ := x.(string)
					types = append(types, strings.ToUpper(xs))
				}
				if len(types) != 1 {
					return nil, fmt.Errorf("answer schema: type union %v has no Gemini equivalent", t)
				}
				out["type"] = types[0]
			}
		case "properties":
			props, _ := v.(map[string]any)
			conv := make(map[string]any, len(props))
			for name, p := range props {
				pm, _ := p.(map[string]any)
				c, err := convert(pm)
				if err != nil {
					return nil, err
				}
				conv[name] = c
			}
			out["properties"] = conv
		case "items":
			im, _ := v.(map[string]any)
			c, err := convert(im)
			if err != nil {
				return nil, err
			}
			out["items"] = c
		default:
			out[k] = v
		}
	}
	return out, nil
}

// classify corrects the kind of Gemini's refusals: a bad key is a 400
// with reason API_KEY_INVALID, and a 429 says when to retry in a
// RetryInfo detail rather than a header.
func classify(err error) error {
	var se *llm.StatusError
	if !errors.As(err, &se) {
		return err
	}
	if strings.Contains(se.Message, "API_KEY_INVALID") {
		se.Kind = llm.ErrAuth
	}
	if i := strings.Index(se.Message, "retry_delay="); i >= 0 && se.RetryAfter == 0 {
		// The delay ends at a space or the colon before the message, and
		// may be blank.
		end := func(r rune) bool { return unicode.IsSpace(r) || r == ':' }
		if f := strings.FieldsFunc(se.Message[i+len("retry_delay="):], end); len(f) > 0 {
			if d, perr := time.ParseDuration(f[0]); perr == nil && d > 0 {
				se.RetryAfter = d
			}
		}
	}
	return err
}

// errorMessage is Gemini's message with the reasons and retry delay of
// its details, which classify reads; they come first, so that a long
// message cut short (llm.Excerpt) keeps them.
func errorMessage(raw []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Type       string `json:"@type"`
				Reason     string `json:"reason"`
				RetryDelay string `json:"retryDelay"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &e) != nil || e.Error.Message == "" {
		return ""
	}
	msg := e.Error.Status
	for _, d := range e.Error.Details {
		if d.Reason != "" {
			msg += " [" + d.Reason + "]"
		}
		if d.RetryDelay != "" {
			msg += " retry_delay=" + d.RetryDelay
		}
	}
	return msg + ": " + e.Error.Message
}
