package redact_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/analysis/internal/redact"
)

func TestTextSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{name: "password key=value", in: "connecting with password=hunter2 now", want: "connecting with password=[REDACTED:secret] now"},
		{name: "env style", in: "DB_PASSWORD=s3cr3t-value", want: "DB_PASSWORD=[REDACTED:secret]"},
		{name: "yaml token", in: "token: abc123def456", want: "token: [REDACTED:secret]"},
		{name: "json quoted", in: `{"api_key": "k-123456", "user": "bob"}`, want: `{"api_key": "[REDACTED:secret]", "user": "bob"}`},
		{name: "single quoted", in: `client_secret='a b c'`, want: `client_secret='[REDACTED:secret]'`},
		{name: "authorization bearer", in: "Authorization: Bearer abc.def-ghi", want: "Authorization: Bearer [REDACTED:secret]"},
		{name: "authorization basic", in: "authorization=Basic dXNlcjpwYXNz", want: "authorization=Basic [REDACTED:secret]"},
		{name: "bare bearer", in: "sent bearer QWxhZGRpbjpvcGVu to upstream", want: "sent bearer [REDACTED:secret] to upstream"},
		{name: "aws access key", in: "key AKIAIOSFODNN7EXAMPLE used", want: "key [REDACTED:secret] used"},
		{name: "aws secret key", in: "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", want: "aws_secret_access_key = [REDACTED:secret]"},
		{name: "github token", in: "using ghp_0123456789abcdefghijklmnopqrstuvwxyz", want: "using [REDACTED:secret]"},
		{name: "openai key", in: "OPENAI sk-proj-abcdefghijklmnopqrstuvwx failed", want: "OPENAI [REDACTED:secret] failed"},
		{
			name: "jwt", in: "cookie eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U expired",
			want: "cookie [REDACTED:secret] expired",
		},
		{
			name: "pem block", in: "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAK\n-----END RSA PRIVATE KEY-----\nafter",
			want: "key:\n[REDACTED:secret]\nafter",
		},
		{name: "truncated pem", in: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz", want: "[REDACTED:secret]"},
		{name: "postgres url", in: "dial postgres://app:pa55w0rd@db.internal:5432/shop failed", want: "dial postgres://[REDACTED:secret]@db.internal:5432/shop failed"},
		{name: "redis url no user", in: "redis://:topsecret@cache:6379", want: "redis://[REDACTED:secret]@cache:6379"},
		{name: "url without credentials", in: "GET https://example.com/path?q=1", want: "GET https://example.com/path?q=1"},
		{name: "hex secret", in: "WEBHOOK_SIGNING_SECRET=0123456789abcdef0123456789abcdef", want: "WEBHOOK_SIGNING_SECRET=[REDACTED:secret]"},
		{name: "plain text untouched", in: "Back-off restarting failed container app in pod shop-7d9c", want: "Back-off restarting failed container app in pod shop-7d9c"},
		{name: "image digest untouched", in: "image shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", want: "image shop@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, redact.New(redact.Options{}).Text(tt.in))
		})
	}
}

func TestTextLiteralSecrets(t *testing.T) {
	t.Parallel()
	r := redact.New(redact.Options{Secrets: []string{"correct-horse-battery", "ab"}})
	require.Equal(t, "value [REDACTED:secret] in a log; ab stays",
		r.Text("value correct-horse-battery in a log; ab stays"))
}

func TestTextEmailsAndAddresses(t *testing.T) {
	t.Parallel()
	r := redact.New(redact.Options{})
	require.Equal(t, "mail from [EMAIL-1] to [EMAIL-2], again [EMAIL-1]",
		r.Text("mail from Alice@example.com to bob@corp.example, again alice@example.com"))
	require.Equal(t, "dial tcp [IP-1]:5432: connect: connection refused; [IP-2] and [IP-1]",
		r.Text("dial tcp 10.0.3.7:5432: connect: connection refused; 192.168.1.1 and 10.0.3.7"))
	// Numbering goes on across calls: one analysis, one set of placeholders.
	require.Equal(t, "[IP-3] [IP-4] [IP-3]: refused, [[IP-5]]:8080",
		r.Text("2001:db8::1 fe80::1%eth0 2001:0db8:0:0:0:0:0:1: refused, [::1]:8080"))
	require.Equal(t, "[IP-2]", r.Text("192.168.1.1"))

	for _, keep := range []string{
		"std::vector<int>", "at 12:30:45.123", "mac aa:bb:cc:dd:ee:ff", "v1.2.3", "Foo::Bar",
	} {
		require.Equal(t, keep, redact.New(redact.Options{}).Text(keep))
	}
}

func TestPseudonymise(t *testing.T) {
	t.Parallel()
	r := redact.New(redact.Options{Pseudonymise: true})
	require.Equal(t, "ns-1", r.Name(redact.Namespace, "payments"))
	require.Equal(t, "workload-1", r.Name(redact.Workload, "shop"))
	require.Equal(t, "pod-1", r.Name(redact.Pod, "shop-7d9c-x2x4k"))
	require.Equal(t, "container-1", r.Name(redact.Container, "app"))
	require.Equal(t, "node-1", r.Name(redact.Node, "ip-10-0-3-7.ec2.internal"))
	require.Equal(t, "workload-1", r.Name(redact.Workload, "shop"), "same name, same pseudonym")
	require.Empty(t, r.Name(redact.Pod, ""))

	got := r.Text("pod shop-7d9c-x2x4k of shop in payments on ip-10-0-3-7.ec2.internal: container app OOMKilled; shopping and apps untouched")
	require.Equal(t, "pod pod-1 of workload-1 in ns-1 on node-1: container container-1 OOMKilled; shopping and apps untouched", got)

	require.Equal(t, "restart shop in payments (pod shop-7d9c-x2x4k); workload-12 is unknown",
		r.Restore("restart workload-1 in ns-1 (pod pod-1); workload-12 is unknown"))
	require.Equal(t, "payments", r.RestoreName("ns-1"))
	require.Equal(t, "kube-system", r.RestoreName("kube-system"))
}

func TestNameWithoutPseudonyms(t *testing.T) {
	t.Parallel()
	r := redact.New(redact.Options{})
	require.Equal(t, "shop", r.Name(redact.Workload, "shop"))
	require.Equal(t, "shop", r.Text("shop"))
	require.Equal(t, "workload-1", r.Restore("workload-1"))
}

func TestRestoreNeverBringsBackSecrets(t *testing.T) {
	t.Parallel()
	r := redact.New(redact.Options{Pseudonymise: true})
	r.Name(redact.Workload, "shop")
	out := r.Text("shop: password=hunter2 from ops@example.com at 10.1.2.3")
	require.Equal(t, "workload-1: password=[REDACTED:secret] from [EMAIL-1] at [IP-1]", out)
	require.Equal(t, "shop: password=[REDACTED:secret] from [EMAIL-1] at [IP-1]", r.Restore(out))
}

func TestLongInputIsLinear(t *testing.T) {
	t.Parallel()
	// Regular expressions in Go are linear; this guards against a
	// hand-written loop that is not.
	in := strings.Repeat("password=x ", 20000) + strings.Repeat(":", 50000)
	out := redact.New(redact.Options{Pseudonymise: true}).Text(in)
	require.NotContains(t, out, "password=x ")
}
