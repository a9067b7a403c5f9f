package redact_test

import (
	"strings"
	"testing"

	"github.com/vigil-ops/vigil/services/analysis/internal/redact"
)

// FuzzText plants a secret in arbitrary text, in one of the shapes the
// redactor promises to catch, and checks it never comes out; the
// redactor must not panic on any input, pseudonymising or not.
func FuzzText(f *testing.F) {
	f.Add("log line before", "after", []byte("hunter2hunter2"), uint8(0), false)
	f.Add(`{"password": "`, `"}`, []byte("Zm9vYmFyYmF6"), uint8(1), true)
	f.Add("Authorization: ", "\n", []byte("abcdefabcdef"), uint8(2), false)
	f.Add("-----BEGIN RSA PRIVATE KEY-----", "", []byte("0123456789ab"), uint8(3), true)
	f.Add("::ffff:", "@x.io 10.0.0.1", []byte("s3cr3tvalue!"), uint8(4), false)
	f.Fuzz(func(t *testing.T, prefix, suffix string, seed []byte, shape uint8, pseudo bool) {
		secret := secretFrom(seed)
		if len(secret) < 8 || strings.Contains(prefix, secret) || strings.Contains(suffix, secret) {
			return
		}
		var planted string
		switch shape % 6 {
		case 0:
			planted = " password=" + secret + " "
		case 1:
			planted = ` "api_token": "` + secret + `" `
		case 2:
			planted = "\nAuthorization: Bearer " + secret + "\n"
		case 3:
			planted = " postgres://app:" + secret + "@db:5432/x "
		case 4:
			planted = "\n-----BEGIN PRIVATE KEY-----\n" + secret + "\n-----END PRIVATE KEY-----\n"
		case 5:
			planted = " DB_SECRET='" + secret + "' "
		}
		r := redact.New(redact.Options{Pseudonymise: pseudo})
		if pseudo {
			r.Name(redact.Workload, "shop")
			r.Name(redact.Namespace, prefix)
		}
		out := r.Text(prefix + planted + suffix)
		if strings.Contains(out, secret) {
			t.Fatalf("secret %q leaked:\nin:  %q\nout: %q", secret, prefix+planted+suffix, out)
		}
		_ = r.Restore(out)
	})
}

// secretFrom makes a secret of letters and digits, the characters every
// shape above takes unquoted.
func secretFrom(seed []byte) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b strings.Builder
	for _, c := range seed {
		b.WriteByte(alphabet[int(c)%len(alphabet)])
	}
	return b.String()
}
