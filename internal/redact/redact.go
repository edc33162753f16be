// Package redact removes secrets from free text before it leaves Parley's
// hands or is kept: log lines shown in chat, text handed to an LLM, the
// audit log (and its copy pushed to Loki), incident messages, the audit
// trail and every reply. It knows the shapes secrets take in logs and chat
// — credentials in key=value, key: value and JSON pairs, Authorization
// headers, URLs with a password, vendor tokens (AWS, GitHub, GitLab,
// Slack, OpenAI, Anthropic, Google, Stripe), JWTs, PEM private keys, long
// random strings after words like "token" — and replaces the secret part
// with Marker, keeping the surrounding text readable.
//
// It is a safety net, not a guarantee: a secret in a shape it does not know
// passes through. It errs on the side of redacting (a value after
// "password:" is hidden even when it is not a password) but leaves ordinary
// prose alone ("token bucket refilled", "password reset email sent").
//
// Redact is idempotent (Redact(Redact(s)) == Redact(s)) and adds nothing to
// its input but markers, so it is safe to apply at every boundary. It
// matches each rule only around the words its matches must hold, with the
// same result as matching the whole text (window.go): a long log pays for
// its lines that may hold a secret, not for every line.
package redact

import (
	"cmp"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Marker replaces each secret.
const Marker = "[REDACTED]"

// markerRE matches an existing marker, so that values already redacted are
// recognised as a whole and left as they are.
const markerRE = `\[REDACTED\]`

// rule finds secrets: every match of re whose secret group passes check,
// when check is set, is replaced by Marker.
type rule struct {
	name string
	re   *regexp.Regexp
	// groups are the submatches that hold the secret, the first that
	// matched wins; none means the whole match.
	groups []int
	check  func(string) bool
	// minSecret, when set, is the length under which check rejects every
	// secret: a window with no run that long of the bytes the secret group
	// is made of holds no secret of the rule.
	minSecret int
	// gate says which words a match holds and how far it reaches from
	// them (see window.go).
	gate *gate
	// lead is the most bytes a match starts before the first byte of the
	// gate word it holds, on the same line; unbounded when a match can
	// start anywhere earlier on that line.
	lead int

	// Set by prepare for a rule tried anchored: the bytes that are a
	// match on their own, the bytes that can follow each first byte of a
	// match, and re anchored at the start of the text, without and with
	// the byte before the match.
	one            byteSet
	second         [256]byteSet
	anchored, ctxd *regexp.Regexp
	// And for a rule with minSecret: the bytes its secret group is a run
	// of, if it is one.
	secretBytes *byteSet
}

// unbounded is a rule's lead when a match can start anywhere before its
// gate word on the word's line.
const unbounded = -1

// keyWords are credential names. A key matches when it ends in one of them
// ("db_password", "X-Api-Key", "client_secret"), that is when the word is
// followed by a separator; "tokens=3" and "token_type=bearer" do not match.
const keyWords = `(?:password|passwd|passphrase|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?)`

// schemeWords are the HTTP authentication schemes kept in front of a
// redacted credential, and authSchemes matches one of them.
var (
	schemeWords = []string{"bearer", "basic", "token", "digest", "negotiate", "ntlm", "aws4-hmac-sha256", "apikey", "sso-key"}
	authSchemes = `(?:` + strings.Join(schemeWords, "|") + `)`
)

// linkWords may stand between a credential word and its value ("the
// secret is ...").
var linkWords = []string{"is", "was", "of", "for"}

var schemeRE = regexp.MustCompile(`(?i)^` + authSchemes + `$`)

// notAScheme: the value after "Authorization:" is the credential, not the
// scheme word left alone when what follows is a placeholder ("Bearer
// <secret>").
func notAScheme(s string) bool { return !schemeRE.MatchString(s) }

// value alternatives after a credential key: a double- or single-quoted
// string (escapes allowed) keeps its quotes; an unquoted value runs to the
// next space or delimiter.
const (
	dquoted  = `"((?:[^"\\\r\n]|\\.)*)"`
	squoted  = `'((?:[^'\\\r\n]|\\.)*)'`
	unquoted = `(` + markerRE + `|[^\s"'&,;{}()<>\[\]]+)`
)

// credentialGate is the gate of the two rules that start at a credential
// word. Each of keyWords and of the high-entropy rule's words holds one of
// these ("password" and "passwd" hold "passw", "api_key" holds "key").
// A credential pair reaches 2 lines past its word's ("password\n=\nx"),
// a high-entropy string 3 ("token\nis\n=\nx").
var credentialGate = newGate(3, "passw", "passphrase", "secret", "token", "key", "credential")

// The rules. Each comment ends with the reach of a match (see window.go):
// the gate word it holds, its lead (how far before that word it can
// start) and the lines it can reach past the word's.
var rules, gates = prepare([]rule{
	{
		// PEM private keys, whole; an unterminated block (a cut line) is
		// redacted to the end of the text. Reach: anywhere, so it is
		// matched on the whole text (its literal start makes that cheap).
		name: "private key block",
		gate: newGate(wholeText, "private key"),
		lead: unbounded,
		re:   regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----|\z)`),
	},
	{
		// Authorization: Bearer x / Basic x / any scheme, in headers, Go
		// header maps (Authorization:[Bearer x]) and JSON. A placeholder
		// ("Bearer <secret>", as confirmation prompts show a header) is
		// not a credential. Reach: "authorization", lead 6 ("proxy-"), 3
		// lines ("Authorization\n:\n[Bearer\nx").
		name:   "authorization header",
		gate:   newGate(3, "authorization"),
		lead:   len("proxy-"),
		re:     regexp.MustCompile(`(?i)\b(?:proxy-)?authorization["']?\s*[:=]\s*\[?["']?(?:` + authSchemes + `\s+)?(` + markerRE + `|[^\s"',;\]<][^\s"',;\]]*)`),
		groups: []int{1},
		check:  notAScheme,
	},
	{
		// A bearer token on its own: "Bearer eyJ...", "bearer=..." is the
		// key rule's. Reach: "bearer", lead 0, 1 line ("Bearer\nx").
		name:   "bearer token",
		gate:   newGate(1, "bearer"),
		lead:   0,
		re:     regexp.MustCompile(`\b[Bb]earer\s+([A-Za-z0-9\-._~+/]{8,}=*)(?:[\s"',;\]]|\z)`),
		groups: []int{1},
		check:  tokenish,
	},
	{
		// key=value, key: value, "key": "value", key='value'. A quoted
		// value keeps its quotes. Reach: a credential word, lead 8
		// ("private_" before "key"), 2 lines ("password\n=\nx").
		name:   "credential pair",
		gate:   credentialGate,
		lead:   len("private_"),
		re:     regexp.MustCompile(`(?i)` + keyWords + `["']?\s*[:=]\s*(?:` + dquoted + `|` + squoted + `|` + unquoted + `)`),
		groups: []int{1, 2, 3},
	},
	{
		// scheme://user:password@host keeps the user. Reach: "://", lead
		// unbounded (the scheme), the line only.
		name:   "URL password",
		gate:   newGate(0, "://"),
		lead:   unbounded,
		re:     regexp.MustCompile(`\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:(` + markerRE + `|[^/\s@]+)@`),
		groups: []int{1},
	},
	{
		// The vendor tokens below are one word each: reach the word they
		// start with (lead 0 unless said), the line only.
		name: "AWS access key id",
		gate: newGate(0, "akia", "asia", "abia", "acca"),
		re:   regexp.MustCompile(`\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b`),
	},
	{
		name: "GitHub token",
		gate: newGate(0, "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
		re:   regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]+|github_pat_[A-Za-z0-9_]+)\b`),
		check: func(s string) bool {
			if strings.HasPrefix(s, "github_pat_") {
				return len(s) >= len("github_pat_")+22
			}
			return len(s) >= len("ghp_")+36
		},
	},
	{
		name:  "Slack token",
		gate:  newGate(0, "xox", "xapp-"),
		re:    regexp.MustCompile(`\b(?:xox[abposrce]|xapp)-[A-Za-z0-9-]+`),
		check: func(s string) bool { return len(s) >= len("xoxb-")+10 },
	},
	{
		// OpenAI (sk-..., sk-proj-..., sk-svcacct-...) and Anthropic
		// (sk-ant-api03-...) API keys, and Stripe's secret and restricted
		// keys (sk_live_..., rk_test_...). Lead 1: "k_live_" is after
		// the "s" or "r".
		name:  "model or payment API key",
		gate:  newGate(0, "sk-", "k_live_", "k_test_"),
		lead:  1,
		re:    regexp.MustCompile(`\b(?:sk-[A-Za-z0-9_-]{20,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,})`),
		check: tokenishDigits,
	},
	{
		name: "GitLab token",
		gate: newGate(0, "glpat-"),
		re:   regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`),
	},
	{
		name: "Google API key",
		gate: newGate(0, "aiza"),
		re:   regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}\b`),
	},
	{
		name: "Slack webhook",
		gate: newGate(0, "hooks.slack.com"),
		re:   regexp.MustCompile(`hooks\.slack\.com/services/[A-Za-z0-9/_-]+`),
	},
	{
		name: "JWT",
		gate: newGate(0, "eyj"),
		re:   regexp.MustCompile(`\beyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`),
	},
	{
		// A long random-looking string after a credential word without a
		// separator: "using token 9fQ2...", "secret is Zm9v...". Reach: a
		// credential word, lead 3 ("api" before "key"), 3 lines
		// ("token\nis\n=\nx").
		name:      "high-entropy string after a credential word",
		gate:      credentialGate,
		lead:      len("api"),
		minSecret: minRandom,
		re:        regexp.MustCompile(`(?i)\b(?:key|token|secret|password|passwd|credential|apikey)s?(?:\s+(?:` + strings.Join(linkWords, "|") + `))?\s*[=:]?\s*["']?([A-Za-z0-9+/_.=~-]+)`),
		groups:    []int{1},
		check:     looksRandom,
	},
})

// maxPasses bounds the passes to a fixed point. One pass nearly always is
// one; the second confirms nothing is left.
const maxPasses = 4

// Redact returns s with every secret it recognises replaced by Marker.
func Redact(s string) string {
	for range maxPasses {
		out := pass(s)
		if out == s {
			return out
		}
		s = out
	}
	return s
}

type span struct{ start, end int }

// pass finds the secrets of every rule in s and replaces each maximal run
// of overlapping secrets with one Marker.
func pass(s string) string {
	sc := scratchPool.Get().(*scratch)
	defer sc.release()
	spans := sc.find(s)
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	last := 0 // end of what has been written
	for i := 0; i < len(spans); {
		cur := spans[i]
		for i++; i < len(spans) && spans[i].start <= cur.end; i++ {
			cur.end = max(cur.end, spans[i].end)
		}
		b.WriteString(s[last:cur.start])
		b.WriteString(Marker)
		last = cur.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// add records the secret of match m of rule r in s, m being the submatch
// indices of r.re in s.
func (sc *scratch) add(r *rule, s string, m []int) {
	sp := secret(m, r.groups)
	if sp.start < 0 || sp.end <= sp.start {
		return
	}
	if r.check != nil && !r.check(s[sp.start:sp.end]) {
		return
	}
	// A secret that reaches into an existing marker takes all of it; one
	// that is just a marker (or part of one) is done.
	markers := sc.markers
	first, _ := slices.BinarySearchFunc(markers, sp.start, func(mk span, at int) int { return cmp.Compare(mk.end, at+1) })
	for _, mk := range markers[first:] {
		if mk.start >= sp.end {
			break
		}
		sp.start, sp.end = min(sp.start, mk.start), max(sp.end, mk.end)
	}
	if s[sp.start:sp.end] == Marker {
		return
	}
	sc.spans = append(sc.spans, sp)
}

// tokenish reports whether s looks like a credential rather than a word:
// it has a digit, a symbol, or both upper and lower case letters.
func tokenish(s string) bool {
	var lower, upper bool
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= 'A' && c <= 'Z':
			upper = true
		default:
			return true
		}
	}
	return lower && upper
}

// tokenishDigits reports whether s mixes letters and digits, as generated
// keys do and hyphenated words ("sk-learn-pipeline-stage") do not.
func tokenishDigits(s string) bool {
	var letter, digit bool
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letter = true
		}
	}
	return letter && digit
}

// secret returns the span of the first of groups that took part in match m,
// or of the whole match when there are no groups.
func secret(m []int, groups []int) span {
	if len(groups) == 0 {
		return span{m[0], m[1]}
	}
	for _, g := range groups {
		if m[2*g] >= 0 {
			return span{m[2*g], m[2*g+1]}
		}
	}
	return span{-1, -1}
}

// appendMarkers appends where Marker already occurs in s to out.
func appendMarkers(out []span, s string) []span {
	for off := 0; ; {
		i := strings.Index(s[off:], Marker)
		if i < 0 {
			return out
		}
		out = append(out, span{off + i, off + i + len(Marker)})
		off += i + len(Marker)
	}
}

// minRandom is the shortest string looksRandom takes for a secret.
const minRandom = 20

// looksRandom reports whether s looks like a generated secret rather than a
// word, a path or a version: mixed letters and digits and high per-character
// entropy.
func looksRandom(s string) bool {
	if len(s) < minRandom || strings.Contains(s, Marker) {
		return false
	}
	var lower, upper, digit int
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z':
			lower++
		case c >= 'A' && c <= 'Z':
			upper++
		case c >= '0' && c <= '9':
			digit++
		}
	}
	if digit == 0 || lower+upper == 0 {
		return false
	}
	return entropy(s) >= 3.5
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	var h float64
	n := float64(len(s))
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
