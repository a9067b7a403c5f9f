package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/notify/channel/email"
)

// The SMTP server, its credentials (the password from a file too), the
// sender and the recipients reach notify's email options, which check
// them and name the variable.
func TestEmailNotifyFromEnv(t *testing.T) {
	passwordFile := filepath.Join(t.TempDir(), "smtp-password")
	require.NoError(t, os.WriteFile(passwordFile, []byte("s3cret\n"), 0o600))
	t.Setenv("VIGIL_SMTP_HOST", "smtp.example.com")
	t.Setenv("VIGIL_SMTP_PORT", "465")
	t.Setenv("VIGIL_SMTP_TLS", "tls")
	t.Setenv("VIGIL_SMTP_USERNAME", "vigil@example.com")
	t.Setenv("VIGIL_SMTP_PASSWORD_FILE", passwordFile)
	t.Setenv("VIGIL_SMTP_CA_FILE", "/etc/vigil/ca.pem")
	t.Setenv("VIGIL_EMAIL_FROM", "Vigil <vigil@example.com>")
	t.Setenv("VIGIL_EMAIL_TO", "oncall@example.com, sre@example.com,")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	got, ok := notifyChannel[email.Options](opts.Notify)
	require.True(t, ok)
	require.Equal(t, email.Options{
		Host: "smtp.example.com", Port: 465, TLS: email.TLSImplicit, Username: "vigil@example.com", Password: "s3cret",
		CAFile: "/etc/vigil/ca.pem", From: "Vigil <vigil@example.com>", To: []string{"oncall@example.com", "sre@example.com"},
	}, got)
	require.NoError(t, opts.Notify.Validate())

	t.Setenv("VIGIL_SMTP_TLS", "none")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Notify.Validate(), "VIGIL_SMTP_TLS: none sends mail and passwords in the clear")

	t.Setenv("VIGIL_SMTP_PORT", "smtp")
	_, err = appOptions(&serviceFlags{}, nil, "")
	require.ErrorContains(t, err, `VIGIL_SMTP_PORT: "smtp" is not a number`)
}
