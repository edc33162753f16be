package rules

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tkind uint8

const (
	tWord  tkind = iota
	tNum         // a number: n
	tQuote       // quoted text: orig
	tCode        // a backticked expression that looks like a query: orig
	tKV          // key=value, key:value, --key=value, deploy/name: s=key, val, orig=value as typed
	tFlag        // --key, -n, key: (value in the next token): s=key
)

// token is one lexical unit of a message.
type token struct {
	kind tkind
	s    string // lower-case word, or the key of a KV/flag
	orig string // text as typed (case kept)
	val  string // lower-case value of a KV
	n    int    // value of a tNum
	hash bool   // "#42"
	sep  bool   // a clause boundary (, ; . ! ? newline) comes before this token
	used bool   // consumed by a slot (duration, number, filter, name)
	said bool   // consumed as a word of a value ("kubectl top" is cpu): still a word of the sentence
}

// lexed is a tokenised message.
type lexed struct {
	toks     []token
	question bool                 // the message contains a question mark
	keys     map[string]kvKey     // keys recognised in key:value and key=value forms
	lex      map[string]*wordInfo // the router's words
}

// lex tokenises cleaned segments. Code that looks like a query becomes a
// single tCode token; other code (a backticked name or kubectl command)
// is tokenised like prose.
func lex(segs []Segment, keys map[string]kvKey, words map[string]*wordInfo) lexed {
	lx := lexed{keys: keys, lex: words}
	for _, seg := range segs {
		if seg.Code && looksLikeQuery(seg.Text) {
			lx.toks = append(lx.toks, token{kind: tCode, orig: seg.Text, sep: true})
			continue
		}
		if seg.Code && strings.ContainsAny(strings.TrimSpace(seg.Text), " \t\n") && !lx.looksLikeCommand(seg.Text) {
			// backticked words are text to match: logs with `invalid token`
			lx.toks = append(lx.toks, token{kind: tQuote, orig: seg.Text, s: strings.ToLower(seg.Text)})
			continue
		}
		lx.prose(seg.Text)
	}
	lx.mergeNumberWords()
	return lx
}

func (lx *lexed) isKey(k string) bool {
	_, ok := lx.keys[k]
	return ok
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("_-./:=#%'’@+", r)
}

// prose tokenises one prose segment.
func (lx *lexed) prose(s string) {
	sep := true
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		// quoted text
		if close := closingQuote(s, i, r); close > 0 {
			body := s[i+size : close]
			_, csize := utf8.DecodeRuneInString(s[close:])
			i = close + csize
			if body = strings.TrimSpace(straightQuotes(body)); body != "" {
				lx.toks = append(lx.toks, token{kind: tQuote, orig: body, s: strings.ToLower(body), sep: sep})
				sep = false
			}
			continue
		}
		// an arrow asks for a new value: "frontend staging -> 5 replicas"
		if n := arrowAt(s, i); n > 0 {
			lx.toks = append(lx.toks, token{kind: tWord, s: arrow, orig: s[i : i+n], sep: sep})
			sep = false
			i += n
			continue
		}
		if isWordRune(r) && r != '\'' && r != '’' {
			j := i
			for j < len(s) {
				r2, s2 := utf8.DecodeRuneInString(s[j:])
				if !isWordRune(r2) || j > i && arrowAt(s, j) > 0 {
					break
				}
				j += s2
			}
			w := s[i:j]
			i = j
			if strings.Trim(w, "-") == "" && len(w) < 4 {
				sep = true // a spaced dash between clauses: "look into billing - invoices failing"
				continue
			}
			endSep := false
			for len(w) > 0 && strings.IndexByte(".:-=/#'’@+", w[len(w)-1]) >= 0 {
				if w[len(w)-1] == '.' {
					endSep = true
				}
				if w[len(w)-1] == ':' && len(w) > 1 { // "replicas: 3"
					if key := strings.ToLower(w[:len(w)-1]); lx.isKey(key) && !lx.keys[key].word {
						lx.toks = append(lx.toks, token{kind: tFlag, s: key, sep: sep})
						sep = false
						w = ""
						break
					}
				}
				w = strings.TrimSuffix(w[:len(w)-1], "’")
			}
			if w != "" {
				lx.word(w, sep)
				sep = false
			}
			if endSep {
				sep = true
			}
			continue
		}
		switch r {
		case ',', ';', '!', '\n', '.', '&', '—', '–':
			sep = true
		case '?':
			sep = true
			lx.question = true
		}
		i += size
	}
}

// arrow is the token of "->", "=>" and "→".
const arrow = "->"

// arrowAt returns the byte length of an arrow at s[i], or 0.
func arrowAt(s string, i int) int {
	switch {
	case strings.HasPrefix(s[i:], "->"), strings.HasPrefix(s[i:], "=>"):
		if i > 0 && (s[i-1] == '-' || s[i-1] == '=') {
			return 0
		}
		return 2
	case strings.HasPrefix(s[i:], "→"):
		return len("→")
	}
	return 0
}

// closingQuote returns the byte index of the quote closing one opened by r
// at s[i], or -1. Apostrophes inside words ("don't") open nothing.
func closingQuote(s string, i int, r rune) int {
	var closers string
	switch r {
	case '"', '“', '”', '„', '«':
		closers = `"”“»`
	case '\'', '‘', '’':
		if i > 0 {
			p, _ := utf8.DecodeLastRuneInString(s[:i])
			if unicode.IsLetter(p) || unicode.IsDigit(p) {
				return -1
			}
		}
		closers = "'’‘"
	default:
		return -1
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	for j := i + size; j < len(s); {
		c, cs := utf8.DecodeRuneInString(s[j:])
		if c == '\n' {
			return -1
		}
		if strings.ContainsRune(closers, c) {
			if r == '\'' || r == '‘' || r == '’' {
				// an apostrophe inside a word does not close
				if j+cs < len(s) {
					n, _ := utf8.DecodeRuneInString(s[j+cs:])
					if unicode.IsLetter(n) || unicode.IsDigit(n) {
						j += cs
						continue
					}
				}
			}
			if j-i > 400 {
				return -1
			}
			return j
		}
		j += cs
	}
	return -1
}

// word classifies one raw word and appends its tokens.
func (lx *lexed) word(w string, sep bool) {
	add := func(t token) {
		t.sep = sep
		sep = false
		lx.toks = append(lx.toks, t)
	}
	w = strings.ReplaceAll(w, "’", "'")
	lw := strings.ToLower(w)
	if !isASCII(w) {
		// lower-casing may change byte offsets; keep the two forms aligned
		w = lw
	}
	lw = strings.TrimLeft(lw, "@+'")
	w = w[len(w)-len(lw):]
	if lw == "" {
		return
	}
	// contractions: don't -> do not, what's -> what is
	if k := strings.IndexByte(lw, '\''); k > 0 {
		base, suf := lw[:k], lw[k+1:]
		switch {
		case suf == "t" && strings.HasSuffix(base, "n"):
			stem := strings.TrimSuffix(base, "n")
			switch stem {
			case "ca":
				stem = "can"
			case "wo":
				stem = "will"
			case "sha":
				stem = "shall"
			}
			if stem != "" {
				add(token{kind: tWord, s: stem, orig: stem})
			}
			add(token{kind: tWord, s: "not", orig: "not"})
			return
		case suf == "s" && base == "let": // let's -> let us
			lx.word(w[:k], sep)
			lx.toks = append(lx.toks, token{kind: tWord, s: "us", orig: "us"})
			return
		case suf == "s":
			lx.word(w[:k], sep)
			lx.toks = append(lx.toks, token{kind: tWord, s: "is", orig: "is"})
			return
		case suf == "d": // we'd need -> we would need
			lx.word(w[:k], sep)
			lx.toks = append(lx.toks, token{kind: tWord, s: "would", orig: "would"})
			return
		case suf == "re", suf == "ll", suf == "m", suf == "ve":
			lx.word(w[:k], sep)
			return
		}
		lw = strings.ReplaceAll(lw, "'", "")
		w = strings.ReplaceAll(w, "'", "")
		if lw == "" {
			return
		}
	}
	if strings.HasPrefix(lw, "-") {
		name := strings.TrimLeft(lw, "-")
		if name == "" {
			return
		}
		if k := strings.IndexByte(name, '='); k >= 0 {
			add(token{kind: tKV, s: name[:k], val: name[k+1:], orig: w[len(w)-len(name)+k+1:]})
			return
		}
		if n, ok := atoi(name); ok { // "-5": kept negative so validation rejects it
			add(token{kind: tNum, n: -n, s: lw, orig: w})
			return
		}
		add(token{kind: tFlag, s: name})
		return
	}
	if k := strings.IndexByte(lw, '='); k > 0 && k < len(lw)-1 {
		add(token{kind: tKV, s: lw[:k], val: lw[k+1:], orig: w[k+1:]})
		return
	}
	if k := strings.IndexByte(lw, ':'); k > 0 {
		key := lw[:k]
		if lx.isKey(key) && k < len(lw)-1 {
			add(token{kind: tKV, s: key, val: lw[k+1:], orig: w[k+1:]})
			return
		}
		if !isClock(lw) {
			for _, part := range strings.Split(w, ":") {
				if part != "" {
					lx.word(part, sep)
					sep = false
				}
			}
			return
		}
	}
	if k := strings.IndexByte(lw, '@'); k > 0 && k < len(lw)-1 && !strings.ContainsAny(lw, ":=/") {
		// "orders@staging": a deployment and its namespace
		lx.word(w[:k], sep)
		lx.word(w[k+1:], false)
		return
	}
	if k := strings.IndexByte(lw, '/'); k >= 0 {
		if k == 0 && len(lw) > 1 && len(lx.toks) > 0 && pathLike(lw) {
			add(token{kind: tWord, s: lw, orig: w}) // a path: "/img", "/assets/logo.png"
			return
		}
		switch lw {
		case "req/s", "reqs/s", "requests/s", "req/sec", "requests/sec", "requests/second", "r/s":
			add(token{kind: tWord, s: "rps", orig: w})
			return
		}
		prefix := lw[:k]
		rest := lw[k+1:]
		if lx.isKey(prefix) && rest != "" && !strings.Contains(rest, "/") {
			add(token{kind: tKV, s: prefix, val: rest, orig: w[k+1:]})
			return
		}
		switch prefix {
		case "po", "pod", "pods", "rs", "replicaset", "replicasets", "sts", "statefulset", "statefulsets":
			if rest != "" {
				add(token{kind: tKV, s: "deployment", val: rest, orig: w[k+1:]})
				return
			}
		}
		for _, part := range strings.Split(w, "/") {
			if part != "" {
				lx.word(part, sep)
				sep = false
			}
		}
		return
	}
	if strings.HasPrefix(lw, "#") {
		if n, ok := atoi(lw[1:]); ok {
			add(token{kind: tNum, n: n, hash: true, s: lw, orig: w})
			return
		}
		lw = strings.TrimLeft(lw, "#")
		w = w[len(w)-len(lw):]
		if lw == "" {
			return
		}
	}
	if strings.HasSuffix(lw, "%") && len(lw) > 1 {
		lx.word(w[:len(w)-1], sep)
		lx.toks = append(lx.toks, token{kind: tWord, s: "%", orig: "%"})
		return
	}
	if n, ok := atoi(lw); ok {
		add(token{kind: tNum, n: n, s: lw, orig: w})
		return
	}
	add(token{kind: tWord, s: lw, orig: w})
}

// pathLike reports a word written like a URL path: "/img", "/a/b.png".
func pathLike(s string) bool {
	letters := false
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			letters = true
		case strings.ContainsRune("/_.-*~%+", r):
		default:
			return false
		}
	}
	return letters && !strings.Contains(s, "//")
}

func isClock(s string) bool {
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r == ':') {
			return false
		}
	}
	return true
}

// atoi parses a small non-negative decimal integer.
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

var smallNumbers = map[string]int{
	"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
	"nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
	"sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "dozen": 12, "single": 1,
}

var tens = map[string]int{
	"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
	"eighty": 80, "ninety": 90,
}

// numberWord reads w as a number word ("five", "twenty-five").
func numberWord(w string) (int, bool) {
	if n, ok := smallNumbers[w]; ok {
		return n, true
	}
	if n, ok := tens[w]; ok {
		return n, true
	}
	if k := strings.IndexByte(w, '-'); k > 0 {
		t, ok1 := tens[w[:k]]
		u, ok2 := smallNumbers[w[k+1:]]
		if ok1 && ok2 && u < 10 {
			return t + u, true
		}
	}
	return 0, false
}

// mergeNumberWords turns number words into tNum tokens: "twenty five" ->
// 25, "a dozen" -> 12, "a hundred" -> 100.
func (lx *lexed) mergeNumberWords() {
	out := lx.toks[:0]
	for i := 0; i < len(lx.toks); i++ {
		t := lx.toks[i]
		if t.kind != tWord {
			out = append(out, t)
			continue
		}
		n, ok := numberWord(t.s)
		if !ok && t.s == "hundred" {
			n, ok = 100, true
		}
		if !ok {
			out = append(out, t)
			continue
		}
		if t.s == "dozen" && len(out) > 0 && out[len(out)-1].kind == tWord && out[len(out)-1].s == "a" {
			out = out[:len(out)-1]
		}
		if n >= 20 && n%10 == 0 && i+1 < len(lx.toks) && lx.toks[i+1].kind == tWord {
			if u, ok := smallNumbers[lx.toks[i+1].s]; ok && u > 0 && u < 10 {
				n += u
				i++
			}
		}
		if i+1 < len(lx.toks) && lx.toks[i+1].kind == tWord && lx.toks[i+1].s == "hundred" {
			n *= 100
			i++
		}
		out = append(out, token{kind: tNum, n: n, s: t.s, orig: t.orig, sep: t.sep})
	}
	lx.toks = out
}

// looksLikeQuery reports whether backticked code is a PromQL or LogQL
// expression rather than a name or a command.
func looksLikeQuery(code string) bool {
	c := strings.TrimSpace(code)
	if c == "" {
		return false
	}
	lc := strings.ToLower(c)
	if strings.HasPrefix(lc, "kubectl ") || strings.HasPrefix(lc, "/") {
		return false
	}
	if strings.ContainsAny(c, "{}()[]") || strings.Contains(c, "|=") || strings.Contains(c, "|~") {
		return true
	}
	// a bare metric name such as http_requests_total
	if !strings.ContainsAny(c, " \t\n") && strings.Contains(c, "_") {
		for _, r := range c {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == ':') {
				return false
			}
		}
		return true
	}
	return false
}

// looksLikeCommand reports whether backticked words are a command to read
// as prose ("kubectl rollout restart deploy/auth", "/parley eval run x"):
// kubectl or parley, or a verb or strong cue of an action first.
func (lx *lexed) looksLikeCommand(code string) bool {
	f := strings.Fields(strings.ToLower(code))
	if len(f) == 0 {
		return false
	}
	switch w := strings.TrimPrefix(f[0], "/"); w {
	case "kubectl", "k", "parley":
		return true
	default:
		wi := lx.lex[w]
		return wi != nil && (len(wi.verbs) > 0 || wi.maxCue() >= 2.5)
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
