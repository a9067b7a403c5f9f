package grpcapi

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A target that is a URL (a webhook's, often with a token in its path or
// query) shows only its scheme and host; others show as they are.
func TestShownTarget(t *testing.T) {
	t.Parallel()
	for target, want := range map[string]string{
		"https://hooks.example.com/services/T0/B0/s3cret?token=x": "https://hooks.example.com",
		"https://user:pw@hooks.example.com:8443/x":                "https://hooks.example.com:8443",
		"-1001234567890":                     "-1001234567890",
		"C0123ABCD":                          "C0123ABCD",
		"oncall@example.com,sre@example.com": "oncall@example.com,sre@example.com",
	} {
		assert.Equal(t, want, shownTarget(target), target)
	}
}
