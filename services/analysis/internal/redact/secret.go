package redact

import (
	"net/netip"
	"regexp"
	"strings"
)

// The secret patterns (see redactSecrets for the order).
var (
	// A private key block; an unterminated one (a truncated log) is
	// redacted to the end of the text.
	pemRE = regexp.MustCompile(`(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)`)
	// An Authorization header (or a proxy's), with or without a scheme.
	authHeaderRE = regexp.MustCompile(`(?i)((?:proxy-)?authorization["']?\s*[:=]\s*["']?)(?:(bearer|basic|digest|token|negotiate|apikey)\s+)?([^\s"',;]+)`)
	// A bearer token anywhere else.
	bearerRE = regexp.MustCompile(`(?i)\b(bearer\s+)([A-Za-z0-9\-._~+/]+=*)`)
	// Credentials in a URL: scheme://user:password@host.
	urlCredsRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@:"'<>]*:[^\s@"'<>]+@`)
	// A JWT (its header is base64url JSON, so it starts with eyJ).
	jwtRE = regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`)
	// Tokens whose shape says what they are.
	knownTokenRE = regexp.MustCompile(`\b(?:` +
		`(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}` + // AWS access key id
		`|gh[pousr]_[A-Za-z0-9]{30,}` + // GitHub
		`|github_pat_[A-Za-z0-9_]{30,}` +
		`|glpat-[A-Za-z0-9_\-]{20,}` + // GitLab
		`|xox[abposr]-[A-Za-z0-9\-]{10,}` + // Slack
		`|sk-[A-Za-z0-9_\-]{20,}` + // OpenAI, Anthropic (sk-ant-...)
		`|AIza[0-9A-Za-z_\-]{35}` + // Google API key
		`|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}` + // Stripe
		`|[0-9]{8,10}:AA[A-Za-z0-9_\-]{30,}` + // Telegram bot token
		`)`)
	// key=value, key: value, "key": "value" with a key that names a
	// secret, up to the separator; redactKeyValues finds the value.
	keyRE = regexp.MustCompile(`(?i)[A-Za-z0-9_.\-]*(?:passw(?:or)?d|pwd|secret|token|api[_\-.]?key|access[_\-.]?key|private[_\-.]?key|credential|session[_\-.]?id|cookie|signature|auth|dsn)[A-Za-z0-9_.\-]*["']?[ \t]*(?::|=|=>)[ \t]*`)
)

// valueStops end an unquoted value.
const valueStops = " \t\r\n\f\v,;&\"'}]"

var authSchemes = map[string]bool{"bearer": true, "basic": true, "digest": true, "token": true, "negotiate": true, "apikey": true}

func (r *Redactor) redactSecrets(s string) string {
	for _, lit := range r.secrets {
		s = strings.ReplaceAll(s, lit, Secret)
	}
	s = pemRE.ReplaceAllString(s, Secret)
	// Key-value pairs before the shapes below, which could swallow the
	// start of a key ("Authorization: DB_SECRET='x'").
	s = redactKeyValues(s)
	s = authHeaderRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := authHeaderRE.FindStringSubmatch(m)
		if sub[3] == Secret || strings.HasPrefix(sub[3], "[REDACTED") {
			return m
		}
		out := sub[1]
		if sub[2] != "" {
			out += sub[2] + " "
		}
		return out + Secret
	})
	s = bearerRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := bearerRE.FindStringSubmatch(m)
		return sub[1] + Secret
	})
	s = urlCredsRE.ReplaceAllString(s, "${1}"+Secret+"@")
	s = jwtRE.ReplaceAllString(s, Secret)
	return knownTokenRE.ReplaceAllString(s, Secret)
}

// redactKeyValues redacts the values of secret-looking keys. It scans by
// hand rather than with ReplaceAll because matches overlap: in
// `auth: "api_token": "x"` or `auth: DB_SECRET='x'` what looks like the
// first key's value is the next key, so each search resumes at the value
// just found and every value found is redacted.
func redactKeyValues(s string) string {
	type span struct{ start, end int }
	var spans []span
	runEnd := 0 // end of the last unquoted value: a value found inside it ends there too
	for pos := 0; pos < len(s); {
		loc := keyRE.FindStringIndex(s[pos:])
		if loc == nil {
			break
		}
		vStart := pos + loc[1]
		// The key is at least three bytes, so this moves on.
		pos = vStart
		if vStart == len(s) {
			break
		}
		var vEnd int
		switch q := s[vStart]; {
		case q == '"' || q == '\'':
			vEnd = len(s)
			if i := strings.IndexByte(s[vStart+1:], q); i >= 0 {
				vEnd = vStart + 1 + i + 1
			}
		case vStart < runEnd:
			vEnd = runEnd
		default:
			vEnd = vStart
			for vEnd < len(s) && !strings.ContainsRune(valueStops, rune(s[vEnd])) {
				vEnd++
			}
			runEnd = vEnd
		}
		v := s[vStart:vEnd]
		if v == "" || authSchemes[strings.ToLower(v)] || strings.HasPrefix(strings.Trim(v, `"'`), "[REDACTED") {
			continue
		}
		if v[0] == '"' || v[0] == '\'' {
			// Keep the quotes: the text stays readable JSON or YAML.
			end := vEnd
			if len(v) >= 2 && v[len(v)-1] == v[0] {
				end--
			}
			spans = append(spans, span{vStart + 1, end})
			continue
		}
		spans = append(spans, span{vStart, vEnd})
	}
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for i := 0; i < len(spans); i++ {
		sp := spans[i]
		// Merge what overlaps or touches (spans come in order of start).
		for i+1 < len(spans) && spans[i+1].start <= sp.end {
			sp.end = max(sp.end, spans[i+1].end)
			i++
		}
		if sp.start < last {
			sp.start = last
		}
		if sp.end <= sp.start {
			continue
		}
		b.WriteString(s[last:sp.start])
		b.WriteString(Secret)
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

var (
	emailRE = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	ipv4RE  = regexp.MustCompile(`\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\b`)
	// ipv6CandRE finds runs that could be an IPv6 address (an embedded
	// IPv4 included); netip decides.
	ipv6CandRE = regexp.MustCompile(`[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[0-9A-Za-z]+)?`)
)

func (r *Redactor) redactIPs(s string) string {
	// IPv6 first: an address like ::ffff:10.0.0.1 is one address.
	s = replaceAllIndex(s, ipv6CandRE, func(s string, start, end int) (string, bool) {
		if start > 0 && isWordByte(s[start-1]) || end < len(s) && isWordByte(s[end]) {
			return "", false
		}
		cand := s[start:end]
		addr, err := netip.ParseAddr(cand)
		if err != nil {
			// "2001:db8::1: connection refused": the run took the
			// punctuation after the address.
			trimmed := strings.TrimRight(cand, ":.")
			if addr, err = netip.ParseAddr(trimmed); err != nil {
				return "", false
			}
			cand = trimmed
		}
		if !addr.Is6() || !strings.ContainsAny(cand, "0123456789abcdefABCDEF") {
			return "", false
		}
		return placeholder(r.ips, "IP", addr.WithZone("").String()) + s[start+len(cand):end], true
	})
	return ipv4RE.ReplaceAllStringFunc(s, func(m string) string {
		return placeholder(r.ips, "IP", m)
	})
}

func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// replaceAllIndex is ReplaceAllStringFunc with the match's position, so the
// replacement can look at its neighbours; ok false keeps the match.
func replaceAllIndex(s string, re *regexp.Regexp, repl func(s string, start, end int) (string, bool)) string {
	var b strings.Builder
	last := 0
	for _, loc := range re.FindAllStringIndex(s, -1) {
		out, ok := repl(s, loc[0], loc[1])
		if !ok {
			continue
		}
		b.WriteString(s[last:loc[0]])
		b.WriteString(out)
		last = loc[1]
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
