package faketelegram

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// DefaultToken is the bot token a Server expects when Options.Token is empty.
const DefaultToken = "123456789:AAFakeTokenForVigilTests_0123456789"

// Options configures a Server.
type Options struct {
	// Token is the bot token clients must put in the path; DefaultToken if empty.
	Token string
	// ChatIDs are the chats the bot can post to: numeric ids ("-1001234567890")
	// or channel usernames ("@vigil_alerts"). Any other chat_id gets
	// "Bad Request: chat not found".
	ChatIDs []string
	// CallbackQueryTimeout is how long after a press answerCallbackQuery is
	// still accepted; DefaultCallbackQueryTimeout if zero. Tests of the
	// expiry set it tiny rather than wait.
	CallbackQueryTimeout time.Duration
	// StrictWebhookURL refuses webhook URLs on loopback hosts that are not
	// HTTPS on port 443, 80, 88 or 8443, as Telegram does for every URL.
	// By default a loopback URL (127.0.0.0/8, ::1, localhost) is exempt, so
	// that an httptest server can receive updates; Webhook.Exempt records
	// that the exemption was used.
	StrictWebhookURL bool
	// WebhookClient posts updates to the webhook; a client with a 10 s
	// timeout if nil. Pass an httptest TLS server's Client() for an HTTPS
	// webhook.
	WebhookClient *http.Client
	// WebhookAttempts is how many times one update is posted before the
	// fake gives up on it for now (Telegram retries non-2xx answers);
	// 3 if zero.
	WebhookAttempts int
}

// DefaultCallbackQueryTimeout is how long a callback query can be answered,
// as observed with Telegram: later answers get "query is too old".
const DefaultCallbackQueryTimeout = 15 * time.Second

// Message is a message the fake accepted.
type Message struct {
	MessageID int64
	// ChatID is chat_id as the client sent it.
	ChatID string
	// Text is the text as the client sent it, markup included.
	Text string
	// PlainText is what recipients see: entities parsed, tags stripped, cleaned and trimmed.
	PlainText      string
	ParseMode      string
	DisablePreview bool
	// ReplyMarkup is the inline keyboard, nil when there is none.
	ReplyMarkup [][]Button
	// ReplyToMessageID is the message this one answers, 0 when it answers
	// none (none was asked, or it was not found and the client allowed
	// sending without it).
	ReplyToMessageID int64
	// ReplyToChatID is the replied message's chat as the client wrote it,
	// when that is not this message's own chat.
	ReplyToChatID string
	// Edits are the edits accepted for this message, oldest first; Text,
	// PlainText, ParseMode and ReplyMarkup above are the message as the
	// last one left it.
	Edits []Edit
}

// Request is one HTTP request the fake answered, successful or not.
type Request struct {
	// Method is the Bot API method from the path ("sendMessage"), empty if the path had none.
	Method     string
	StatusCode int
	// Description is the error description sent back, empty on success.
	Description string
}

// Server is a fake Bot API server. It is safe for concurrent use.
type Server struct {
	srv   *httptest.Server
	token string
	bot   User
	chats map[string]chat
	opts  Options
	done  chan struct{} // closed when the test ends, to release long polls

	mu        sync.Mutex
	faults    []fault
	messages  []Message
	requests  []Request
	lastID    map[int64]int64
	editDates map[msgKey]int64
	changed   chan struct{} // closed and replaced whenever the state changes

	queries   []CallbackQuery
	pressedAt map[string]time.Time // by query id
	lastQuery int64

	updates      []update // pending: neither confirmed nor delivered
	nextUpdateID int64
	sent         map[int64]update // every update made, by id, for Redeliver
	allowed      map[string]bool  // nil: Telegram's default update types
	poll         *longPoll        // the getUpdates request being held, if any

	webhook    *Webhook
	webhookErr webhookError
	deliveries []Delivery
	deliverMu  sync.Mutex // one webhook delivery at a time, in update order

	held    chan struct{} // closed by Release; nil when not holding
	holding int
}

// msgKey names a message: Telegram message ids count per chat.
type msgKey struct {
	chat int64
	id   int64
}

type fault struct {
	status     int
	retryAfter int // for 429
	// garble: the request is handled, its answer cut short.
	garble bool
}

type chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
}

// User is a Telegram user: the bot itself, or a person pressing buttons.
type User struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name,omitempty"`
	Username     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// New starts a Server that is closed when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = DefaultToken
	}
	if strings.ContainsAny(opts.Token, "/?# ") {
		t.Fatal("faketelegram: Token: must not contain '/', '?', '#' or spaces")
	}
	if opts.CallbackQueryTimeout <= 0 {
		opts.CallbackQueryTimeout = DefaultCallbackQueryTimeout
	}
	if opts.WebhookClient == nil {
		opts.WebhookClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.WebhookAttempts <= 0 {
		opts.WebhookAttempts = 3
	}
	s := &Server{
		token:        opts.Token,
		bot:          User{ID: botID(opts.Token), IsBot: true, FirstName: "Vigil Test Bot", Username: "vigil_test_bot"},
		chats:        make(map[string]chat),
		opts:         opts,
		done:         make(chan struct{}),
		lastID:       make(map[int64]int64),
		editDates:    make(map[msgKey]int64),
		changed:      make(chan struct{}),
		pressedAt:    make(map[string]time.Time),
		nextUpdateID: firstUpdateID,
		sent:         make(map[int64]update),
	}
	for i, id := range opts.ChatIDs {
		c, err := newChat(id, i)
		if err != nil {
			t.Fatalf("faketelegram: ChatIDs[%d]: %v", i, err)
		}
		s.chats[chatKey(id)] = c
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(func() {
		close(s.done) // a held getUpdates would keep Close waiting
		s.srv.Close()
	})
	return s
}

// URL is the server's base URL, to use in place of https://api.telegram.org.
func (s *Server) URL() string { return s.srv.URL }

// Token is the bot token the server expects.
func (s *Server) Token() string { return s.token }

// FailNext makes the next n requests fail with the HTTP status (4xx or 5xx).
// 502, 503 and 504 come with an HTML page, as from the proxy in front of the
// real API; other statuses with a JSON error. Faults queue up in call order
// and hit any request, before the token or method is looked at.
func (s *Server) FailNext(n, status int) {
	if status < 400 || status > 599 {
		panic(fmt.Sprintf("faketelegram: FailNext: status %d: want 4xx or 5xx", status))
	}
	s.addFaults(n, fault{status: status})
}

// RateLimitNext makes the next n requests fail with 429 Too Many Requests
// and parameters.retry_after set to retryAfter seconds.
func (s *Server) RateLimitNext(n, retryAfter int) {
	s.addFaults(n, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// GarbleNext makes the next n requests be handled as usual -- a message
// sent is sent -- and answered 200 with a body cut short, as by a proxy
// that dropped the connection midway: the client cannot tell what came
// of them.
func (s *Server) GarbleNext(n int) { s.addFaults(n, fault{garble: true}) }

func (s *Server) addFaults(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Messages returns the messages accepted so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.messages)
}

// Message returns the current state of message id of chatID (as the
// message was sent), with its edits, and false if there is no such message.
func (s *Server) Message(chatID string, id int64) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.chats[chatKey(chatID)]
	if !ok {
		return Message{}, false
	}
	m := s.messageLocked(c, id)
	if m == nil {
		return Message{}, false
	}
	return cloneMessage(*m), true
}

// WaitForMessages waits until at least n messages were accepted and returns
// them all; it fails the test if that takes longer than timeout.
func (s *Server) WaitForMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, changed := len(s.messages), s.changed
		if got >= n {
			out := cloneMessages(s.messages)
			s.mu.Unlock()
			return out
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("faketelegram: got %d messages after %s, want %d", got, timeout, n)
			return nil
		}
	}
}

// Requests returns every request answered so far, failed ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// reply is an answer to a request.
type reply struct {
	status      int
	description string // error description; empty on success
	result      any
	retryAfter  int
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	method := methodFromPath(r.URL.Path)
	s.hold(r)
	f, faulty := s.takeFault()
	if faulty && !f.garble {
		s.writeFault(w, f)
		s.logRequest(method, f.status, faultDescription(f))
		return
	}
	rep := s.route(r)
	if faulty {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true,"result":{"message_`)
		s.logRequest(method, http.StatusOK, "garbled")
		return
	}
	s.write(w, rep)
	s.logRequest(method, rep.status, rep.description)
}

// Hold holds every request from now on until Release. A held request is
// then handled as if it had just come, even when its client gave up
// meanwhile: Telegram got it, and may well have posted it.
func (s *Server) Hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held == nil {
		s.held = make(chan struct{})
	}
}

// Release lets the held requests through and stops holding.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil {
		close(s.held)
		s.held = nil
	}
}

// Holding is how many requests are held now.
func (s *Server) Holding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holding
}

// hold waits, with r's body read, while the server holds requests.
func (s *Server) hold(r *http.Request) {
	s.mu.Lock()
	held := s.held
	if held != nil {
		s.holding++
	}
	s.mu.Unlock()
	if held == nil {
		return
	}
	body, _ := io.ReadAll(r.Body) // before the client can go away
	r.Body = io.NopCloser(bytes.NewReader(body))
	select {
	case <-held:
	case <-s.done:
	}
	s.mu.Lock()
	s.holding--
	s.mu.Unlock()
}

func (s *Server) takeFault() (fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.faults) == 0 {
		return fault{}, false
	}
	f := s.faults[0]
	s.faults = s.faults[1:]
	return f, true
}

func (s *Server) logRequest(method string, status int, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, Request{Method: method, StatusCode: status, Description: description})
}

// route answers like the Bot API: the path is /bot<token>/<method>, the
// token is checked before the method, and method names are case-insensitive.
func (s *Server) route(r *http.Request) reply {
	rest, ok := strings.CutPrefix(r.URL.Path, "/bot")
	if !ok {
		return notFound()
	}
	token, method, ok := strings.Cut(rest, "/")
	if !ok {
		return notFound()
	}
	if token != s.token {
		return reply{status: http.StatusUnauthorized, description: "Unauthorized"}
	}
	switch strings.ToLower(method) {
	case "sendmessage":
		return s.sendMessage(r)
	case "editmessagetext":
		return s.editMessageText(r)
	case "editmessagereplymarkup":
		return s.editMessageReplyMarkup(r)
	case "answercallbackquery":
		return s.answerCallbackQuery(r)
	case "getupdates":
		return s.getUpdates(r)
	case "setwebhook":
		return s.setWebhook(r, false)
	case "deletewebhook":
		return s.setWebhook(r, true)
	case "getwebhookinfo":
		return s.getWebhookInfo()
	case "getme":
		return reply{status: http.StatusOK, result: s.bot}
	default:
		return notFound()
	}
}

// notifyLocked wakes everyone waiting for a change (WaitForMessages,
// WaitForAnswer, held getUpdates requests). Called with s.mu held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// checkUTF8 refuses arguments that are not UTF-8, as the Bot API does
// before it looks at any of them.
func checkUTF8(args map[string]string) error {
	for _, v := range args {
		if !utf8.ValidString(v) {
			return badRequest("strings must be encoded in UTF-8")
		}
	}
	return nil
}

func notFound() reply { return reply{status: http.StatusNotFound, description: "Not Found"} }

func fail(err error) reply {
	return reply{status: http.StatusBadRequest, description: err.Error()}
}

// sendMessage checks a message in the order the Bot API server and tdlib
// do, so that a request with several faults gets the same error.
func (s *Server) sendMessage(r *http.Request) reply {
	args, err := requestArgs(r)
	if err != nil {
		return fail(err)
	}
	if err := checkUTF8(args); err != nil {
		return fail(err)
	}
	text, parseMode := args["text"], args["parse_mode"]
	plain, entities, err := parseText(text, parseMode)
	if err != nil {
		return fail(err)
	}
	keyboard, err := parseReplyMarkup(args["reply_markup"])
	if err != nil {
		return fail(err)
	}
	disablePreview, err := previewDisabled(args)
	if err != nil {
		return fail(err)
	}
	replyArgs, err := parseReplyParameters(args)
	if err != nil {
		return fail(err)
	}
	chatID := args["chat_id"]
	if chatID == "" {
		return fail(badRequest("chat_id is empty"))
	}
	c, ok := s.chats[chatKey(chatID)]
	if !ok {
		return fail(badRequest("chat not found"))
	}
	if plain, err = finishText(plain, entities); err != nil {
		return fail(err)
	}
	if err := checkInlineKeyboard(keyboard); err != nil {
		return fail(err)
	}

	s.mu.Lock()
	replyChat, replyID, replied, err := s.resolveReply(replyArgs, c)
	if err != nil {
		s.mu.Unlock()
		return fail(err)
	}
	s.lastID[c.ID]++
	msg := Message{
		MessageID:      s.lastID[c.ID],
		ChatID:         chatID,
		Text:           text,
		PlainText:      plain,
		ParseMode:      parseMode,
		DisablePreview: disablePreview,
		ReplyMarkup:    keyboard,
	}
	var repliedTo *Message
	if replied {
		msg.ReplyToMessageID = replyID
		if replyChat.ID != c.ID {
			msg.ReplyToChatID = replyArgs.chatID
		}
		repliedTo = s.findLocked(replyChat, replyID)
	}
	s.messages = append(s.messages, msg)
	s.notifyLocked()
	result := s.messageResult(msg, c)
	if repliedTo != nil {
		result["reply_to_message"] = s.messageResult(*repliedTo, replyChat)
	}
	s.mu.Unlock()
	return reply{status: http.StatusOK, result: result}
}

// previewDisabled reads link_preview_options, or the older
// disable_web_page_preview.
func previewDisabled(args map[string]string) (bool, error) {
	if raw := args["link_preview_options"]; raw != "" {
		var opts struct {
			IsDisabled bool `json:"is_disabled"`
		}
		if err := json.Unmarshal([]byte(raw), &opts); err != nil {
			return false, badRequest("can't parse link preview options JSON object")
		}
		return opts.IsDisabled, nil
	}
	return boolArg(args["disable_web_page_preview"]), nil
}

// findLocked returns a copy of message id of chat c, nil if there is none.
// Called with s.mu held.
func (s *Server) findLocked(c chat, id int64) *Message {
	if m := s.messageLocked(c, id); m != nil {
		found := *m
		return &found
	}
	return nil
}

// messageLocked returns message id of chat c in place, nil if there is
// none. The pointer is only good while s.mu is held.
func (s *Server) messageLocked(c chat, id int64) *Message {
	for i := range s.messages {
		m := &s.messages[i]
		if m.MessageID == id && s.chats[chatKey(m.ChatID)].ID == c.ID {
			return m
		}
	}
	return nil
}

// messageResult is m as the Bot API returns it. Called with s.mu held.
func (s *Server) messageResult(m Message, c chat) map[string]any {
	result := map[string]any{
		"message_id": m.MessageID,
		"chat":       c,
		"date":       time.Now().Unix(),
		"text":       m.PlainText,
	}
	if c.Type == "channel" {
		result["sender_chat"] = c
	} else {
		result["from"] = s.bot
	}
	if date := s.editDates[msgKey{c.ID, m.MessageID}]; date != 0 {
		result["edit_date"] = date
	}
	if m.ReplyMarkup != nil {
		result["reply_markup"] = keyboardJSON(m.ReplyMarkup)
	}
	return result
}

func (s *Server) write(w http.ResponseWriter, rep reply) {
	body := map[string]any{"ok": rep.status == http.StatusOK}
	if rep.status == http.StatusOK {
		body["result"] = rep.result
		if rep.description != "" { // "Webhook was set" and the like
			body["description"] = rep.description
		}
	} else {
		body["error_code"] = rep.status
		body["description"] = rep.description
		if rep.retryAfter > 0 {
			body["parameters"] = map[string]int{"retry_after": rep.retryAfter}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) writeFault(w http.ResponseWriter, f fault) {
	switch f.status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		title := fmt.Sprintf("%d %s", f.status, http.StatusText(f.status))
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(f.status)
		_, _ = fmt.Fprintf(w, "<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n", title, title)
	default:
		s.write(w, reply{status: f.status, description: faultDescription(f), retryAfter: f.retryAfter})
	}
}

func faultDescription(f fault) string {
	if f.status == http.StatusTooManyRequests {
		return fmt.Sprintf("Too Many Requests: retry after %d", f.retryAfter)
	}
	return http.StatusText(f.status)
}

// methodFromPath returns the method part of /bot<token>/<method>.
func methodFromPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/bot")
	if !ok {
		return ""
	}
	_, method, _ := strings.Cut(rest, "/")
	return method
}

// chatKey normalizes a chat_id: usernames are case-insensitive; numeric ids
// must be written canonically ("+5" or "05" name no chat, as with the Bot API).
func chatKey(id string) string {
	if strings.HasPrefix(id, "@") {
		return strings.ToLower(id)
	}
	return id
}

// newChat describes a configured chat. Telegram's id ranges say what kind
// of chat it is; a username stands for a channel, given a made-up id.
func newChat(id string, index int) (chat, error) {
	if name, ok := strings.CutPrefix(id, "@"); ok {
		if name == "" {
			return chat{}, fmt.Errorf("%q: empty username", id)
		}
		return chat{ID: -1001000000000 - int64(index), Type: "channel", Title: "Vigil Test Channel", Username: name}, nil
	}
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || strconv.FormatInt(n, 10) != id || n == 0 {
		return chat{}, fmt.Errorf("%q: want a non-zero integer or an @username", id)
	}
	switch {
	case n > 0:
		return chat{ID: n, Type: "private", FirstName: "Vigil Test User"}, nil
	case n <= -1000000000000:
		return chat{ID: n, Type: "supergroup", Title: "Vigil Test Group"}, nil
	default:
		return chat{ID: n, Type: "group", Title: "Vigil Test Group"}, nil
	}
}

// botID is the number before the colon in a token, as in real tokens.
func botID(token string) int64 {
	prefix, _, _ := strings.Cut(token, ":")
	if n, err := strconv.ParseInt(prefix, 10, 64); err == nil && n > 0 {
		return n
	}
	return 1
}

func cloneMessages(in []Message) []Message {
	out := make([]Message, len(in))
	for i, m := range in {
		out[i] = cloneMessage(m)
	}
	return out
}

func cloneMessage(m Message) Message {
	m.ReplyMarkup = cloneKeyboard(m.ReplyMarkup)
	if m.Edits != nil {
		edits := make([]Edit, len(m.Edits))
		for i, e := range m.Edits {
			e.ReplyMarkup = cloneKeyboard(e.ReplyMarkup)
			edits[i] = e
		}
		m.Edits = edits
	}
	return m
}

func cloneKeyboard(rows [][]Button) [][]Button {
	if rows == nil {
		return nil
	}
	out := make([][]Button, len(rows))
	for i, row := range rows {
		out[i] = append([]Button(nil), row...)
	}
	return out
}
