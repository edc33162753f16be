package redact

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestFoldsToASCII checks what fold and the fallback's gate rely on: the
// Kelvin sign and the long s are the only runes outside ASCII that a
// case-insensitive pattern takes for an ASCII letter, and the fallback's
// lower case makes each of them that letter.
func TestFoldsToASCII(t *testing.T) {
	for r := rune(utf8.RuneSelf); r <= unicode.MaxRune; r++ {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				continue
			}
			if r != kelvin && r != longS {
				t.Errorf("%U folds to %q: windowed matching would miss it", r, f)
			}
			lower := strings.ReplaceAll(strings.ToLower(string(r)), string(longS), "s")
			if want := string(unicode.ToLower(f)); lower != want {
				t.Errorf("the fallback's lower case of %U is %q, want %q", r, lower, want)
			}
		}
	}
}

func TestLowerASCII(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	var buf []byte
	for range 2000 {
		b := make([]byte, rnd.IntN(40))
		for i := range b {
			b[i] = byte(rnd.IntN(256))
			if rnd.IntN(3) > 0 {
				b[i] &= 0x7f
			}
		}
		s := string(b)
		var ascii bool
		buf, ascii = lowerASCII(buf, s)
		want := []byte(s)
		isASCII := true
		for i, c := range want {
			if 'A' <= c && c <= 'Z' {
				want[i] = c + 'a' - 'A'
			}
			isASCII = isASCII && c < utf8.RuneSelf
		}
		if !bytes.Equal(buf, want) || ascii != isASCII {
			t.Fatalf("lowerASCII(%q) = %q, %v; want %q, %v", s, buf, ascii, want, isASCII)
		}
	}
}

// TestRuleReach checks each rule's reach against its pattern: no pattern
// matches the empty string, a windowed rule's matches cross no more lines
// than its gate allows, and a rule with a bounded lead can be anchored.
func TestRuleReach(t *testing.T) {
	for i := range rules {
		r := &rules[i]
		tree, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if r.re.MatchString("") {
			t.Errorf("%s: matches the empty string", r.name)
		}
		if r.gate.lines == wholeText {
			continue
		}
		if got := lineReach(tree); got > r.gate.lines {
			t.Errorf("%s: a match can reach %d lines past its first, its gate says %d", r.name, got, r.gate.lines)
		}
		if r.lead != unbounded && r.anchored == nil {
			t.Errorf("%s: has a lead but is not anchored: a match can start with a byte outside ASCII", r.name)
		}
		if r.minSecret > 0 && r.secretBytes == nil {
			t.Errorf("%s: has a shortest secret but its secret is not a run of ASCII bytes", r.name)
		}
		// As random as a string gets: all its bytes differ.
		if random := "aB3dE6gH9jK2mN5pQ8sT1vW4xY7zC0fR"; r.minSecret > 0 && r.check(random[:r.minSecret-1]) {
			t.Errorf("%s: check takes %q, shorter than minSecret", r.name, random[:r.minSecret-1])
		}
	}
	// The analysis itself.
	for re, want := range map[string]int{
		`a\s*b`:             1,
		`a\s*b\s*c`:         2,
		`a[ \t]*b`:          0,
		`a\s+`:              0,
		`(?:a\s+){3}b`:      3,
		`(?:a\s+){1,2}b`:    2,
		`(?:\s+a)?\s*b`:     2,
		`a(?s:.*?)b`:        infinite,
		`a(?:\s*b)*`:        infinite,
		`(?i)x["']?\s*[:=]`: 1,
	} {
		tree, err := syntax.Parse(re, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := lineReach(tree); got != want {
			t.Errorf("lineReach(%s) = %d, want %d", re, got, want)
		}
	}
}

// infinite is lineReach's answer for a pattern whose matches can cross any
// number of lines.
const infinite = 1 << 20

// lineReach returns how many non-blank lines past its first a match of re
// can reach: how often, at most, a character other than white space can
// follow a '\n' after the last such character. It tracks two states
// (0: no '\n' since the last such character; 1: one) through the pattern
// as a max-plus matrix of counts (-1: the state cannot be reached).
func lineReach(re *syntax.Regexp) int {
	m := reachOf(re)
	return max(m[0][0], m[0][1])
}

type reachMatrix [2][2]int

var noReach = reachMatrix{{-1, -1}, {-1, -1}}
var identity = reachMatrix{{0, -1}, {-1, 0}}

func (a reachMatrix) then(b reachMatrix) reachMatrix {
	out := noReach
	for i := range 2 {
		for j := range 2 {
			for k := range 2 {
				if a[i][k] >= 0 && b[k][j] >= 0 {
					out[i][j] = max(out[i][j], min(infinite, a[i][k]+b[k][j]))
				}
			}
		}
	}
	return out
}

func (a reachMatrix) or(b reachMatrix) reachMatrix {
	for i := range 2 {
		for j := range 2 {
			a[i][j] = max(a[i][j], b[i][j])
		}
	}
	return a
}

// star is any number of a: a gain on a cycle makes it infinite.
func (a reachMatrix) star() reachMatrix {
	r := identity
	for range 8 {
		next := r.or(r.then(a))
		if next == r {
			return r
		}
		r = next
	}
	for i := range 2 {
		for j := range 2 {
			if r[i][j] >= 0 {
				r[i][j] = infinite
			}
		}
	}
	return r
}

// runeReach is the matrix of one character out of those that can match.
func runeReach(newline, space, other bool) reachMatrix {
	m := noReach
	if newline {
		m[0][1], m[1][1] = 0, 0
	}
	if space {
		m[0][0], m[1][1] = 0, 0
	}
	if other {
		m[0][0], m[1][0] = 0, 1
	}
	return m
}

func classReach(ranges []rune) reachMatrix {
	in := func(c rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= c && c <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	space := in(' ') || in('\t') || in('\f') || in('\r')
	other := false
	for i := 0; i+1 < len(ranges) && !other; i += 2 {
		for c := ranges[i]; c <= ranges[i+1]; c++ {
			if !strings.ContainsRune(" \t\n\f\r", c) {
				other = true
				break
			}
		}
	}
	return runeReach(in('\n'), space, other)
}

func reachOf(re *syntax.Regexp) reachMatrix {
	switch re.Op {
	case syntax.OpNoMatch:
		return noReach
	case syntax.OpLiteral:
		m := identity
		for _, c := range re.Rune {
			cs := []rune{c, c}
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
					cs = append(cs, f, f)
				}
			}
			m = m.then(classReach(cs))
		}
		return m
	case syntax.OpCharClass:
		return classReach(re.Rune)
	case syntax.OpAnyCharNotNL:
		return runeReach(false, true, true)
	case syntax.OpAnyChar:
		return runeReach(true, true, true)
	case syntax.OpCapture:
		return reachOf(re.Sub[0])
	case syntax.OpStar:
		return reachOf(re.Sub[0]).star()
	case syntax.OpPlus:
		m := reachOf(re.Sub[0])
		return m.then(m.star())
	case syntax.OpQuest:
		return identity.or(reachOf(re.Sub[0]))
	case syntax.OpRepeat:
		sub := reachOf(re.Sub[0])
		m := identity
		for range re.Min {
			m = m.then(sub)
		}
		if re.Max < 0 {
			return m.then(sub.star())
		}
		opt := identity.or(sub)
		for range re.Max - re.Min {
			m = m.then(opt)
		}
		return m
	case syntax.OpConcat:
		m := identity
		for _, sub := range re.Sub {
			m = m.then(reachOf(sub))
		}
		return m
	case syntax.OpAlternate:
		m := noReach
		for _, sub := range re.Sub {
			m = m.or(reachOf(sub))
		}
		return m
	default: // empty-width assertions, the empty match
		return identity
	}
}

// TestRuleReachOnSamples checks the comments of the rules table on matches
// made from the patterns themselves: each match holds a gate word on its
// first line no more than its lead after its start, starts with bytes
// mayStart lets through, reaches no more lines than its gate allows, and
// leaves each line on a token the windows let it leave on.
func TestRuleReachOnSamples(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range rules {
		r := &rules[i]
		if r.gate.lines == wholeText {
			continue
		}
		tree, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for range 3000 {
			var b strings.Builder
			b.WriteString(noise(rnd))
			generate(tree, rnd, &b)
			b.WriteString(noise(rnd))
			s := b.String()
			if strings.ContainsRune(s, kelvin) || strings.ContainsRune(s, longS) {
				continue // matched whole
			}
			lower, _ := lowerASCII(nil, s)
			for _, m := range r.re.FindAllStringIndex(s, -1) {
				found++
				if r.anchored != nil && !r.mayStart(s, m[0], m[1]) {
					t.Fatalf("%s: match %q in %q starts with bytes mayStart rules out", r.name, s[m[0]:m[1]], s)
				}
				if msg := checkReach(r, s, lower, m[0], m[1]); msg != "" {
					t.Fatalf("%s: match %q in %q: %s", r.name, s[m[0]:m[1]], s, msg)
				}
			}
		}
		if found < 1000 {
			t.Errorf("%s: only %d matches in the samples", r.name, found)
		}
	}
}

func checkReach(r *rule, s string, lower []byte, start, end int) string {
	ls := bytes.LastIndexByte(lower[:start], '\n') + 1
	word := -1
	for _, w := range r.gate.words {
		for q := start; q+len(w) <= min(end, lineEnd(s, start)); q++ {
			if bytes.HasPrefix(lower[q:], w) && (r.lead == unbounded || q-start <= r.lead) {
				word = q
			}
		}
	}
	if word < 0 {
		return fmt.Sprintf("no gate word on its first line within %d bytes of its start", r.lead)
	}
	lines := 0
	for first := true; ; first = false {
		le := lineEnd(s, ls)
		if le >= end || strings.TrimLeft(s[le+1:end], " \t\n\f\r") == "" {
			break // the match has nothing past this line
		}
		if ts, te := lastToken(s, ls, le); ts < te {
			holds := false
			for _, w := range r.gate.words {
				holds = holds || first && bytes.Contains(lower[ts:te], w)
			}
			if !holds && !connecting(lower[ts:te]) {
				return fmt.Sprintf("goes on past the line %q", s[ls:le])
			}
		}
		ls = le + 1
		if strings.TrimLeft(s[ls:min(lineEnd(s, ls), end)], " \t\f\r") != "" {
			lines++
		}
	}
	if lines > r.gate.lines {
		return fmt.Sprintf("reaches %d lines, its gate says %d", lines, r.gate.lines)
	}
	return ""
}

// pool is what generated text is made of where a pattern leaves a choice.
var pool = []rune("abcxyzABCXYZ0123456789-_./+=~:@&,;{}()<>[]\"'\\ \t\n\n\r\f\vµé’İ" + string(kelvin) + string(longS))

// generate writes to b a string that re may match: its literals (in a
// random case where it folds case, rarely as the Kelvin sign or the long
// s), a character of each class, a few repeats.
func generate(re *syntax.Regexp, rnd *rand.Rand, b *strings.Builder) {
	switch re.Op {
	case syntax.OpLiteral:
		for _, c := range re.Rune {
			if re.Flags&syntax.FoldCase != 0 {
				orbit := []rune{c}
				for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
					if f < utf8.RuneSelf || rnd.IntN(30) == 0 {
						orbit = append(orbit, f)
					}
				}
				c = orbit[rnd.IntN(len(orbit))]
			}
			b.WriteRune(c)
		}
	case syntax.OpCharClass:
		b.WriteRune(pick(re.Rune, rnd))
	case syntax.OpAnyCharNotNL:
		b.WriteRune(pick([]rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune}, rnd))
	case syntax.OpAnyChar:
		b.WriteRune(pick([]rune{0, unicode.MaxRune}, rnd))
	case syntax.OpCapture:
		generate(re.Sub[0], rnd, b)
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		lo, hi := 0, 3
		switch re.Op {
		case syntax.OpPlus:
			lo = 1
		case syntax.OpQuest:
			hi = 1
		case syntax.OpRepeat:
			lo, hi = re.Min, re.Min+2
			if re.Max >= 0 {
				hi = min(hi, re.Max)
			}
		}
		for range lo + rnd.IntN(hi-lo+1) {
			generate(re.Sub[0], rnd, b)
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			generate(sub, rnd, b)
		}
	case syntax.OpAlternate:
		generate(re.Sub[rnd.IntN(len(re.Sub))], rnd, b)
	}
}

// pick returns a rune of the class ranges, mostly one of pool.
func pick(ranges []rune, rnd *rand.Rand) rune {
	in := func(c rune) bool {
		for i := 0; i+1 < len(ranges); i += 2 {
			if ranges[i] <= c && c <= ranges[i+1] {
				return true
			}
		}
		return false
	}
	for range 30 {
		if c := pool[rnd.IntN(len(pool))]; in(c) {
			return c
		}
	}
	i := 2 * rnd.IntN(len(ranges)/2)
	return ranges[i] + rune(rnd.IntN(int(min(ranges[i+1]-ranges[i]+1, 100))))
}

// TestWindowedMatchesWholeText compares Redact with the whole-text
// reference on generated text: log lines, JSON, headers and credentials
// split across lines, blank lines, CRLF, long lines, many gate words,
// text outside ASCII, and matches made from the patterns themselves.
func TestWindowedMatchesWholeText(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	n := 3000
	if testing.Short() || raceDetector {
		n = 300
	}
	for i := range n {
		s := corpusText(rnd, 1+rnd.IntN(40))
		if i%300 == 0 {
			s = corpusText(rnd, 200) // long
		}
		if got, want := Redact(s), referenceRedact(s); got != want {
			t.Fatalf("Redact(%q)\n  = %q\nwhole text gives\n    %q", s, got, want)
		}
	}
}

// TestWindowedLogs compares Redact with the reference on a 10 KiB log that
// has a credential on a few of its lines, in every shape.
func TestWindowedLogs(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	logs := strings.SplitAfter(authLogs(10<<10), "\n")
	n := 40
	if testing.Short() || raceDetector {
		n = 5
	}
	for range n {
		lines := slices.Clone(logs)
		for range 1 + rnd.IntN(5) {
			at := rnd.IntN(len(lines))
			lines[at] = strings.TrimSuffix(lines[at], "\n") + sep(rnd) + corpusText(rnd, 3) + "\n"
		}
		s := strings.Join(lines, "")
		if got, want := Redact(s), referenceRedact(s); got != want {
			t.Fatalf("Redact differs from the whole-text reference on\n%s\n got %q\nwant %q", s, got, want)
		}
	}
}

// TestWindowedCases are the shapes the windows are cut for, each compared
// with the reference and with the answer it must have.
func TestWindowedCases(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"token\nis\n=\n" + randomish, "token\nis\n=\n[REDACTED]"},
		{"token\r\n\r\n  is \r\n\t= \r\n" + randomish + "\r\n", "token\r\n\r\n  is \r\n\t= \r\n[REDACTED]\r\n"},
		{"Authorization:\n[Bearer\nabc123def456]", "Authorization:\n[Bearer\n[REDACTED]]"},
		{"Proxy-Authorization\n=\n\"Basic\n\nZm9vOmJhcg==\"", "Proxy-Authorization\n=\n\"Basic\n\n[REDACTED]\""},
		{"Authorization:\n[Basic\nZm9v]", "Authorization:\n[Basic\n[REDACTED]]"},
		{"Authorization =[\"Digest\n\tx1\"]", "Authorization =[\"Digest\n\t[REDACTED]\"]"},
		{"password\n:\n  hunter2 next", "password\n:\n  [REDACTED] next"},
		{"path=/oauth/token status=200\npassword=x\n", "path=/oauth/token status=200\npassword=[REDACTED]\n"},
		{"calling bearer\n" + "Zm9vYmFyMTIz\nok", "calling bearer\n[REDACTED]\nok"},
		{"x=1 token status=200\n" + randomish, "x=1 token status=200\n" + randomish},
		{"a api_key b\n=\nc", "a api_key b\n=\nc"},
		{"private_key=\n" + randomish, "private_key=\n[REDACTED]"},
		{"é token " + randomish + " µs", "é token [REDACTED] µs"},
		// The long s is an s to (?i): the first version missed this one.
		{"pa\u017f\u017fword=hunter2", "pa\u017f\u017fword=[REDACTED]"},
		{"api\u212aey=hunter2", "api\u212aey=[REDACTED]"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
		if ref := referenceRedact(tc.in); ref != tc.want {
			t.Errorf("reference(%q) = %q, want %q", tc.in, ref, tc.want)
		}
	}
}

// corpusText is n random pieces of text joined by random separators.
func corpusText(rnd *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(piece(rnd))
		b.WriteString(sep(rnd))
	}
	return b.String()
}

var (
	credentialKeys = []string{"password", "Password", "PASSWD", "passphrase", "secret", "client_secret", "token", "Token", "tokens",
		"api_key", "API-KEY", "apikey", "access_key", "accesskey", "private_key", "private-key", "credential", "credentials",
		"key", "keys", "X-Api-Key", "DB_PASSWORD", "id_token", "/oauth/token", "secret_name"}
	connectors = []string{"=", ":", "[", "\"", "'", ":[", "=\"", ":\"", "=[\"", "is", "was", "of", "for", "is=", "for:", "IS"}
	values     = []string{"hunter2", "x", "[REDACTED]", "\"a b\"", "'q'", "\"[REDACTED]\"", "status=200", "1234", "<secret>", "abc123def456",
		randomish, ghToken, ghPAT, slackBot, slackApp, awsKeyID, jwt, openAIKey, openAIOld, anthropic, stripeKey, gitlabPAT, googleKey, slackUser}
	noiseWords = []string{"the", "ok", "duration_ms=51", "level=info", "msg=\"request\"", "method=POST", "GET", "{", "}", "\"user\":\"bob\",",
		"…", "µs", "é", "İ", "\xff", "\xe2\x84", "-", "sk-", "eyJ", "gh", "AKIA", "://", "@"}
)

func piece(rnd *rand.Rand) string {
	if rnd.IntN(100) == 0 {
		return strings.Repeat(noiseWords[rnd.IntN(len(noiseWords))]+" ", 50+rnd.IntN(300)) // a long line
	}
	switch rnd.IntN(12) {
	case 0, 1:
		return credentialKeys[rnd.IntN(len(credentialKeys))]
	case 2:
		return connectors[rnd.IntN(len(connectors))]
	case 3, 4:
		return values[rnd.IntN(len(values))]
	case 5:
		return []string{"Authorization", "authorization", "Proxy-Authorization", "\"Authorization\"", "Bearer", "bearer", "Basic", "token", "sso-key",
			"Authorization:[Bearer", "[Basic", "\"Digest", ":[NTLM", "=['Negotiate", "[aws4-hmac-sha256"}[rnd.IntN(15)]
	case 6:
		if rnd.IntN(20) == 0 {
			return []string{string(kelvin), string(longS), "to" + string(kelvin) + "en", "pa" + string(longS) + "sword"}[rnd.IntN(4)]
		}
		return noiseWords[rnd.IntN(len(noiseWords))]
	case 7:
		return fmt.Sprintf("ts=2026-11-27T10:00:%02d.000Z level=info msg=\"request\" method=POST path=/oauth/token status=200 duration_ms=%d", rnd.IntN(60), rnd.IntN(99))
	case 8:
		return []string{`{"password":"hu\"nter2","token": 123}`, `{"Authorization":"Bearer abc123def456"}`, "postgres://app:s3cr3t@db:5432/x",
			"https://user:[REDACTED]@host", "https://hooks.slack.com/services/T0/B0/XX", privateKey, "-----BEGIN " + "PRIVATE KEY-----\nabc"}[rnd.IntN(7)]
	default:
		r := &rules[rnd.IntN(len(rules))]
		tree, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			panic(err)
		}
		var b strings.Builder
		generate(tree, rnd, &b)
		return b.String()
	}
}

func sep(rnd *rand.Rand) string {
	return []string{" ", " ", "", "\n", "\n", "\r\n", "\n\n", " \n \n", "\t", "=", ":", "\n\f\n", "\v", "\n\r\n"}[rnd.IntN(14)]
}

// noise is a little text around a generated match.
func noise(rnd *rand.Rand) string {
	return []string{"", " ", "\n", "x", "a ", "é ", "=", "\n\n", "_", "line\n", " ok", "://", "token "}[rnd.IntN(13)]
}

func FuzzRedactMatchesWholeText(f *testing.F) {
	for _, s := range []string{
		"token\nis\n=\n" + randomish,
		"Authorization:\n[Bearer\nabc123def456]",
		"Proxy-Authorization\r\n=\r\n\"Basic\r\n\r\nZm9vOmJhcg==\"",
		"password\n:\n  hunter2 next",
		"path=/oauth/token status=200\npassword=x\n",
		"calling bearer\nZm9vYmFyMTIz\nok",
		"api_key\n=\n[REDACTED]",
		"pa\u017f\u017fword=hunter2 \u212aey=x",
		"é token " + randomish + " µs",
		"x\xfftoken=\xe2\x84\xaa",
		"ta" + "sk-" + "0123456789" + "abcdefghijklmnop " + "sk-" + "0123456789" + "abcdefghij1",
		"GH=" + ghPAT + "\n" + ghToken,
		"postgres://app:s3cr3t@db\nhttps://u:p@h",
		"headers=map[Authorization:[Bearer abc123def456]] token=" + jwt,
		privateKey + "\ntoken " + randomish,
		authLogs(600),
	} {
		f.Add(s)
	}
	rnd := rand.New(rand.NewPCG(9, 10))
	for range 16 {
		f.Add(corpusText(rnd, 8))
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Redact(s)
		if want := referenceRedact(s); got != want {
			t.Fatalf("Redact(%q)\n  = %q\nwhole text gives\n    %q", s, got, want)
		}
		if again := Redact(got); again != got {
			t.Fatalf("not idempotent for %q:\n once %q\ntwice %q", s, got, again)
		}
	})
}
