package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// nameHit is a word resolved to an inventory name.
type nameHit struct {
	i     int // token index
	e     entry
	typed string // as typed, when it was a typo or alias
}

type optInt struct {
	n  int
	ok bool
}

func (o *optInt) set(n int) {
	if !o.ok {
		o.n, o.ok = n, true
	}
}

// analysis is everything read from one message.
type analysis struct {
	r        *Router
	ix       *index
	toks     []token
	info     []*wordInfo // lexicon entry per token (nil: unknown or not a word)
	question bool
	notes    []string

	names  []nameHit
	kv     map[string]string // slot -> value typed as key:value or a flag
	window string
	filter string
	query  string
	logQL  bool

	replicas optInt // absolute replica count
	countAt  int    // token of the first number counting replicas, or -1
	toNum    optInt // "to N"
	bareNums []int
	relative bool // "by 2", "add 2 replicas", "double"
	revision optInt
	run      optInt
	runRef   bool // an evaluation run named by number: "run #118", "results for #9"
	symStart int  // first token of a symptom clause, or -1 (see symptom)
	limit    optInt
	typos    int
	markers  bool // chat-template or role markers: <|system|>, [INST], ### system
}

func (r *Router) analyse(text string, ix *index) *analysis {
	lx := lex(Clean(text))
	a := &analysis{r: r, ix: ix, toks: lx.toks, question: lx.question, countAt: -1, symStart: -1,
		info: make([]*wordInfo, len(lx.toks)), markers: promptMarkers(text)}
	a.flags()
	a.codes()
	a.durations()
	a.quotes()
	a.resolveNames()
	a.words()
	a.filters()
	a.numbers()
	a.symStart = a.symptom()
	return a
}

// promptMarkers reports chat-template or role markers that only a prompt
// injection types: "<|system|>", "<|im_start|>", "[INST]", "<<SYS>>", "###
// system", "system:" opening a line. Markup stripping would hide them, so
// the raw text is read.
func promptMarkers(text string) bool {
	if len(text) > maxScanBytes {
		text = text[:maxScanBytes]
	}
	if !strings.ContainsAny(text, "<[#:") {
		return false
	}
	lo := strings.ToLower(text)
	for _, m := range markerStrings {
		if strings.Contains(lo, m) {
			return true
		}
	}
	for rest := lo; rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimLeft(line, " \t>*_#")
		for _, role := range []string{"system:", "system :", "assistant:", "developer:", "admin:", "root:"} {
			if strings.HasPrefix(line, role) {
				return true
			}
		}
	}
	return false
}

var markerStrings = []string{"<|", "[inst]", "[/inst]", "<<sys>>", "<</sys>>", "<system>", "</system>",
	"[system]", "### system", "###system", "### instruction", "### assistant", "## system", "<s>[", "<im_start>"}

// symptom returns the token where a symptom clause starts after a request
// to diagnose a named service: "investigate mailer, emails aren't going
// out", "look into billing — invoices failing", "check on identity, users
// can't log in". It is -1 when there is none. Words of a symptom describe
// the trouble: their negations and change words are not the request.
func (a *analysis) symptom() int {
	open, named := false, false
	for i := range a.toks {
		if i > 0 && a.toks[i].sep {
			if open && named {
				return i
			}
			return -1
		}
		if a.nameAt(i) {
			for _, h := range a.targets() {
				named = named || h.i == i
			}
		}
		switch w := a.word(i); {
		case a.info[i] != nil && a.info[i].cue[aDiagnose] >= 2.5 && a.info[i].mut == aNone:
			open = true // investigate, diagnose, troubleshoot, why, what's wrong
		case (w == "look" || w == "dig" || w == "looking" || w == "digging") && a.isWord(i+1, "into", "at"),
			w == "check" && a.isWord(i+1, "on", "out", "into"), (w == "off" || w == "up" || w == "weird" || w == "strange") && a.isWord(i+1, "with"):
			open = true
		}
	}
	return -1
}

func (a *analysis) note(format string, args ...any) {
	if len(a.notes) < 6 {
		a.notes = append(a.notes, fmt.Sprintf(format, args...))
	}
}

// word returns the lower-case word at i, or "" when it is not a word.
func (a *analysis) word(i int) string {
	if i < 0 || i >= len(a.toks) || a.toks[i].kind != tWord {
		return ""
	}
	return a.toks[i].s
}

func (a *analysis) isWord(i int, ws ...string) bool {
	w := a.word(i)
	for _, x := range ws {
		if w == x {
			return true
		}
	}
	return false
}

// flags reads kubectl flags and key:value pairs.
func (a *analysis) flags() {
	for i := range a.toks {
		t := &a.toks[i]
		switch t.kind {
		case tKV:
			slot := kvKeys[t.s]
			t.used = true
			if slot != "" {
				a.setKV(slot, t.val, t.orig)
			}
		case tFlag:
			slot := kvKeys[t.s]
			t.used = true
			if slot == "" || i+1 >= len(a.toks) {
				continue
			}
			nt := &a.toks[i+1]
			switch nt.kind {
			case tWord, tNum, tQuote:
				val := nt.s
				if nt.kind == tNum {
					val = strconv.Itoa(nt.n)
				}
				a.setKV(slot, val, nt.orig)
				nt.used = true
			}
		}
	}
}

func (a *analysis) setKV(slot, val, orig string) {
	if slot == "filter" && a.filter == "" {
		a.filter = orig // case kept: grep=OOMKilled
	}
	if a.kv == nil {
		a.kv = map[string]string{}
	}
	if _, dup := a.kv[slot]; !dup {
		a.kv[slot] = val
	}
}

// codes takes the first backticked query.
func (a *analysis) codes() {
	for i := range a.toks {
		t := &a.toks[i]
		if t.kind == tCode {
			t.used = true
			if a.query == "" {
				a.query = t.orig
				a.logQL = isLogQL(t.orig)
			}
		}
	}
}

// durations finds the time window: "30m", "last 2 hours", "past hour",
// "half an hour", "since yesterday", "--since=1h". A window typed as a
// flag or key wins; then one in a duration context ("in the last 30 min",
// "over 45s") beats a stray one. A bare "<n>s" is seconds only in such a
// context, and HTTP status counts ("502s", "404s") are never windows.
func (a *analysis) durations() {
	best := -1 // strength of the window kept
	for i := 0; i < len(a.toks); i++ {
		t := &a.toks[i]
		if t.used {
			continue
		}
		var d time.Duration
		span := 1
		if a.isWord(i-1, "above", "below", "under", "exceeding", "exceeds", "than", "at", "hits", "hitting", "reaching", "is") {
			continue // a threshold ("p99 above 2s"), not a window
		}
		strength := durationContext[a.word(i-1)]
		switch t.kind {
		case tWord:
			if wi := a.r.lex[t.s]; wi != nil && wi.metric != "" || httpCode(t.s) {
				continue // "500s" are errors, not eight minutes
			}
			if dd, ok := a.r.compactDuration(t.s); ok {
				if secondsUnit(t.s) && strength == 0 || dd < time.Minute && a.latencyBefore(i) {
					continue // "lots of 90s", "p99 over 2s": seconds only in a window context
				}
				d = dd
				break
			}
			if u := a.unitAt(i + 1); u > 0 {
				switch {
				case t.s == "a" || t.s == "an" || t.s == "one" || t.s == "past" || t.s == "last" || t.s == "previous" || t.s == "recent" || t.s == "this" || t.s == "whole" || t.s == "entire":
					d, span = u, 2
					if a.isWord(i-1, "half") {
						d /= 2
					}
					if t.s != "a" && t.s != "an" && t.s != "one" {
						strength = 2
					}
				case t.s == "half":
					d, span = u/2, 2
				default:
					if f, err := strconv.ParseFloat(t.s, 64); err == nil && f > 0 && f < 1e6 {
						d, span = time.Duration(f*float64(u)), 2
					}
				}
			} else if t.s == "half" && (a.isWord(i+1, "a") || a.isWord(i+1, "an")) {
				if u := a.unitAt(i + 2); u > 0 {
					d, span = u/2, 3
				}
			} else if t.s == "yesterday" || t.s == "overnight" {
				d = 24 * time.Hour
			}
		case tNum:
			if u := a.unitAt(i + 1); u > 0 && t.n > 0 {
				d, span = time.Duration(t.n)*u, 2
			}
		}
		if d <= 0 {
			continue
		}
		// "an hour and a half"
		if a.isWord(i+span, "and") && a.isWord(i+span+1, "a") && a.isWord(i+span+2, "half") {
			d += a.unitAt(i+span-1) / 2
			span += 3
		}
		for k := i; k < i+span && k < len(a.toks); k++ {
			a.toks[k].used = true
		}
		if d >= time.Second && strength > best {
			a.window = action.FormatDuration(d)
			best = strength
		}
		i += span - 1
	}
	if v, ok := a.kv["window"]; ok {
		if d, ok := a.r.compactDuration(v); ok && d >= time.Second {
			a.window = action.FormatDuration(d)
		}
	}
}

// durationContext words put a following duration in a time-window role:
// 2 for "last 30m", "since 1h"; 1 for "over 30s", "in 5m".
var durationContext = map[string]int{
	"last": 2, "past": 2, "since": 2, "previous": 2, "recent": 2, "window": 2,
	"over": 1, "for": 1, "in": 1, "within": 1, "during": 1, "the": 1, "from": 1,
}

// latencyBefore: a latency metric just before a duration makes it a
// threshold ("p99 over 2s").
func (a *analysis) latencyBefore(i int) bool {
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		if wi := a.r.lex[a.word(j)]; wi != nil && strings.HasPrefix(wi.metric, "latency") {
			return true
		}
	}
	return false
}

// httpCode reports an HTTP status count such as "502s", "404s" or "5xx".
func httpCode(w string) bool {
	w = strings.TrimSuffix(strings.TrimSuffix(w, "s"), "'")
	if len(w) != 3 || (w[0] != '4' && w[0] != '5') {
		return false
	}
	return w[1:] == "xx" || w[1] >= '0' && w[1] <= '9' && w[2] >= '0' && w[2] <= '9'
}

func (a *analysis) unitAt(i int) time.Duration {
	w := a.word(i)
	if w == "" || a.toks[i].used {
		return 0
	}
	if wi := a.r.lex[w]; wi != nil {
		return wi.unit
	}
	return 0
}

// compactDuration parses "30m", "1h30m", "2d" and durations glued to a
// unit word: "15min", "3hrs", "2days", "90sec", "15-min", "1.5h" (not
// "500ms": a latency, not a window).
func (r *Router) compactDuration(s string) (time.Duration, bool) {
	if len(s) < 2 || s[0] < '0' || s[0] > '9' || strings.HasSuffix(s, "ms") {
		return 0, false
	}
	switch s[len(s)-1] {
	case 's', 'm', 'h', 'd', 'w':
		if d, err := action.ParseDuration(s); err == nil {
			return d, true
		}
	}
	k := 0
	for k < len(s) && (s[k] >= '0' && s[k] <= '9' || s[k] == '.') {
		k++
	}
	num, unit := s[:k], strings.TrimPrefix(s[k:], "-")
	wi := r.lex[unit]
	if wi == nil || wi.unit == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || f >= 1e6 {
		return 0, false
	}
	return time.Duration(f * float64(wi.unit)), true
}

// secondsUnit: "90s" may be a decade or a count; "90sec" is not.
func secondsUnit(s string) bool {
	return len(s) >= 2 && s[len(s)-1] == 's' && s[len(s)-2] >= '0' && s[len(s)-2] <= '9'
}

// quotes: a quoted inventory name is a name; other quoted text is the filter.
func (a *analysis) quotes() {
	for i := range a.toks {
		t := &a.toks[i]
		if t.kind != tQuote {
			continue
		}
		if _, ok := a.ix.lookup(t.s); ok && !strings.Contains(t.s, " ") {
			t.kind = tWord
			continue
		}
		t.used = true
		if a.filter == "" {
			a.filter = t.orig
		}
	}
}

// resolveNames resolves words to inventory names: joined words
// ("intent routing" -> intent-routing), exact names, namespace aliases,
// distinctive suite words, then typos.
func (a *analysis) resolveNames() {
	for i := 0; i < len(a.toks); i++ {
		t := &a.toks[i]
		if t.used || (t.kind != tWord && t.kind != tNum) {
			continue
		}
		if n := a.joined(i); n > 0 {
			i += n - 1
			continue
		}
		if t.kind != tWord {
			continue
		}
		if e, ok := a.ix.lookup(t.s); ok {
			typed := ""
			if e.key != t.s {
				typed = t.s
			}
			a.hit(i, e, typed)
			continue
		}
		if a.r.lex[t.s] != nil {
			continue
		}
		if k, ok := a.ix.parts[t.s]; ok && a.evalWordsInText() {
			a.hit(i, a.ix.entries[k], t.s)
			continue
		}
		if e, _, ok := a.ix.fuzzy(t.s); ok && !a.betterAsKeyword(t.s) {
			a.hit(i, e, t.s)
			a.typos++
			continue
		}
		if strings.Contains(t.s, "-") { // "checkout-prod"
			parts := strings.Split(t.s, "-")
			var es []entry
			for _, p := range parts {
				if e, ok := a.ix.lookup(p); ok {
					es = append(es, e)
				}
			}
			if len(es) == len(parts) {
				for _, e := range es {
					a.hit(i, e, "")
				}
			}
		}
	}
}

// betterAsKeyword reports whether a typo is closer to a keyword than to a name.
func (a *analysis) betterAsKeyword(w string) bool {
	_, dn, _ := a.ix.fuzzy(w)
	for _, k := range a.r.targets {
		if d, ok := closeEnough(w, k); ok && d < dn {
			return true
		}
	}
	return false
}

// joined matches two or three adjacent words as one hyphenated name.
func (a *analysis) joined(i int) int {
	for n := 3; n >= 2; n-- {
		if i+n > len(a.toks) {
			continue
		}
		var dash, flat strings.Builder
		ok := true
		for k := i; k < i+n; k++ {
			t := a.toks[k]
			if t.used || (t.kind != tWord && t.kind != tNum) || (k > i && t.sep) {
				ok = false
				break
			}
			if k > i {
				dash.WriteByte('-')
			}
			dash.WriteString(t.s)
			flat.WriteString(t.s)
		}
		if !ok {
			continue
		}
		for _, key := range []string{dash.String(), flat.String()} {
			if idx, found := a.ix.byKey[key]; found {
				for k := i; k < i+n; k++ {
					a.toks[k].used = true
				}
				a.names = append(a.names, nameHit{i: i, e: a.ix.entries[idx]})
				return n
			}
		}
	}
	return 0
}

func (a *analysis) hit(i int, e entry, typed string) {
	a.toks[i].used = true
	a.names = append(a.names, nameHit{i: i, e: e, typed: typed})
	if typed != "" && typed != e.key {
		if _, alias := a.ix.aliases[typed]; alias {
			a.note("%q read as namespace %s", typed, e.canon)
		} else {
			a.note("%q read as %s", typed, e.canon)
		}
	}
}

// words looks every remaining word up in the lexicon, correcting typos.
func (a *analysis) words() {
	for i := range a.toks {
		t := &a.toks[i]
		if t.kind != tWord {
			continue
		}
		if wi := a.r.lex[t.s]; wi != nil {
			a.info[i] = wi
			continue
		}
		if t.used {
			continue
		}
		if httpCode(t.s) { // "502s": an error count
			a.info[i] = a.r.lex["5xx"]
			continue
		}
		if w, ok := a.correct(t.s); ok {
			a.info[i] = a.r.lex[w]
			a.note("%q read as %s", t.s, w)
			a.typos++
			t.s = w
			continue
		}
	}
}

// correct finds the one keyword a typo stands for.
func (a *analysis) correct(w string) (string, bool) {
	if len(w) < 4 {
		return "", false
	}
	best, bestD, tie := "", 99, false
	for _, k := range a.r.targets {
		d, ok := closeEnough(w, k)
		if !ok {
			continue
		}
		if a.r.lex[k].danger && (w == k+"s" || w == k+"es" || w == k+"d" || w == k+"ed") {
			continue // "emails aren't going out", "resets": a noun or a fact, not a command
		}
		// prefer a same-length reading (a swap or slip) over a dropped
		// letter, then one that keeps the first letter
		d *= 4
		if len(k) != len(w) {
			d += 2
		}
		if k[0] != w[0] {
			d++
		}
		switch {
		case d < bestD:
			best, bestD, tie = k, d, false
		case d == bestD && k != best:
			tie = true
		}
	}
	if best == "" || tie {
		return "", false
	}
	return best, true
}

// filters reads unquoted filters: "grep timeout", "containing OOMKilled",
// "search the checkout logs for refused", "logs with deadlock".
func (a *analysis) filters() {
	a.searchVerb()
	if a.filter != "" {
		return
	}
	for i := range a.toks {
		explicit := a.info[i] != nil && a.info[i].filterVerb
		search := a.isWord(i, "search", "find", "searching") || a.isWord(i, "look", "looking") && a.isWord(i+1, "for")
		with := a.isWord(i, "with") && a.logContext()
		j := i + 1
		for j < len(a.toks) && a.isWord(j, "for", "the", "word", "text", "string", "pattern", "term", "keyword", "a", "an") {
			j++
		}
		// "logs with OOMKilled", "errors like NullPointerException", "lines
		// that say timeout": a word shaped like a log token after with,
		// like or say is the filter, even when it reads like a metric
		if a.isWord(i, "with", "like", "say", "says", "saying", "said", "mentioning", "containing", "matching", "including") &&
			a.logNoun() && j < len(a.toks) && !a.toks[j].used && (a.toks[j].kind == tWord || a.toks[j].kind == tNum) {
			t := a.toks[j]
			shaped := logShaped(t.orig) && a.r.lex[strings.ToLower(t.orig)] == nil && !httpCode(t.s) &&
				(t.kind == tWord || a.info[i] != nil && a.info[i].filterVerb)
			loose := a.info[j] == nil && !pronoun[t.s] && t.kind == tWord &&
				(a.isWord(i, "say", "says", "saying", "said") || a.isWord(i, "like") && a.lineNoun(i-1) || a.isWord(i, "with") && a.lineNoun(i-1))
			if shaped || loose {
				a.takeFilter(j)
				return
			}
		}
		if !explicit && !search && !with {
			continue
		}
		if a.filterCandidate(j, explicit) && !(with && a.info[j] != nil) && (explicit || with || a.isWord(j-1, "for")) {
			a.takeFilter(j)
			return
		}
		if !explicit && !search {
			continue
		}
		for k := j; k < len(a.toks) && k <= j+6; k++ {
			if k > j && a.toks[k].sep {
				break
			}
			if a.isWord(k, "for") && a.filterCandidate(k+1, true) {
				a.takeFilter(k + 1)
				return
			}
		}
	}
	a.shapedFilter()
}

// shapedFilter: in a request for logs, a word with inner capitals, an
// underscore or a dot is text to match even without a verb: "any
// OOMKilled in the orders logs", "orders logs ECONNRESET".
func (a *analysis) shapedFilter() {
	if !a.logsNamed() {
		return
	}
	for j, t := range a.toks {
		if t.kind != tWord || t.used || a.r.lex[strings.ToLower(t.orig)] != nil || httpCode(t.s) {
			continue
		}
		shaped := false
		for k := 1; k < len(t.orig); k++ {
			c := t.orig[k]
			if c >= 'A' && c <= 'Z' && t.orig[0] >= 'A' && t.orig[0] <= 'Z' || c == '_' || c == '.' && k < len(t.orig)-1 {
				shaped = true
			}
		}
		if shaped && len(t.orig) >= 3 {
			a.takeFilter(j)
			return
		}
	}
}

func (a *analysis) filterCandidate(j int, anyWord bool) bool {
	if j >= len(a.toks) || j < 0 {
		return false
	}
	t := a.toks[j]
	if t.used || (t.kind != tWord && t.kind != tNum) {
		return false
	}
	if wi := a.info[j]; wi != nil && (!anyWord || wi.unit > 0 || wi.cue[aLoki] >= 2.5) {
		return false
	}
	if pronoun[t.s] {
		return false
	}
	return true
}

func (a *analysis) takeFilter(j int) {
	t := &a.toks[j]
	if lo := strings.ToLower(t.orig); t.kind == tWord && t.s != lo && a.typos > 0 {
		a.typos-- // "OOMKilled" was read as a typo of a keyword: it is text
		prefix := fmt.Sprintf("%q read as", lo)
		for k, n := range a.notes {
			if strings.HasPrefix(n, prefix) {
				a.notes = append(a.notes[:k:k], a.notes[k+1:]...)
				break
			}
		}
	}
	t.used = true
	a.info[j] = nil
	a.filter = t.orig
	// unquoted words that follow belong to the text: "with connection refused"
	for k := j + 1; k < len(a.toks) && k <= j+3 && t.kind == tWord; k++ {
		n := &a.toks[k]
		if n.kind != tWord || n.used || n.sep || a.info[k] != nil || pronoun[n.s] || a.r.lex[n.s] != nil {
			break
		}
		n.used = true
		a.filter += " " + n.orig
	}
}

// logShaped reports a word that looks like text from a log line rather
// than a word of the request: CamelCase or inner capitals (OOMKilled,
// NullPointerException, ECONNRESET), digits, dots or underscores
// (err_no_route, 0xdeadbeef, java.io.IOException).
func logShaped(w string) bool {
	if len(w) < 3 {
		return false
	}
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case i > 0 && c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.' && i > 0 && i < len(w)-1:
			return true
		}
	}
	return false
}

// logNoun reports a word naming log lines: logs, lines, errors, entries,
// exceptions, stack traces.
func (a *analysis) logNoun() bool {
	for i, wi := range a.info {
		if wi != nil && !a.toks[i].used && (wi.cue[aLoki] > 0 || wi.lineNoun) {
			return true
		}
		if a.isWord(i, "stack", "traces", "trace") {
			return true
		}
	}
	return false
}

// searchVerb: a name that is also a verb ("search") opening a message that
// names another service is the verb: "search checkout logs for timeout".
func (a *analysis) searchVerb() {
	if len(a.names) < 2 || a.names[0].i != a.firstContent() || a.names[0].e.key != "search" {
		return
	}
	i := a.names[0].i
	a.names = a.names[1:]
	a.toks[i].used = false
}

// firstContent is the index of the first token that is not a greeting or
// filler such as "please" or "hey".
func (a *analysis) firstContent() int {
	for i, t := range a.toks {
		if t.kind == tWord && preverb[t.s] {
			continue
		}
		return i
	}
	return len(a.toks)
}

func (a *analysis) logContext() bool {
	for i, wi := range a.info {
		if wi != nil && wi.cue[aLoki] >= 2.5 && !a.toks[i].used {
			return true
		}
	}
	return false
}

// numbers gives each remaining number a role from its neighbours.
func (a *analysis) numbers() {
	for _, slot := range []string{"replicas", "revision", "run", "limit"} {
		v, ok := a.kv[slot]
		if !ok {
			continue
		}
		n, isNum := atoi(v)
		if !isNum {
			if m, ok := numberWord(v); ok {
				n, isNum = m, true
			}
		}
		if !isNum {
			continue
		}
		switch slot {
		case "replicas":
			a.replicas.set(n)
		case "revision":
			a.revision.set(n)
		case "run":
			a.run.set(n)
		case "limit":
			a.limit.set(n)
		}
	}
	for i := range a.toks {
		t := &a.toks[i]
		if t.kind == tWord && !t.used && len(t.s) > 1 && t.s[0] == 'x' {
			if n, ok := atoi(t.s[1:]); ok { // "x5"
				t.used = true
				a.toNum.set(n)
			}
			continue
		}
		if t.kind == tWord && !t.used {
			if n, ok := revisionWord(t.s); ok { // "r22", "rev22", "v22" (not "v1.4.2": an image version)
				t.used = true
				a.revision.set(n)
			}
			continue
		}
		if t.kind != tNum || t.used {
			continue
		}
		t.used = true
		prev, next := a.word(i-1), a.word(i+1)
		next2 := a.word(i + 2)
		switch {
		case prev == "revision" || prev == "rev" || prev == "revisions" || (prev == "version" && !t.hash) || prev == "generation":
			a.revision.set(t.n)
		case (prev == "run" || prev == "runs") && !a.replicaNoun(i+1) && !(a.nameAt(i+1) && a.replicaNoun(i+2)) || prev == "id" || (t.hash || prev == "eval" || prev == "evaluation" || prev == "status") && a.evalWords():
			a.run.set(t.n)
			if prev == "run" || prev == "runs" {
				a.runRef = true // "is run #118 done?", "how did run 17 go"
			}
		case t.hash && !a.hasTarget() && a.evalStatusWord() && (prev == "" || a.isWord(i-1, "for", "of", "on", "about", "is", "how", "did", "would") || a.info[i-1] != nil && a.info[i-1].evalStatus):
			a.run.set(t.n) // "results for #9"
			a.runRef = true
		case t.hash:
			a.revision.set(t.n)
		case a.linesAfter(i+1) || prev == "tail" || prev == "limit" || prev == "top" || prev == "first":
			a.limit.set(t.n)
		case a.replicasAfter(i + 1):
			if a.countAt < 0 {
				a.countAt = i
			}
			if prev == "by" || a.relWord(i-1) || a.relWord(i-2) || a.relWord(i+1) || a.isWord(i+2, "more") {
				a.relative = true
			} else {
				a.replicas.set(t.n)
			}
		case prev == "by":
			a.relative = true
		case prev == arrow:
			a.toNum.set(t.n) // "frontend prod -> 5"
		case prev == "to" || prev == "at" || prev == "=" || prev == "of" && a.replicaNoun(i-2):
			a.toNum.set(t.n)
		case prev == "last" && (next == "" || next2 == ""):
			a.limit.set(t.n)
		default:
			a.bareNums = append(a.bareNums, t.n)
		}
	}
}

// linesAfter reports log lines counted by a number before i: "50 lines",
// "10 error lines", "the 10 most recent errors", "5 latest warnings".
func (a *analysis) linesAfter(i int) bool {
	for j := i; j < len(a.toks) && j < i+4; j++ {
		if a.lineNoun(j) {
			return true
		}
		if !a.levelWord(j) && !a.isWord(j, "most", "recent", "latest", "newest", "last", "new", "oldest", "earliest", "log", "logged") {
			return false
		}
	}
	return false
}

// replicasAfter reports replicas counted by a number before i: "4
// replicas", "3 more pods", "twelve checkout pods", "2 extra auth pods".
func (a *analysis) replicasAfter(i int) bool {
	if a.relWord(i) {
		i++
	}
	if a.nameAt(i) {
		i++
	}
	return a.replicaNoun(i)
}

// nameAt reports an inventory name at token i.
func (a *analysis) nameAt(i int) bool {
	for _, h := range a.names {
		if h.i == i {
			return true
		}
	}
	return false
}

func (a *analysis) lineNoun(i int) bool {
	w := a.word(i)
	wi := a.r.lex[w]
	return wi != nil && (wi.lineNoun || w == "logs" || w == "log" || w == "errors" || w == "warnings" || w == "warns" ||
		w == "exceptions" || w == "panics" || w == "stacktraces" || w == "tracebacks")
}

func (a *analysis) levelWord(i int) bool {
	wi := a.r.lex[a.word(i)]
	return wi != nil && wi.level != ""
}

func (a *analysis) replicaNoun(i int) bool {
	wi := a.r.lex[a.word(i)]
	return wi != nil && wi.replicaNoun
}

func (a *analysis) relWord(i int) bool {
	wi := a.r.lex[a.word(i)]
	return wi != nil && wi.rel
}

// revisionWord reads "r22", "rev22" and "revision22" as revision 22, and
// "v22" as version 22 (a revision, like "version 22"); "v1.4.2" is an
// image version and no revision.
func revisionWord(w string) (int, bool) {
	for _, p := range []string{"revision", "rev", "r", "v"} {
		if rest, ok := strings.CutPrefix(w, p); ok && rest != "" {
			if n, ok := atoi(strings.TrimPrefix(rest, "-")); ok {
				return n, true
			}
			return 0, false
		}
	}
	return 0, false
}

// evalStatusWord reports a word asking for results: results, score, done.
func (a *analysis) evalStatusWord() bool {
	for i, wi := range a.info {
		if wi != nil && wi.evalStatus && !a.toks[i].used || a.isWord(i, "go") && a.isWord(0, "how") {
			return true
		}
	}
	return false
}

func (a *analysis) evalWords() bool {
	if a.runRef {
		return true
	}
	for _, wi := range a.info {
		if wi != nil && wi.evalCtx {
			return true
		}
	}
	for _, h := range a.names {
		if h.e.kinds&(kSuite|kVariant) != 0 {
			return true
		}
	}
	return false
}

var pronoun = setOf(`me us it them him her you this that these those i we`)

// evalWordsInText reports an evaluation word (eval, benchmark) in the message.
func (a *analysis) evalWordsInText() bool {
	for _, t := range a.toks {
		if wi := a.r.lex[t.s]; t.kind == tWord && wi != nil && wi.evalCtx {
			return true
		}
	}
	return false
}
