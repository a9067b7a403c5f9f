package fakeslack

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"time"
)

// A response_url takes this many posts within this long.
const (
	responseURLUses = 5
	responseURLTTL  = 30 * time.Minute
)

// responseURL is a response_url given out with an interaction.
type responseURL struct {
	channel string
	ts      string // the message the interaction came from
	created time.Time
	uses    int
}

// ResponsePost is a post to a response_url.
type ResponsePost struct {
	URL string
	// Channel and MessageTS name the message the interaction came from.
	Channel   string
	MessageTS string
	Text      string
	Blocks    json.RawMessage
	// ReplaceOriginal replaces that message; DeleteOriginal deletes it;
	// otherwise the post is a new message, visible to the presser only
	// (ResponseType "ephemeral", the default) or in the channel
	// ("in_channel", recorded in Messages with PostedTS as its ts).
	ReplaceOriginal bool
	DeleteOriginal  bool
	ResponseType    string
	ThreadTS        string
	PostedTS        string
	StatusCode      int
	// Error is the error code answered, empty when the post was taken.
	Error string
}

// ResponsePosts returns the posts to response_urls so far, refused ones
// included, oldest first.
func (s *Server) ResponsePosts() []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ResponsePost(nil), s.responses...)
}

// serveResponseURL takes a JSON post to a response_url: it must be one the
// fake gave out, at most 30 minutes ago and used fewer than 5 times, and
// carry what a message needs.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	post := ResponsePost{URL: s.srv.URL + r.URL.Path}
	status, code, messages := s.takeResponse(r, &post)
	post.StatusCode, post.Error = status, code
	s.mu.Lock()
	s.responses = append(s.responses, post)
	s.notifyLocked()
	s.mu.Unlock()
	s.write(w, status, result{err: code, messages: messages}, "")
}

func (s *Server) takeResponse(r *http.Request, post *ResponsePost) (status int, code string, messages []string) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var a args
	if mediaType != "application/json" || err != nil || dec.Decode(&a) != nil || a == nil {
		return http.StatusBadRequest, "invalid_payload", nil
	}
	post.ReplaceOriginal, post.DeleteOriginal = a.bool("replace_original"), a.bool("delete_original")
	post.ResponseType, post.ThreadTS = a.str("response_type"), a.str("thread_ts")
	if post.ResponseType == "" {
		post.ResponseType = "ephemeral"
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	ru := s.responseURLs[r.PathValue("token")]
	if ru == nil || ru.uses >= responseURLUses || time.Since(ru.created) > responseURLTTL {
		return http.StatusNotFound, "expired_url", nil
	}
	post.Channel, post.MessageTS = ru.channel, ru.ts
	c, res, ok := readContent(a)
	if !ok {
		return http.StatusBadRequest, res.err, res.messages
	}
	post.Text, post.Blocks = c.text, c.blocks
	if !post.DeleteOriginal && c.text == "" && c.blocks == nil {
		return http.StatusBadRequest, "no_text", nil
	}
	original := s.messageLocked(ru.channel, ru.ts)
	switch {
	case post.DeleteOriginal || post.ReplaceOriginal:
		if original == nil || original.Deleted {
			return http.StatusNotFound, "message_not_found", nil
		}
		if post.DeleteOriginal {
			original.Deleted = true
			s.notifyLocked()
		} else {
			s.editLocked(original, "response_url", c)
		}
	case post.ResponseType == "in_channel":
		if post.ThreadTS != "" {
			parent := s.messageLocked(ru.channel, post.ThreadTS)
			if parent == nil || parent.Deleted || parent.ThreadTS != "" {
				return http.StatusNotFound, "thread_not_found", nil
			}
		}
		m := Message{Channel: ru.channel, TS: s.nextTSLocked(), ThreadTS: post.ThreadTS, Text: c.text, Blocks: c.blocks, Buttons: c.buttons}
		s.messages = append(s.messages, m)
		s.notifyLocked()
		post.PostedTS = m.TS
	case post.ResponseType != "ephemeral":
		return http.StatusBadRequest, "invalid_response_type", nil
	}
	ru.uses++
	return http.StatusOK, "", nil
}
