package alertmanager

import "strings"

// ValidationError reports every reason a webhook body was rejected.
type ValidationError struct {
	// Violations are in document order. At most a hundred are kept; a last
	// violation of the body then says how many were left out.
	Violations []FieldViolation
}

// FieldViolation is one broken rule.
type FieldViolation struct {
	// Field is the path to the offending value in the JSON spelling:
	// "version", "alerts[2].labels", "alerts[0].labels.severity",
	// `alerts[0].labels["k8s.pod"]` for names that are not identifiers. The
	// empty string means the body as a whole.
	Field string
	// Description says what is wrong, e.g. "must not be empty".
	Description string
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid alertmanager webhook: ")
	for i, v := range e.Violations {
		if i > 0 {
			b.WriteString("; ")
		}
		field := v.Field
		if field == "" {
			field = "body"
		}
		b.WriteString(field)
		b.WriteString(": ")
		b.WriteString(v.Description)
	}
	return b.String()
}
