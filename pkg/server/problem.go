package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Problem is an RFC 9457 problem document, Vigil's answer to every failed
// REST request.
type Problem struct {
	Type   string           `json:"type"`
	Title  string           `json:"title"`
	Status int              `json:"status"`
	Detail string           `json:"detail,omitempty"`
	Errors []FieldViolation `json:"errors,omitempty"`
}

// WriteProblem writes a problem document with the given HTTP status.
func WriteProblem(w http.ResponseWriter, code int, detail string, violations ...FieldViolation) {
	p := Problem{Type: "about:blank", Title: http.StatusText(code), Status: code, Detail: detail, Errors: violations}
	w.Header().Set("Content-Type", "application/problem+json")
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(p)
}

// ResourceExhausted returns a gRPC ResourceExhausted status that says when
// to try again (google.rpc.RetryInfo); REST answers it with 429 and a
// Retry-After header.
func ResourceExhausted(msg string, retryAfter time.Duration) error {
	return retryable(codes.ResourceExhausted, msg, retryAfter)
}

// Unavailable returns a gRPC Unavailable status that says when to try
// again (google.rpc.RetryInfo); REST answers it with 503 and a
// Retry-After header.
func Unavailable(msg string, retryAfter time.Duration) error {
	return retryable(codes.Unavailable, msg, retryAfter)
}

func retryable(code codes.Code, msg string, retryAfter time.Duration) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// RetryAfter is the Retry-After of a gRPC status that carries RetryInfo:
// whole seconds, rounded up; "" when it carries none.
func RetryAfter(st *status.Status) string {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			secs := (ri.GetRetryDelay().AsDuration() + time.Second - 1) / time.Second
			return strconv.FormatInt(int64(max(secs, 1)), 10)
		}
	}
	return ""
}
