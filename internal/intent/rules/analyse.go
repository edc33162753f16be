package rules

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/intent"
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

// kvHit is a value typed as key:value, key=value, --key value or deploy/x.
type kvHit struct {
	key  kvKey
	val  string // lower case
	orig string // as typed
	i    int
}

// boundNum is a number bound to the parameters whose Words stand next to
// it: "5 replicas", "rev 3", "last 50 lines", "run #118".
type boundNum struct {
	n      int
	i      int
	params []*paramInfo
	after  bool // the word follows the number: a count ("5 pods")
	word   int  // with after, the token of the counting word
}

// valueHit is an enum value (or a word for one, or for true/false) named
// in the message.
type valueHit struct {
	param *paramInfo
	value string
	weak  bool
	i     int
}

// phraseHit is a phrase of the vocabulary found in the message.
type phraseHit struct {
	ph         *phrase
	start, end int
}

// analysis is everything read from one message.
type analysis struct {
	r        *Router
	history  []intent.Turn // the thread's earlier turns, oldest first (see followup.go)
	ix       *index
	toks     []token
	info     []*wordInfo // lexicon entry per token (nil: unknown or not a word)
	question bool
	notes    []string
	markers  bool // chat-template or role markers: <|system|>, [INST], ### system
	filtered bool // names are final (after filters: "search" may be taken back as a verb)
	numbered bool // numbers are read: values are final

	names    []nameHit
	kvs      []kvHit
	window   string
	tooLong  string       // a duration longer than any window ("700w"), when no window was read
	filter   string       // free text: quoted, or introduced by a word of a free-text parameter
	filterBy []*paramInfo // the free-text parameters whose word or key introduced it (none: quoted, shaped)
	code     string       // backticked query
	values   []valueHit
	phrases  []phraseHit // cue, verb and word phrases (value phrases become values)
	bound    []boundNum
	toNum    optInt // "to N", "-> N", "x5"
	bareNums []int
	relative bool // "by 2", "add 2 replicas", "double"
	countAt  int  // token of the first number counting a change's parameter ("5 pods"), or -1
	symStart int  // first token of a symptom clause, or -1 (see symptom)
	typos    int
	// situations the message is in, for the actions that name them
	capability bool
	wellness   bool

	targetHits []nameHit // cache of targets(), once names are final
	targetsSet bool
	assigned   [][]nameVals // cache of assignNames, per action
	valued     []int8       // cache of hasValue per parameter, once numbers are read: 0 not yet, 1 yes, 2 no

	scratch, scratch2 []byte // joined's keys
}

// nameVals are the names assigned to one parameter.
type nameVals struct {
	p     *paramInfo
	names []string
}

func (r *Router) analyse(text string, ix *index) *analysis {
	lx := lex(Clean(text), r.kvKeys, r.lex)
	a := &analysis{r: r, ix: ix, toks: lx.toks, question: lx.question, countAt: -1, symStart: -1,
		info: make([]*wordInfo, len(lx.toks)), markers: promptMarkers(text)}
	a.flags()
	a.codes()
	a.durations()
	a.quotes()
	a.resolveNames()
	a.words()
	a.matchPhrases()
	a.valueWords()
	a.filters()
	a.filtered = true
	a.assigned = make([][]nameVals, len(r.cat.acts))
	a.valued = make([]int8, len(r.cat.params))
	a.numbers()
	a.numbered = true
	a.symStart = a.symptom()
	a.capability = a.capabilityQuestion()
	a.wellness = a.wellnessQuestion()
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
// to diagnose a named thing: "investigate mailer, emails aren't going
// out", "look into billing — invoices failing", "check on identity, users
// can't log in". It is -1 when there is none. Words of a symptom describe
// the trouble: their negations and change words are not the request.
func (a *analysis) symptom() int {
	open, named := false, false
	for i := range a.toks {
		if i > 0 && a.toks[i].sep {
			if open && named && !a.readCommand(i) {
				return i
			}
			return -1 // "why did web crash? show the previous pod logs": a request follows
		}
		if a.nameAt(i) {
			for _, h := range a.targets() {
				named = named || h.i == i
			}
		}
		switch w := a.word(i); {
		case a.symptomCue(i) >= 2.5 && len(a.info[i].verbs) == 0:
			open = true // investigate, diagnose, troubleshoot, why, what's wrong
		case (w == "look" || w == "dig" || w == "looking" || w == "digging") && a.isWord(i+1, "into", "at"),
			w == "check" && a.isWord(i+1, "on", "out", "into"), (w == "off" || w == "up" || w == "weird" || w == "strange") && a.isWord(i+1, "with"):
			open = true
		}
	}
	return -1
}

// readCommand reports a clause opening at i with a read verb as a command:
// "show the previous pod logs", "list the pods".
func (a *analysis) readCommand(i int) bool {
	for j := i; j < len(a.toks) && (j == i || !a.toks[j].sep); j++ {
		if a.toks[j].kind == tWord && preverb[a.toks[j].s] && !a.info[j].has(wRead) {
			continue
		}
		return a.info[j].has(wRead) && a.imperative(j)
	}
	return false
}

// symptomCue is the word's cue for actions that read symptoms.
func (a *analysis) symptomCue(i int) float32 {
	var m float32
	if wi := a.info[i]; wi != nil {
		for _, c := range wi.cues {
			if c.act.situations[sSymptom] > 0 {
				m = max(m, c.w)
			}
		}
	}
	return m
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
			t.used = true
			if k, ok := a.r.kvKeys[t.s]; ok {
				a.setKV(k, t.val, t.orig, i)
			}
		case tFlag:
			t.used = true
			k, ok := a.r.kvKeys[t.s]
			if !ok {
				continue
			}
			if k.boolFlag() && !a.boolWordAt(i+1) {
				a.setKV(k, "true", "true", i) // "-p", "--previous": a switch, set by being there
				continue
			}
			if i+1 >= len(a.toks) {
				continue
			}
			nt := &a.toks[i+1]
			switch nt.kind {
			case tWord, tNum, tQuote:
				val := nt.s
				if nt.kind == tNum {
					val = strconv.Itoa(nt.n)
				}
				a.setKV(k, val, nt.orig, i+1)
				nt.used = true
			}
		}
	}
}

// boolWordAt reports true or false written at i ("--previous false").
func (a *analysis) boolWordAt(i int) bool {
	switch a.word(i) {
	case "true", "false", "yes", "no", "on", "off":
		return true
	}
	return false
}

func (a *analysis) setKV(k kvKey, val, orig string, i int) {
	for _, h := range a.kvs {
		if h.key.same(k) {
			return // the first one given counts
		}
	}
	a.kvs = append(a.kvs, kvHit{key: k, val: val, orig: orig, i: i})
	for _, p := range k.params {
		if p.freeText && a.filter == "" {
			a.filter, a.filterBy = orig, textParams(k.params) // case kept: grep=OOMKilled
		}
	}
}

// kvFor returns the key:value given for a parameter: by its name or one of
// its words, else by a key of its inventory or type ("-n" for a namespace,
// "svc/x" for a service, "since" for a window).
func (a *analysis) kvFor(p *paramInfo) (kvHit, bool) {
	for _, h := range a.kvs {
		for _, q := range h.key.params {
			if q == p {
				return h, true
			}
		}
	}
	for _, h := range a.kvs {
		if h.key.slot != slotNone && h.key.slot.fits(p) {
			return h, true
		}
	}
	return kvHit{}, false
}

// kvSlot returns the key:value given for a generic slot.
func (a *analysis) kvSlot(s slot) (kvHit, bool) {
	for _, h := range a.kvs {
		if h.key.slot == s {
			return h, true
		}
	}
	return kvHit{}, false
}

// codes takes the first backticked query.
func (a *analysis) codes() {
	for i := range a.toks {
		t := &a.toks[i]
		if t.kind == tCode {
			t.used = true
			if a.code == "" {
				a.code = t.orig
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
			if wi := a.r.lex[t.s]; wi != nil && len(wi.values) > 0 || httpCode(t.s) {
				continue // "500s" are errors, not eight minutes
			}
			if dd, ok := a.r.compactDuration(t.s); ok {
				if secondsUnit(t.s) && strength == 0 || dd < time.Minute && a.valueBefore(i) {
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
		if d > maxWindow {
			// "700w" is no window a backend takes: kept aside, so a read
			// says it ignored it and a change's validation refuses it
			for k := i; k < i+span && k < len(a.toks); k++ {
				a.toks[k].used = true
			}
			if a.tooLong == "" {
				a.tooLong = action.FormatDuration(d)
			}
			i += span - 1
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
	if h, ok := a.kvSlot(slotWindow); ok {
		if d, ok := a.r.compactDuration(h.val); ok && d >= time.Second && d <= maxWindow {
			a.window = action.FormatDuration(d)
		}
	}
	for _, h := range a.kvs {
		for _, p := range h.key.params {
			if p.is(action.Duration) {
				if d, ok := a.r.compactDuration(h.val); ok && d >= time.Second {
					a.window = action.FormatDuration(d)
				}
			}
		}
	}
}

// maxWindow is the longest duration a parameter takes (action.ParseDuration).
const maxWindow = 10 * 365 * 24 * time.Hour

// durationContext words put a following duration in a time-window role:
// 2 for "last 30m", "since 1h"; 1 for "over 30s", "in 5m".
var durationContext = map[string]int{
	"last": 2, "past": 2, "since": 2, "previous": 2, "recent": 2, "window": 2,
	"over": 1, "for": 1, "in": 1, "within": 1, "during": 1, "the": 1, "from": 1,
}

// valueBefore: a named value (a metric such as p99) just before a
// duration makes it a threshold ("p99 over 2s").
func (a *analysis) valueBefore(i int) bool {
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		if wi := a.r.lex[a.word(j)]; wi != nil && len(wi.values) > 0 {
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
	return units[w]
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
	u := units[unit]
	if u == 0 {
		return 0, false
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || f >= 1e6 {
		return 0, false
	}
	return time.Duration(f * float64(u)), true
}

// secondsUnit: "90s" may be a decade or a count; "90sec" is not.
func secondsUnit(s string) bool {
	return len(s) >= 2 && s[len(s)-1] == 's' && s[len(s)-2] >= '0' && s[len(s)-2] <= '9'
}

// quotes: a quoted inventory name is a name; other quoted text is the
// free text of the request.
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
// distinctive words of a name, then typos.
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
		if k, ok := a.ix.parts[t.s]; ok && a.kindContext(a.ix.entries[k].kinds) {
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

// kindContext reports a strong cue, in the message, of an action with a
// parameter taking names of kind k: "summarizer" stands for the suite
// summarizer-golden only when an evaluation is talked about.
func (a *analysis) kindContext(k kinds) bool {
	for _, t := range a.toks {
		wi := a.r.lex[t.s]
		if t.kind != tWord || wi == nil {
			continue
		}
		for _, c := range wi.cues {
			if c.w < 2 {
				continue
			}
			for _, p := range c.act.params {
				if p.accepts&k != 0 && p.p.Source != action.Deployments && p.p.Source != action.Services {
					return true
				}
			}
		}
	}
	return false
}

// betterAsKeyword reports whether a typo is closer to a keyword than to a name.
func (a *analysis) betterAsKeyword(w string) bool {
	_, dn, _ := a.ix.fuzzy(w)
	wm := letterMask(w)
	for _, k := range a.r.targets {
		if d, ok := closeEnoughMask(w, wm, k.w, k.mask); ok && d < dn {
			return true
		}
	}
	return false
}

// joined matches two or three adjacent words as one hyphenated name. The
// keys are built in a scratch buffer: a map lookup by string(bytes) does
// not copy them, and most attempts find nothing.
func (a *analysis) joined(i int) int {
	for n := 3; n >= 2; n-- {
		if i+n > len(a.toks) {
			continue
		}
		dash, flat := a.scratch[:0], a.scratch2[:0]
		ok := true
		for k := i; k < i+n; k++ {
			t := a.toks[k]
			if t.used || (t.kind != tWord && t.kind != tNum) || (k > i && t.sep) {
				ok = false
				break
			}
			if k > i {
				dash = append(dash, '-')
			}
			dash = append(dash, t.s...)
			flat = append(flat, t.s...)
		}
		a.scratch, a.scratch2 = dash, flat
		if !ok {
			continue
		}
		for _, key := range [2][]byte{dash, flat} {
			if idx, found := a.ix.byKey[string(key)]; found {
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
			if wi := a.r.lex["5xx"]; wi != nil {
				a.info[i] = wi
				t.s = "5xx"
			}
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
	wm := letterMask(w)
	for _, t := range a.r.targets {
		k := t.w
		d, ok := closeEnoughMask(w, wm, k, t.mask)
		if !ok {
			continue
		}
		if a.r.lex[k].has(wDanger) && (w == k+"s" || w == k+"es" || w == k+"d" || w == k+"ed") {
			continue // "emails aren't going out", "resets": a noun or a fact, not a command
		}
		if k == w+"s" || k == w+"es" {
			continue // "page" is a word of its own, not a slip for "pages"
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

// matchPhrases finds the vocabulary's phrases: a value phrase ("error
// rate", "kubectl top") takes its words; cue, verb and word phrases are
// kept for scoring and reading.
func (a *analysis) matchPhrases() {
	for i := range a.toks {
		wi := a.info[i]
		if wi == nil || len(wi.phrases) == 0 || a.toks[i].used {
			continue
		}
		for _, ph := range wi.phrases {
			if a.toks[i].used {
				break
			}
			end := a.matchElems(ph.elems, 0, i)
			if end < 0 {
				continue
			}
			if ph.kind == pValue {
				a.values = append(a.values, valueHit{param: ph.param, value: ph.value, weak: ph.weak, i: i})
				if ph.param.is(action.Bool) {
					continue // "turn on" is the verb too
				}
				for k := i; k < end; k++ {
					if a.wordIn(k, allWords(ph.elems)) {
						a.toks[k].used, a.toks[k].said = true, true
					}
				}
				continue
			}
			a.phrases = append(a.phrases, phraseHit{ph: ph, start: i, end: end})
		}
	}
}

func allWords(ph action.Phrase) []string {
	var out []string
	for _, e := range ph {
		out = append(out, e.Words...)
	}
	return out
}

// matchElems matches the elements of a phrase from el[k] at token i and
// returns the token after the match, or -1. A phrase stays in its clause.
func (a *analysis) matchElems(el action.Phrase, k, i int) int {
	for k < len(el) {
		e := el[k]
		if e.Gap {
			for j := i; j <= i+action.MaxGap && j < len(a.toks); j++ {
				if a.toks[j].sep {
					break
				}
				if end := a.matchElems(el, k+1, j); end >= 0 {
					return end
				}
			}
			return -1
		}
		if e.Optional {
			if i < len(a.toks) && !a.toks[i].sep && a.wordIn(i, e.Words) {
				if end := a.matchElems(el, k+1, i+1); end >= 0 {
					return end
				}
			}
			k++
			continue
		}
		if i >= len(a.toks) || (k > 0 && a.toks[i].sep) || !a.wordIn(i, e.Words) {
			return -1
		}
		i++
		k++
	}
	return i
}

// wordIn reports an unused word at i that is one of ws.
func (a *analysis) wordIn(i int, ws []string) bool {
	if i < 0 || i >= len(a.toks) {
		return false
	}
	t := a.toks[i]
	if t.kind != tWord || t.used {
		return false
	}
	for _, w := range ws {
		if t.s == w {
			return true
		}
	}
	return false
}

// valueWords reads enum values (and words for them, and for true and
// false) named by one word.
func (a *analysis) valueWords() {
	for i, wi := range a.info {
		if wi == nil || len(wi.values) == 0 || a.toks[i].used && !a.nameAt(i) {
			continue // a name may be a value too: "shop" the site and the deployment
		}
		for _, v := range wi.values {
			a.values = append(a.values, valueHit{param: v.param, value: v.value, weak: v.weak, i: i})
		}
	}
}

// filters reads unquoted free text: "grep timeout", "containing
// OOMKilled", "search the checkout logs for refused", "logs with deadlock".
func (a *analysis) filters() {
	a.searchVerb()
	if a.filter != "" {
		return
	}
	for i := range a.toks {
		explicit := a.introducesText(i)
		search := a.isWord(i, "search", "find", "searching") || a.isWord(i, "look", "looking") && a.isWord(i+1, "for")
		with := a.isWord(i, "with") && a.textContext(2.5)
		j := i + 1
		for j < len(a.toks) && a.isWord(j, "for", "the", "word", "text", "string", "pattern", "term", "keyword", "a", "an", "of") {
			j++
		}
		// "logs with OOMKilled", "errors like NullPointerException", "lines
		// that say timeout": a word shaped like a log token after with,
		// like or say is the text, even when it reads like a metric
		if a.isWord(i, "with", "like", "say", "says", "saying", "said", "mentioning", "containing", "matching", "including") &&
			a.textNounAnywhere() && j < len(a.toks) && !a.toks[j].used && (a.toks[j].kind == tWord || a.toks[j].kind == tNum) {
			t := a.toks[j]
			shaped := logShaped(t.orig) && a.freeWord(t.orig) && !httpCode(t.s) &&
				(t.kind == tWord || explicit)
			// after "say", a word the router knows only as an action's
			// word is still the text: "lines that say expired"
			said := a.isWord(i, "say", "says", "saying", "said") && (a.info[j] == nil || a.info[j].class == 0 && len(a.info[j].values) == 0 && textCue(a.info[j]) < 2.5)
			loose := !pronoun[t.s] && t.kind == tWord &&
				(said || a.info[j] == nil && (a.isWord(i, "like") && a.textNoun(i-1) || a.isWord(i, "with") && a.textNoun(i-1)))
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
			if explicit {
				a.filterBy = textParams(a.info[i].words)
			}
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

// textParams are the free-text parameters of ps.
func textParams(ps []*paramInfo) []*paramInfo {
	var out []*paramInfo
	for _, p := range ps {
		if p.freeText {
			out = append(out, p)
		}
	}
	return out
}

// filterFor reports the free text as a value of p: it was introduced by a
// word of p, or by nothing in particular.
func (a *analysis) filterFor(p *paramInfo) bool {
	if a.filter == "" {
		return false
	}
	if len(a.filterBy) == 0 {
		return true
	}
	for _, q := range a.filterBy {
		if q == p {
			return true
		}
	}
	return false
}

// introducesText reports a word of a free-text parameter at i: "grep",
// "containing", "matching".
func (a *analysis) introducesText(i int) bool {
	if wi := a.info[i]; wi != nil && !a.toks[i].used {
		for _, p := range wi.words {
			if p.freeText {
				return true
			}
		}
	}
	return false
}

// textContext reports an unused cue of at least w of an action with a
// free-text parameter (a log search: "logs").
func (a *analysis) textContext(w float32) bool {
	for i, wi := range a.info {
		if wi == nil || a.toks[i].used || a.logIn(i) {
			continue
		}
		for _, c := range wi.cues {
			if c.w >= w && hasFreeText(c.act) {
				return true
			}
		}
	}
	return false
}

func hasFreeText(act *actInfo) bool {
	for _, p := range act.params {
		if p.freeText {
			return true
		}
	}
	return false
}

// textNoun reports a word at i naming the lines free text is searched in:
// a cue of an action with a free-text parameter (logs, errors, exceptions)
// or a word counting them (lines, entries).
func (a *analysis) textNoun(i int) bool {
	wi := a.r.lex[a.word(i)]
	if wi == nil {
		return false
	}
	for _, c := range wi.cues {
		if hasFreeText(c.act) {
			return true
		}
	}
	for _, p := range wi.words {
		if p.is(action.Int) && hasFreeText(p.act) {
			return true
		}
	}
	return false
}

func (a *analysis) textNounAnywhere() bool {
	for i := range a.toks {
		if !a.toks[i].used && a.textNoun(i) && !a.logIn(i) {
			return true
		}
		if a.isWord(i, "stack", "traces", "trace") {
			return true
		}
	}
	return false
}

// shapedFilter: in a request for logs, a word with inner capitals, an
// underscore or a dot is text to match even without a verb: "any
// OOMKilled in the orders logs", "orders logs ECONNRESET".
func (a *analysis) shapedFilter() {
	if !a.textContext(3) {
		return
	}
	for j, t := range a.toks {
		if t.kind != tWord || t.used || !a.freeWord(t.orig) || httpCode(t.s) {
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

// freeWord reports a word that may be text to match in a log search: one
// the router does not know, or only as a cue of actions that search no
// text ("OOMKilled" is a word of kubernetes.pods, and still a log token).
func (a *analysis) freeWord(orig string) bool {
	wi := a.r.lex[strings.ToLower(orig)]
	if wi == nil {
		return true
	}
	if wi.class != 0 || wi.unit > 0 || len(wi.verbs) > 0 || len(wi.values) > 0 || len(wi.words) > 0 || len(wi.phrases) > 0 {
		return false
	}
	return textCue(wi) == 0
}

func (a *analysis) filterCandidate(j int, anyWord bool) bool {
	if j >= len(a.toks) || j < 0 {
		return false
	}
	t := a.toks[j]
	if t.used || (t.kind != tWord && t.kind != tNum) {
		return false
	}
	if wi := a.info[j]; wi != nil && (!anyWord || wi.unit > 0 || textCue(wi) >= 2.5) {
		return false
	}
	return !pronoun[t.s]
}

// textCue is the word's largest cue for an action with free text.
func textCue(wi *wordInfo) float32 {
	var m float32
	for _, c := range wi.cues {
		if hasFreeText(c.act) {
			m = max(m, c.w)
		}
	}
	return m
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

// logIn: "log in", "logged into": signing in, not logs.
func (a *analysis) logIn(i int) bool {
	if !a.isWord(i, "log", "logged", "logging", "login", "logins") {
		return false
	}
	if a.isWord(i, "login", "logins") || a.isWord(i+1, "into") {
		return true
	}
	// "users can't log in", "log in to the app" (not "what did cart log in the last hour")
	return a.isWord(i+1, "in", "on") && (i+2 >= len(a.toks) || a.toks[i+2].sep || a.isWord(i+2, "to", "with", "again", "anymore", "via", "using", "at"))
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

// targets are the name hits that stand for deployments or services.
func (a *analysis) targets() []nameHit {
	if a.targetsSet {
		return a.targetHits
	}
	out := a.findTargets()
	if a.filtered {
		a.targetHits, a.targetsSet = out, true
	}
	return out
}

func (a *analysis) findTargets() []nameHit {
	var out []nameHit
	for _, h := range a.names {
		k := h.e.kinds
		if k&(kDeployment|kService) == 0 {
			continue
		}
		if k&kNamespace != 0 && a.nsPosition(h.i) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// hasTarget reports a deployment or service named.
func (a *analysis) hasTarget() bool {
	if len(a.targets()) > 0 {
		return true
	}
	_, ok := a.kvSlot(slotDeployment)
	return ok
}

// nsPosition: a name in a namespace slot ("in prod", "prod namespace").
func (a *analysis) nsPosition(i int) bool {
	return a.isWord(i-1, "in", "on", "from", "within", "namespace", "ns") || a.isWord(i+1, "namespace", "ns", "env", "environment", "cluster")
}

// namesOf are the names of kinds k, not counting a name standing in a
// namespace position when k does not take namespaces.
func (a *analysis) namesOf(k kinds) []nameHit {
	if k&(kDeployment|kService) != 0 && k&kNamespace == 0 {
		return a.targets()
	}
	var out []nameHit
	for _, h := range a.names {
		if h.e.kinds&k == 0 {
			continue
		}
		if k == kNamespace && h.e.kinds&(kDeployment|kService) != 0 && !a.nsPosition(h.i) {
			continue
		}
		out = append(out, h)
	}
	return out
}

func (a *analysis) unknownName(j int) bool {
	if j < 0 || j >= len(a.toks) {
		return false
	}
	t := a.toks[j]
	if t.kind != tWord || t.used || a.info[j] != nil || preverb[t.s] || len(t.s) < 2 || len(t.s) > 63 {
		return false
	}
	for _, r := range t.s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}
