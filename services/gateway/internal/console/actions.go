package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxForm bounds a posted form: the console's forms are small.
const maxForm = 64 << 10

// act runs a change a page's form posted: for a signed-in user, the body
// bounded, the CSRF token checked (double submit; the cross-origin check
// of ServeHTTP ran before), then do with the user's token, so the API's
// policy, team scoping and audit decide and record it. On success the
// browser goes to the page do names (303, so a reload does not post
// again) where done, a "done.*" word, is shown once; a refusal answers
// the error page with what the API said (a field's error, a conflict).
func (c *Console) act(w http.ResponseWriter, r *http.Request, do func(ctx context.Context, s *session) (to, done string, err error)) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	to, key, err := do(withToken(r.Context(), s.access), s)
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	http.Redirect(w, r, withDone(localPath(to), key), http.StatusSeeOther)
}

// posted runs act's checks for a POST whose answer is a page rather than
// a redirect (a secret shown once, a form shown again as typed with the
// API's field errors, the result of a try): the body bounded, the CSRF
// token, a session. False: the answer is written.
func (c *Console) posted(w http.ResponseWriter, r *http.Request) (*session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !csrfOK(r) {
		c.fail(w, r, nil, http.StatusForbidden, "error.csrf")
		return nil, false
	}
	return c.signedIn(w, r)
}

// refusal is how failCall shows a refusal the user can fix by changing
// what they posted (a field's error: 400; a conflict: 409), for a form
// shown again as typed; ok is false for any other error, which failCall
// answers.
func refusal(err error) (code int, p *problem, ok bool) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest, &problem{Key: "error.invalid", Detail: explain(st)}, true
	case codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict, &problem{Key: "error.conflict", Detail: explain(st)}, true
	}
	return 0, nil, false
}

// withDone adds the done word to a local path.
func withDone(to, key string) string {
	if key == "" {
		return to
	}
	u, err := url.Parse(to)
	if err != nil {
		return to
	}
	q := u.Query()
	q.Set("done", key)
	u.RawQuery = q.Encode()
	return u.String()
}

// done is the word of the request's done parameter, if it is one of the
// catalogue's "done.*" words: a link cannot make a page say anything else.
func done(r *http.Request) string {
	key := r.URL.Query().Get("done")
	if _, ok := catalogue["en"][key]; ok && strings.HasPrefix(key, "done.") {
		return key
	}
	return ""
}

// explain is what the API said of a refused call, with its field errors.
func explain(st *status.Status) string {
	var b strings.Builder
	b.WriteString(st.Message())
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				b.WriteString("; " + v.GetField() + ": " + v.GetDescription())
			}
		}
	}
	return b.String()
}
