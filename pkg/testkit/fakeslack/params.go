package fakeslack

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxRequestBody bounds what the fake reads.
const maxRequestBody = 10 << 20

// args is a Web API call's parameters: strings from a query or form, any
// JSON value from a JSON body.
type args map[string]any

// str returns a parameter as a string: a JSON string as is, another JSON
// value as its JSON text, "" when absent or null.
func (a args) str(name string) string {
	switch v := a[name].(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// bool reads a Boolean parameter: true, "true" or "1".
func (a args) bool(name string) bool {
	switch v := a[name].(type) {
	case bool:
		return v
	case string:
		return v == "true" || v == "1"
	case json.Number:
		return v.String() == "1"
	}
	return false
}

// readArgs collects a call's parameters the ways Slack takes them: the
// query string, then a JSON, urlencoded or multipart body. It returns the
// token (the Authorization header's bearer token, or a form field; a JSON
// body can't carry it), a warning for the response, and an error code when
// the body can't be read.
func readArgs(r *http.Request) (a args, token, warning, errCode string) {
	a = args{}
	for k, v := range r.URL.Query() {
		a[k] = v[0]
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = strings.TrimSpace(bearer)
	}
	if r.Method != http.MethodPost {
		return a, token, "", ""
	}
	contentType := r.Header.Get("Content-Type")
	if contentType == "" {
		return a, token, "", ""
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return a, token, "", "invalid_post_type"
	}
	charset, hasCharset := params["charset"]
	switch mediaType {
	case "application/json":
		if hasCharset && !strings.EqualFold(charset, "utf-8") {
			return a, token, "", "invalid_charset"
		}
		if !hasCharset {
			warning = "missing_charset"
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if err != nil {
			return a, token, warning, "invalid_json"
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return a, token, warning, "invalid_json"
		}
		fields, ok := v.(map[string]any)
		if !ok {
			return a, token, warning, "json_not_object"
		}
		for k, v := range fields {
			a[k] = v
		}
		return a, token, warning, ""
	case "application/x-www-form-urlencoded", "multipart/form-data":
		if hasCharset && !strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "iso-8859-1") {
			return a, token, "", "invalid_charset"
		}
		r.Body = http.MaxBytesReader(nil, r.Body, maxRequestBody)
		if mediaType == "multipart/form-data" {
			err = r.ParseMultipartForm(maxRequestBody)
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			return a, token, "", "invalid_form_data"
		}
		for k, v := range r.PostForm {
			a[k] = v[0]
		}
		if token == "" {
			token = r.PostForm.Get("token")
		}
		return a, token, "", ""
	case "text/plain":
		return a, token, "", ""
	default:
		return a, token, "", "invalid_post_type"
	}
}
