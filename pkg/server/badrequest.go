package server

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// FieldViolation says what is wrong with one field of a request.
type FieldViolation struct {
	// Field is the path of the offending value with the API's field
	// names: "page_token", "alerts[2].labels", "guardrails.cooldown".
	// Empty for the request as a whole.
	Field string `json:"field"`
	// Description says what is wrong: "must not be negative".
	Description string `json:"description"`
}

// MaxViolations is how many violations a BadRequestError keeps; a last one
// then says how many more were found, so that a body with thousands of
// mistakes gets a bounded answer.
const MaxViolations = 100

// BadRequestError is a request refused for what its fields hold, with every
// violation found, so that one answer tells the caller all there is to
// fix. Domain packages return it, wrapped or not, for input they refuse;
// it is a gRPC status (InvalidArgument with google.rpc.BadRequest
// details), which REST answers 400 with problem JSON listing the fields.
// The zero value is an empty list: Add to it, then return Err.
type BadRequestError struct {
	// Message sums the refusal up: "invalid silence".
	Message    string
	Violations []FieldViolation
	omitted    int
}

// InvalidArgument returns a BadRequestError of msg and the violations.
func InvalidArgument(msg string, violations ...FieldViolation) error {
	return &BadRequestError{Message: msg, Violations: violations}
}

// ValidUUID refuses id, the value of field, unless it is a UUID: an id
// checked before it reaches the database, where a malformed one would
// be an internal error.
func ValidUUID(field, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return InvalidArgument("invalid "+field, FieldViolation{Field: field, Description: "must be a UUID"})
	}
	return nil
}

// Add records that field is wrong as description says.
func (b *BadRequestError) Add(field, description string) {
	if len(b.Violations) >= MaxViolations {
		b.omitted++
		return
	}
	b.Violations = append(b.Violations, FieldViolation{Field: field, Description: description})
}

// Addf is Add with a formatted description.
func (b *BadRequestError) Addf(field, format string, args ...any) {
	b.Add(field, fmt.Sprintf(format, args...))
}

// Len is how many violations were added, those MaxViolations left out
// included.
func (b *BadRequestError) Len() int { return len(b.Violations) + b.omitted }

// Err returns the BadRequestError with msg as its message, or nil when
// nothing was added.
func (b *BadRequestError) Err(msg string) error {
	if len(b.Violations) == 0 {
		return nil
	}
	out := &BadRequestError{Message: msg, Violations: b.Violations}
	if b.omitted > 0 {
		out.Violations = append(out.Violations[:len(out.Violations):len(out.Violations)],
			FieldViolation{Description: fmt.Sprintf("%d more violations not shown", b.omitted)})
	}
	return out
}

// Error is the message and every violation: "invalid silence:
// matchers[0]: must not be empty; ends_at: must be after starts_at".
func (b *BadRequestError) Error() string {
	var s strings.Builder
	s.WriteString(b.message())
	for i, v := range b.Violations {
		if i == 0 {
			s.WriteString(": ")
		} else {
			s.WriteString("; ")
		}
		if v.Field != "" {
			s.WriteString(v.Field)
			s.WriteString(": ")
		}
		s.WriteString(v.Description)
	}
	return s.String()
}

// GRPCStatus is InvalidArgument with the message and the violations as
// google.rpc.BadRequest details: what gRPC sends for it, and what
// status.FromError, status.Code and the error interceptor read.
func (b *BadRequestError) GRPCStatus() *status.Status {
	return WithViolations(status.New(codes.InvalidArgument, b.message()), b.Violations...)
}

// WithViolations is st with the violations as google.rpc.BadRequest
// details, for a refusal of another code that names the fields at fault
// (PermissionDenied for a silence outside the caller's namespaces,
// AlreadyExists for a domain another app serves); REST lists them as
// for a BadRequestError.
func WithViolations(st *status.Status, violations ...FieldViolation) *status.Status {
	if len(violations) == 0 {
		return st
	}
	br := &errdetails.BadRequest{}
	for _, v := range violations {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
	}
	if d, err := st.WithDetails(br); err == nil {
		return d
	}
	return st
}

func (b *BadRequestError) message() string {
	if b.Message == "" {
		return "invalid request"
	}
	return b.Message
}

// Violations returns the field violations carried by a gRPC status: what
// a client reads back, and what REST lists in its problem JSON.
func Violations(st *status.Status) []FieldViolation {
	var out []FieldViolation
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return out
}
