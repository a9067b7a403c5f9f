package faketelegram

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"
)

// Webhook is the webhook the bot set with setWebhook.
type Webhook struct {
	URL string
	// SecretToken is sent in X-Telegram-Bot-Api-Secret-Token; empty for none.
	SecretToken    string
	MaxConnections int
	// Exempt records that the URL broke a rule Telegram applies to every
	// webhook (HTTPS, port 80, 88, 443 or 8443) and was let through only
	// because its host is loopback (see Options.StrictWebhookURL).
	Exempt bool
}

// Delivery is one update posted to the webhook, with every attempt.
type Delivery struct {
	UpdateID int64
	URL      string
	// Statuses are the HTTP statuses of the attempts, oldest first; 0 for
	// an attempt that got no response.
	Statuses []int
	// Err is why the last attempt failed, worded as getWebhookInfo's
	// last_error_message; empty when it succeeded.
	Err string
	// ReplyMethod is the Bot API method the webhook answered with in its
	// response body, if any; the fake runs it, as Telegram does.
	ReplyMethod string
}

// webhookError is the last delivery failure, for getWebhookInfo.
type webhookError struct {
	date    int64
	message string
}

// Webhook ports Telegram delivers to.
var webhookPorts = map[string]bool{"80": true, "88": true, "443": true, "8443": true}

const (
	defaultMaxConnections = 40
	maxSecretToken        = 256
	maxWebhookReply       = 1 << 20
)

// setWebhook sets the webhook, or removes it for deleteWebhook and for
// setWebhook with an empty url. Checks come in the Bot API's order: the
// URL's syntax, the secret token, then what Telegram's verification of the
// URL finds (scheme and port).
func (s *Server) setWebhook(r *http.Request, deleting bool) reply {
	args, err := requestArgs(r)
	if err != nil {
		return fail(err)
	}
	if err := checkUTF8(args); err != nil {
		return fail(err)
	}
	drop := boolArg(args["drop_pending_updates"])
	raw := ""
	if !deleting {
		raw = args["url"]
	}
	if raw == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		was := s.webhook != nil
		s.webhook, s.webhookErr = nil, webhookError{}
		if drop {
			s.updates = nil
		}
		if was {
			return reply{status: http.StatusOK, result: true, description: "Webhook was deleted"}
		}
		return reply{status: http.StatusOK, result: true, description: "Webhook is already deleted"}
	}

	wh, err := s.parseWebhook(raw, args)
	if err != nil {
		return fail(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setAllowedLocked(args["allowed_updates"])
	if s.webhook != nil && *s.webhook == wh && !drop {
		return reply{status: http.StatusOK, result: true, description: "Webhook is already set"}
	}
	if s.poll != nil {
		s.poll.abort <- conflictSetWebhook
		s.poll = nil
	}
	if drop {
		s.updates = nil
	}
	s.webhook, s.webhookErr = &wh, webhookError{}
	return reply{status: http.StatusOK, result: true, description: "Webhook was set"}
}

func (s *Server) parseWebhook(raw string, args map[string]string) (Webhook, error) {
	withScheme := raw
	if !strings.Contains(raw, "://") {
		withScheme = "https://" + raw // the Bot API takes a bare host as HTTPS
	}
	u, err := url.Parse(withScheme)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return Webhook{}, badRequest("invalid webhook URL specified")
	}
	secret := args["secret_token"]
	if len(secret) > maxSecretToken {
		return Webhook{}, badRequest("secret token is too long")
	}
	if !base64URLChars(secret) {
		return Webhook{}, badRequest("secret token contains unallowed characters")
	}
	wh := Webhook{
		URL:            raw,
		SecretToken:    secret,
		MaxConnections: clamp(intArg(args["max_connections"], defaultMaxConnections), 1, 100),
	}
	exemptable := !s.opts.StrictWebhookURL && isLoopback(u.Hostname())
	if u.Scheme != "https" {
		if !exemptable {
			return Webhook{}, badRequest("bad webhook: An HTTPS URL must be provided for webhook")
		}
		wh.Exempt = true
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	if !webhookPorts[port] {
		if !exemptable {
			return Webhook{}, badRequest("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
		}
		wh.Exempt = true
	}
	return wh, nil
}

func base64URLChars(s string) bool {
	for _, c := range []byte(s) {
		if !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) getWebhookInfo() reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := map[string]any{"url": "", "has_custom_certificate": false, "pending_update_count": len(s.updates)}
	if s.webhook != nil {
		info["url"] = s.webhook.URL
		info["max_connections"] = s.webhook.MaxConnections
	}
	if allowed := s.allowedListLocked(); allowed != nil {
		info["allowed_updates"] = allowed
	}
	if s.webhookErr.date != 0 {
		info["last_error_date"] = s.webhookErr.date
		info["last_error_message"] = s.webhookErr.message
	}
	return reply{status: http.StatusOK, result: info}
}

// Webhook returns the webhook set, and false when there is none.
func (s *Server) Webhook() (Webhook, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.webhook == nil {
		return Webhook{}, false
	}
	return *s.webhook, true
}

// Deliveries returns the updates posted to webhooks so far, oldest first.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		d.Statuses = append([]int(nil), d.Statuses...)
		out[i] = d
	}
	return out
}

// deliver posts pending updates to the webhook in order, until none is
// left or one fails all its attempts; a failed update stays pending (as
// getWebhookInfo's pending_update_count shows) and goes first next time.
func (s *Server) deliver(ctx context.Context) {
	s.deliverMu.Lock()
	defer s.deliverMu.Unlock()
	for {
		s.mu.Lock()
		if s.webhook == nil || len(s.updates) == 0 {
			s.mu.Unlock()
			return
		}
		wh, u := *s.webhook, s.updates[0]
		s.mu.Unlock()

		d, replyBody := s.post(ctx, wh, u)
		if d.Err == "" && replyBody != nil {
			d.ReplyMethod = s.runWebhookReply(replyBody)
		}

		s.mu.Lock()
		s.deliveries = append(s.deliveries, d)
		if d.Err != "" {
			s.webhookErr = webhookError{date: time.Now().Unix(), message: d.Err}
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		if len(s.updates) > 0 && s.updates[0].id == u.id {
			s.updates = s.updates[1:]
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// post sends one update, retrying a failure a few times, and returns the
// response body of the attempt that succeeded.
func (s *Server) post(ctx context.Context, wh Webhook, u update) (Delivery, []byte) {
	d := Delivery{UpdateID: u.id, URL: wh.URL}
	body, err := json.Marshal(u.json())
	if err != nil {
		d.Err = err.Error()
		return d, nil
	}
	target := wh.URL
	if !strings.Contains(target, "://") {
		target = "https://" + target
	}
	for attempt := range s.opts.WebhookAttempts {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 20 * time.Millisecond):
			case <-ctx.Done():
				return d, nil
			case <-s.done:
				return d, nil
			}
		}
		status, respBody, err := s.postOnce(ctx, target, wh.SecretToken, body)
		d.Statuses = append(d.Statuses, status)
		switch {
		case err != nil:
			d.Err = err.Error()
		case status < 200 || status > 299:
			d.Err = fmt.Sprintf("Wrong response from the webhook: %d %s", status, http.StatusText(status))
		default:
			d.Err = ""
			return d, respBody
		}
	}
	return d, nil
}

func (s *Server) postOnce(ctx context.Context, target, secret string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
	}
	resp, err := s.opts.WebhookClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookReply))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, respBody, nil
}

// runWebhookReply runs the Bot API call a webhook may answer with (a JSON
// object whose "method" names it, the other fields its parameters) and
// returns the method, "" if the body is not such a call.
func (s *Server) runWebhookReply(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil {
		return ""
	}
	var method string
	if json.Unmarshal(fields["method"], &method) != nil || method == "" {
		return ""
	}
	delete(fields, "method")
	params, err := json.Marshal(fields)
	if err != nil {
		return ""
	}
	req := httptest.NewRequest(http.MethodPost, "/bot"+s.token+"/"+method, bytes.NewReader(params))
	req.Header.Set("Content-Type", "application/json")
	rep := s.route(req)
	s.logRequest(method, rep.status, rep.description)
	return method
}
