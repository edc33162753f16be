package redact

// Where the rules are matched. Matching every rule's pattern over a whole
// text is what Redact did first, and what it must still give, byte for
// byte; but Go's regexp tries a case-insensitive pattern at every position
// of the text, and a 10 KiB log in which one line says "token" made every
// line pay for it. So each rule is matched only where a match can be.
//
// A gate lists words of which every match of its rules holds one, on the
// match's first line: the lower-cased text must hold a gate word for its
// rules to run at all. A rule's lead is the most bytes its match starts
// before that word; the gate's lines the most non-blank lines a match
// reaches past the word's line. The comments in the rules table give the
// reach of each, and the tests check them against the patterns' syntax.
//
// With a gate word at p, a match holding it starts in [p-lead, p], on p's
// line, and ends within the window of p's line: the line, and as long as a
// match can go on past a line, its following blank lines and next
// non-blank line, at most lines of those. A match goes on past a line only
// through a run of white space (\s: space, \t, \n, \f, \r); the token it
// leaves the line on is then the line's last, and the patterns leave a
// line only on the token that holds their gate word, or on a token made of
// ":=[\"'" around at most one word of schemeWords or linkWords
// ("Authorization:\n[Bearer\nx", "token\nis\n=\nx"). A line whose last
// token is neither ends every match on it.
//
// A rule whose lead is bounded is tried, anchored, at each position in
// [p-lead, p] whose first two bytes can start a match (known from the
// pattern's syntax), left to right, skipping what an earlier match took:
// just what FindAll over the whole text does, since no match starts
// elsewhere. The attempt sees the text from the byte before
// the position (so that \b sees what it sees in the whole text) to the
// window's end. A rule whose lead is not bounded runs FindAll over each
// window from the start of its line (overlapping windows merged). Either
// way a window ends after a '\n' or at the end of the text, and no pattern
// asks for \b or \z right after a '\n', so the cut changes no match.
//
// Positions in the lower-cased text are positions in the text only if
// lower-casing keeps every byte where it is: so only ASCII letters are
// lower-cased. Outside ASCII, a case-insensitive pattern takes just two
// runes for ASCII letters: the Kelvin sign for k and the long s for s. A
// text that holds either is matched whole, as it was, with its gate words
// looked for in its Unicode lower case (where the long s is made an s: it
// is lower case already).

import (
	"bytes"
	"encoding/binary"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// gate is what the rules that share it need: a word of words in the text,
// lower-cased, and how far past the word's line a match can reach.
type gate struct {
	words [][]byte // lower case, 2 bytes or more, no white space unless lines is wholeText
	// lines is the number of non-blank lines past the word's line that a
	// match can reach, or wholeText.
	lines int
	// Set by prepare: the rules that share the gate, and its index in
	// gates.
	rules []*rule
	index int
}

// wholeText is the lines of a gate whose rules are matched on the whole
// text.
const wholeText = -1

func newGate(lines int, words ...string) *gate {
	g := &gate{lines: lines}
	for _, w := range words {
		g.words = append(g.words, []byte(w))
	}
	return g
}

// wordIndex finds the words of every gate in one pass over a text.
type wordIndex struct {
	// pairs[a] has bit b set when a word starts with the bytes a, b.
	pairs [256][4]uint64
	// byFirst[a] are the words that start with a.
	byFirst [256][]wordRef
}

type wordRef struct {
	word []byte
	gate int
}

func indexWords(gs []*gate) *wordIndex {
	x := new(wordIndex)
	for _, g := range gs {
		for _, w := range g.words {
			x.pairs[w[0]][w[1]>>6] |= 1 << (w[1] & 63)
			x.byFirst[w[0]] = append(x.byFirst[w[0]], wordRef{w, g.index})
		}
	}
	return x
}

var words = indexWords(gates)

// Runes outside ASCII that case-insensitive patterns take for ASCII
// letters.
const (
	kelvin = '\u212a' // K
	longS  = '\u017f' // s
)

// prepare checks the rules, links each to its gate and compiles what
// anchored matching needs. It returns the rules and their gates.
func prepare(rs []rule) ([]rule, []*gate) {
	var gs []*gate
	for i := range rs {
		r := &rs[i]
		g := r.gate
		if !slices.Contains(gs, g) {
			g.index = len(gs)
			gs = append(gs, g)
		}
		g.rules = append(g.rules, r)
		for _, w := range g.words {
			if len(w) < 2 || !bytes.Equal(w, bytes.ToLower(w)) || g.lines != wholeText && bytes.ContainsFunc(w, isSpaceRune) {
				panic("redact: rule " + r.name + ": bad gate word " + string(w))
			}
		}
		if g.lines == wholeText || r.lead == unbounded {
			continue
		}
		tree, err := syntax.Parse(r.re.String(), syntax.Perl)
		if err != nil {
			panic("redact: rule " + r.name + ": " + err.Error())
		}
		if st := startsOf(tree); !st.empty && !st.wide {
			r.one = st.one
			for _, p := range st.pairs {
				for c := range 256 {
					if p.a.has(byte(c)) {
						r.second[c] = r.second[c].or(p.b)
					}
				}
			}
			if r.minSecret > 0 {
				r.secretBytes = runOf(tree, r.groups)
			}
			src, ok := unfoldedSources[r.re.String()]
			if !ok {
				src = unfold(tree).String()
			}
			r.anchored = regexp.MustCompile(`\A(` + src + `)`)
			r.ctxd = regexp.MustCompile(`\A(?s:.)(` + src + `)`)
		}
	}
	return rs, gs
}

// shortestWord is the length of the shortest gate word: a shorter text
// holds no secret.
var shortestWord = func() int {
	n := -1
	for _, g := range gates {
		for _, w := range g.words {
			if n < 0 || len(w) < n {
				n = len(w)
			}
		}
	}
	return n
}()

// scratch holds what one pass needs, reused through scratchPool.
type scratch struct {
	lower   []byte  // the text lower-cased
	occ     [][]int // where each gate's words are, ascending, by gate index
	hits    []hit   // the lines that hold a gate's words
	markers []span  // where Marker is in the text
	spans   []span  // the secrets found
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// maxKept bounds the buffers a scratch keeps for the next pass, in bytes.
const maxKept = 1 << 20

func (sc *scratch) release() {
	if cap(sc.lower) > maxKept {
		sc.lower = nil
	}
	n := cap(sc.hits)*4 + cap(sc.markers)*2 + cap(sc.spans)*2
	for _, occ := range sc.occ {
		n += cap(occ)
	}
	if n > maxKept/8 {
		sc.occ, sc.hits, sc.markers, sc.spans = nil, nil, nil, nil
	}
	scratchPool.Put(sc)
}

// find returns the secrets in s, unsorted and possibly overlapping.
func (sc *scratch) find(s string) []span {
	sc.spans = sc.spans[:0]
	if len(s) < shortestWord {
		return nil
	}
	windowed := sc.fold(s)
	if !sc.findWords() {
		return nil
	}
	sc.markers = appendMarkers(sc.markers[:0], s)
	for _, g := range gates {
		if len(sc.occ[g.index]) == 0 {
			continue
		}
		if !windowed || g.lines == wholeText {
			for _, r := range g.rules {
				for _, m := range r.re.FindAllStringSubmatchIndex(s, -1) {
					sc.add(r, s, m)
				}
			}
			continue
		}
		hits := sc.findHits(g, s)
		if len(hits) == 0 {
			continue
		}
		for _, r := range g.rules {
			if r.anchored != nil {
				sc.matchAnchored(r, s, hits)
			} else {
				sc.matchWindows(r, s, hits)
			}
		}
	}
	return sc.spans
}

// fold sets sc.lower to s lower-cased and reports whether the rules can be
// matched in windows: whether positions in sc.lower are positions in s and
// a gate word of every match is found there.
func (sc *scratch) fold(s string) bool {
	var ascii bool
	sc.lower, ascii = lowerASCII(sc.lower, s)
	if ascii || !strings.ContainsRune(s, kelvin) && !strings.ContainsRune(s, longS) {
		return true
	}
	// strings.ToLower makes the Kelvin sign a k, not the long s an s.
	sc.lower = append(sc.lower[:0], strings.ReplaceAll(strings.ToLower(s), string(longS), "s")...)
	return false
}

// lowerASCII returns s with its ASCII letters lower-cased, in dst's
// storage, and whether s is all ASCII. Eight bytes at a time: in each byte
// below 0x80, adding 0x3f sets the top bit from 'A' up and adding 0x25
// from 'Z'+1 up, without a carry into the next byte.
func lowerASCII(dst []byte, s string) ([]byte, bool) {
	const top = 0x8080808080808080
	dst = append(dst[:0], s...)
	var seen uint64
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		x := binary.LittleEndian.Uint64(dst[i:])
		seen |= x
		h := x &^ top
		upper := (h + 0x3f3f3f3f3f3f3f3f) &^ (h + 0x2525252525252525) &^ x & top
		binary.LittleEndian.PutUint64(dst[i:], x|upper>>2)
	}
	for ; i < len(dst); i++ {
		c := dst[i]
		seen |= uint64(c)
		if 'A' <= c && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	return dst, seen&top == 0
}

// findWords finds the gates' words in sc.lower and reports whether there
// is one.
func (sc *scratch) findWords() bool {
	if len(sc.occ) != len(gates) {
		sc.occ = make([][]int, len(gates))
	}
	for i := range sc.occ {
		sc.occ[i] = sc.occ[i][:0]
	}
	found := false
	lower := sc.lower
	for i := 0; i+1 < len(lower); i++ {
		a, b := lower[i], lower[i+1]
		if words.pairs[a][b>>6]&(1<<(b&63)) == 0 {
			continue
		}
		for _, ref := range words.byFirst[a] {
			occ := sc.occ[ref.gate]
			if bytes.HasPrefix(lower[i:], ref.word) && (len(occ) == 0 || occ[len(occ)-1] != i) {
				sc.occ[ref.gate] = append(occ, i)
				found = true
			}
		}
	}
	return found
}

// hit is a line that holds words of a gate.
type hit struct {
	start, end  int // the line's start and its window's end
	first, last int // the words on the line: scratch.occ[gate index][first:last]
}

// findHits returns the lines that hold words of g, in order, each with
// its window.
func (sc *scratch) findHits(g *gate, s string) []hit {
	lower := sc.lower
	occ := sc.occ[g.index]
	hits := sc.hits[:0]
	for j := 0; j < len(occ); {
		start := bytes.LastIndexByte(lower[:occ[j]], '\n') + 1
		end := lineEnd(s, occ[j])
		k := j + 1
		for k < len(occ) && occ[k] < end {
			k++
		}
		// A match goes on past the line if it leaves it on the token
		// that holds its word, or on a connecting token.
		ts, te := lastToken(s, start, end)
		goesOn := occ[k-1] >= ts || connecting(lower[ts:te])
		hits = append(hits, hit{start: start, end: reach(s, lower, end, goesOn, g.lines), first: j, last: k})
		j = k
	}
	sc.hits = hits
	return hits
}

// lineEnd returns the index of the '\n' that ends the line holding i, or
// len(s).
func lineEnd(s string, i int) int {
	if n := strings.IndexByte(s[i:], '\n'); n >= 0 {
		return i + n
	}
	return len(s)
}

// isSpace reports whether c is white space to the patterns (\s).
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func isSpaceRune(r rune) bool { return r < utf8.RuneSelf && isSpace(byte(r)) }

// lastToken returns the last run of bytes that are not white space in
// s[start:end], empty when there is none.
func lastToken(s string, start, end int) (int, int) {
	for end > start && isSpace(s[end-1]) {
		end--
	}
	ts := end
	for ts > start && !isSpace(s[ts-1]) {
		ts--
	}
	return ts, end
}

// connecting reports whether a match can leave a line on the lower-cased
// token t that does not hold its gate word: t is made of ":=[\"'" around
// at most one scheme or link word.
func connecting(t []byte) bool {
	t = bytes.Trim(t, `:=["'`)
	if len(t) == 0 {
		return true
	}
	for _, w := range schemeWords {
		if string(t) == w {
			return true
		}
	}
	for _, w := range linkWords {
		if string(t) == w {
			return true
		}
	}
	return false
}

// reach returns where the window of a line ending at end (its '\n', or
// len(s)) ends: after the line, and while a match can go on past a line
// (goesOn), after the blank lines and the non-blank line that follow it,
// at most lines non-blank lines.
func reach(s string, lower []byte, end int, goesOn bool, lines int) int {
	for ; goesOn && lines > 0 && end < len(s); lines-- {
		for start := end + 1; ; start = end + 1 {
			end = lineEnd(s, start)
			if ts, te := lastToken(s, start, end); ts < te {
				goesOn = connecting(lower[ts:te])
				break
			}
			if end == len(s) {
				return end
			}
		}
	}
	if end < len(s) {
		return end + 1
	}
	return end
}

// matchAnchored finds r's matches at the positions in front of the gate
// words in hits.
func (sc *scratch) matchAnchored(r *rule, s string, hits []hit) {
	next := 0 // the first position not tried nor taken by a match
	for j := 0; j < len(hits); {
		// The hits whose windows overlap: their matches end by end, and
		// those of the hits after them start there or later.
		k, end := j+1, hits[j].end
		for ; k < len(hits) && hits[k].start < end; k++ {
			end = max(end, hits[k].end)
		}
		group := hits[j:k]
		j = k
		if r.secretBytes != nil && !hasRun(s[group[0].start:end], r.secretBytes, r.minSecret) {
			continue // no match here can pass r.check
		}
		for _, h := range group {
			for _, p := range sc.occ[r.gate.index][h.first:h.last] {
				i := max(next, h.start, p-r.lead)
				for i <= p {
					if !r.mayStart(s, i, h.end) {
						i++
						continue
					}
					m := r.matchAt(s, i, h.end)
					if m == nil {
						i++
						continue
					}
					sc.add(r, s, m)
					i = m[1]
				}
				next = max(next, i)
			}
		}
	}
}

// hasRun reports whether s holds n bytes of set in a row.
func hasRun(s string, set *byteSet, n int) bool {
	run := 0
	for i := range len(s) {
		if !set.has(s[i]) {
			run = 0
		} else if run++; run >= n {
			return true
		}
	}
	return false
}

// mayStart reports whether a match of r can start at i and end by end,
// by its first two bytes.
func (r *rule) mayStart(s string, i, end int) bool {
	c := s[i]
	switch {
	case r.one.has(c):
		return true
	case i+1 < end:
		return r.second[c].has(s[i+1])
	}
	return false
}

// matchAt returns the submatch indices in s of r's match that starts at i
// and ends by end, nil if there is none.
func (r *rule) matchAt(s string, i, end int) []int {
	var m []int
	off := 0
	if i == 0 {
		m = r.anchored.FindStringSubmatchIndex(s[:end])
	} else {
		// The byte before i is all the patterns' assertions look at: \b
		// asks whether the rune before is an ASCII letter, digit or '_'
		// (the byte is that rune), or is any other rune (when the byte is
		// not ASCII, read alone it is an invalid rune: not a word rune
		// either). s[i] is ASCII, so (?s:.) takes just that byte.
		off = i - 1
		m = r.ctxd.FindStringSubmatchIndex(s[off:end])
	}
	if m == nil {
		return nil
	}
	m = m[2:] // the submatches of r.re
	for j, x := range m {
		if x >= 0 {
			m[j] = x + off
		}
	}
	return m
}

// matchWindows finds r's matches in the windows of hits, each from the
// start of its line.
func (sc *scratch) matchWindows(r *rule, s string, hits []hit) {
	for j := 0; j < len(hits); {
		start, end := hits[j].start, hits[j].end
		for j++; j < len(hits) && hits[j].start < end; j++ {
			end = max(end, hits[j].end)
		}
		for _, m := range r.re.FindAllStringSubmatchIndex(s[start:end], -1) {
			for k, x := range m {
				if x >= 0 {
					m[k] = x + start
				}
			}
			sc.add(r, s, m)
		}
	}
}

// runOf returns the bytes a match's secret, the first of groups, is a run
// of, or nil if it is not such a run ("([A-Za-z0-9]+)"). Outside ASCII only
// the Kelvin sign and the long s may be in the run, which windowed
// matching never meets.
func runOf(re *syntax.Regexp, groups []int) *byteSet {
	if len(groups) != 1 {
		return nil
	}
	var find func(re *syntax.Regexp) *syntax.Regexp
	find = func(re *syntax.Regexp) *syntax.Regexp {
		if re.Op == syntax.OpCapture && re.Cap == groups[0] {
			return re
		}
		for _, sub := range re.Sub {
			if c := find(sub); c != nil {
				return c
			}
		}
		return nil
	}
	c := find(re)
	if c == nil {
		return nil
	}
	rep := c.Sub[0]
	if rep.Op != syntax.OpPlus && rep.Op != syntax.OpStar && rep.Op != syntax.OpRepeat || rep.Sub[0].Op != syntax.OpCharClass {
		return nil
	}
	st := startsOfRunes(rep.Sub[0].Rune)
	if st.wide {
		return nil
	}
	return &st.one
}

// unfold returns re with each case-insensitive literal written as classes
// of the runes each of its runes folds to ("(?i)ke" as "[Kk\x{212A}][Ee]"):
// the same matches, but Go's regexp tests a class by looking it up where
// it calls unicode.SimpleFold, over and over, for a literal.
func unfold(re *syntax.Regexp) *syntax.Regexp {
	for i, sub := range re.Sub {
		re.Sub[i] = unfold(sub)
	}
	if re.Op != syntax.OpLiteral || re.Flags&syntax.FoldCase == 0 {
		return re
	}
	cat := &syntax.Regexp{Op: syntax.OpConcat}
	for _, c := range re.Rune {
		orbit := []rune{c}
		for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
			orbit = append(orbit, f)
		}
		slices.Sort(orbit)
		class := &syntax.Regexp{Op: syntax.OpCharClass}
		for _, f := range orbit {
			class.Rune = append(class.Rune, f, f)
		}
		cat.Sub = append(cat.Sub, class)
	}
	return cat
}

// byteSet is a set of bytes.
type byteSet [4]uint64

func (b *byteSet) add(c byte)      { b[c>>6] |= 1 << (c & 63) }
func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

func (b byteSet) or(o byteSet) byteSet {
	for i := range b {
		b[i] |= o[i]
	}
	return b
}

// starts is how matches of a pattern can start, in a text that holds
// neither the Kelvin sign nor the long s (windowed matching never meets
// them, so they are left out).
type starts struct {
	empty bool    // a match can be empty
	wide  bool    // a match can start with a rune outside ASCII
	first byteSet // the first byte of a match
	one   byteSet // a match of that one byte
	pairs []pair  // a match can start with a byte of a then one of b
}

type pair struct{ a, b byteSet }

// startsOfRunes is a pattern that matches one rune of the class ranges.
func startsOfRunes(ranges []rune) starts {
	var st starts
	for i := 0; i+1 < len(ranges); i += 2 {
		for c := ranges[i]; c <= min(ranges[i+1], utf8.RuneSelf-1); c++ {
			st.first.add(byte(c))
		}
		for c := max(ranges[i], utf8.RuneSelf); c <= ranges[i+1] && !st.wide; c++ {
			st.wide = c != kelvin && c != longS
		}
	}
	st.one = st.first
	return st
}

// then is x followed by y.
func (x starts) then(y starts) starts {
	st := starts{empty: x.empty && y.empty, wide: x.wide || x.empty && y.wide, first: x.first}
	second := y.first
	if y.wide { // the first byte of a rune outside ASCII
		for c := utf8.RuneSelf; c < 256; c++ {
			second.add(byte(c))
		}
	}
	st.pairs = append(slices.Clip(x.pairs), pair{x.one, second})
	if y.empty {
		st.one = x.one
	}
	if x.empty {
		st.first = st.first.or(y.first)
		st.one = st.one.or(y.one)
		st.pairs = append(st.pairs, y.pairs...)
	}
	return st
}

// or is x or y.
func (x starts) or(y starts) starts {
	return starts{empty: x.empty || y.empty, wide: x.wide || y.wide, first: x.first.or(y.first), one: x.one.or(y.one),
		pairs: append(slices.Clip(x.pairs), y.pairs...)}
}

// repeated is x once or more.
func (x starts) repeated() starts {
	y := x.then(x)
	y.one = x.one
	return y
}

// startsOf returns how matches of re can start. Where it is unsure it
// answers more than can be (\b counts as nothing, x{2,5} as x+).
func startsOf(re *syntax.Regexp) starts {
	switch re.Op {
	case syntax.OpNoMatch:
		return starts{}
	case syntax.OpLiteral:
		st := starts{empty: true}
		for _, c := range re.Rune {
			ranges := []rune{c, c}
			if re.Flags&syntax.FoldCase != 0 {
				for f := unicode.SimpleFold(c); f != c; f = unicode.SimpleFold(f) {
					ranges = append(ranges, f, f)
				}
			}
			st = st.then(startsOfRunes(ranges))
		}
		return st
	case syntax.OpCharClass:
		return startsOfRunes(re.Rune)
	case syntax.OpAnyCharNotNL:
		return startsOfRunes([]rune{0, '\n' - 1, '\n' + 1, unicode.MaxRune})
	case syntax.OpAnyChar:
		return startsOfRunes([]rune{0, unicode.MaxRune})
	case syntax.OpCapture:
		return startsOf(re.Sub[0])
	case syntax.OpPlus:
		return startsOf(re.Sub[0]).repeated()
	case syntax.OpStar, syntax.OpQuest:
		return startsOf(re.Sub[0]).repeated().or(starts{empty: true})
	case syntax.OpRepeat:
		st := startsOf(re.Sub[0]).repeated()
		if re.Min == 0 {
			st = st.or(starts{empty: true})
		}
		return st
	case syntax.OpConcat:
		st := starts{empty: true}
		for _, sub := range re.Sub {
			st = st.then(startsOf(sub))
		}
		return st
	case syntax.OpAlternate:
		st := starts{}
		for _, sub := range re.Sub {
			st = st.or(startsOf(sub))
		}
		return st
	default: // empty-width assertions, the empty match
		return starts{empty: true}
	}
}
