package faketelegram

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxRequestBody bounds what the fake reads; Telegram takes 50 MB uploads,
// but no text method needs more than this.
const maxRequestBody = 10 << 20

// requestArgs collects a Bot API call's parameters the ways Telegram takes
// them: the URL query, then a JSON, urlencoded or multipart body. A body of
// another type is ignored. In a JSON body a string is taken as is and any
// other value as its JSON text, so {"chat_id":-100123} means "-100123" and
// {"parse_mode":null} means "null", as with the real server.
func requestArgs(r *http.Request) (map[string]string, error) {
	args := make(map[string]string)
	for k, v := range r.URL.Query() {
		args[k] = v[0]
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/json":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if err != nil {
			return nil, badRequest("can't read request body")
		}
		if len(bytes.TrimSpace(body)) == 0 {
			return args, nil
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			return nil, badRequest("can't parse JSON object")
		}
		for k, raw := range fields {
			var s string
			if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
				args[k] = s
			} else {
				args[k] = string(raw) // null decodes to "" and must not
			}
		}
	case "application/x-www-form-urlencoded":
		r.Body = http.MaxBytesReader(nil, r.Body, maxRequestBody)
		if err := r.ParseForm(); err != nil {
			return nil, badRequest("can't parse request body")
		}
		for k, v := range r.PostForm {
			args[k] = v[0]
		}
	case "multipart/form-data":
		r.Body = http.MaxBytesReader(nil, r.Body, maxRequestBody)
		if err := r.ParseMultipartForm(maxRequestBody); err != nil {
			return nil, badRequest("can't parse request body")
		}
		for k, v := range r.MultipartForm.Value {
			args[k] = v[0]
		}
	}
	return args, nil
}

// boolArg reads a Boolean parameter as the Bot API does.
func boolArg(v string) bool {
	return strings.EqualFold(v, "true") || v == "1"
}
