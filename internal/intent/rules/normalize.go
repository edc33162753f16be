package rules

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on the work done per message. Chat messages that matter are
// short; a megabyte paste is cut to its opening instead of being scanned.
const (
	maxScanBytes = 16 << 10 // bytes of raw input looked at
	maxRunes     = 2000     // runes of cleaned input routed on
)

// Segment is a piece of a cleaned message: prose, or the content of a
// `code` span or ```fenced``` block.
type Segment struct {
	Text string
	Code bool
}

// Clean splits raw chat text into prose and code segments and removes
// platform markup from the prose: Slack and Discord mentions, channel refs
// (kept as "#name"), links (kept as their label or address), emphasis
// markers (*bold*, _italic_, ~strike~, **bold**, __underline__, ||spoiler||),
// block quote markers, :emoji: and HTML entities. Code keeps its content
// verbatim apart from entities and typographic quotes. Invalid UTF-8 and
// control characters become spaces, and only the first 2000 runes are kept.
// Clean never panics.
func Clean(text string) []Segment {
	s := sanitize(text)
	var out []Segment
	for s != "" {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			out = appendProse(out, s)
			break
		}
		out = appendProse(out, s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "```") {
			body := s[3:]
			end := strings.Index(body, "```")
			if end < 0 {
				out = appendCode(out, stripFenceLang(body))
				break
			}
			out = appendCode(out, stripFenceLang(body[:end]))
			s = body[end+3:]
			continue
		}
		body := s[1:]
		end := strings.IndexByte(body, '`')
		if end < 0 { // a stray backtick: drop it
			s = body
			continue
		}
		out = appendCode(out, body[:end])
		s = body[end+1:]
	}
	return out
}

// Normalize returns the cleaned text of a chat message as one line: markup
// removed as described for Clean, code spans kept in backticks, whitespace
// collapsed. Case is kept (quoted filters are case sensitive). The result
// is valid UTF-8 and at most a few bytes longer than 4*2000.
func Normalize(text string) string {
	var b strings.Builder
	for _, seg := range Clean(text) {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		if seg.Code {
			b.WriteByte('`')
			b.WriteString(collapseSpace(seg.Text))
			b.WriteByte('`')
			continue
		}
		b.WriteString(collapseSpace(seg.Text))
	}
	return strings.TrimSpace(b.String())
}

func appendProse(out []Segment, s string) []Segment {
	s = stripMarkup(s)
	if strings.TrimSpace(s) == "" {
		return out
	}
	return append(out, Segment{Text: s})
}

func appendCode(out []Segment, s string) []Segment {
	s = strings.TrimSpace(straightQuotes(decodeEntities(s)))
	if s == "" {
		return out
	}
	return append(out, Segment{Text: s, Code: true})
}

// stripFenceLang drops a language tag on the first line of a fenced block
// ("```promql\nrate(x[5m])```").
func stripFenceLang(s string) string {
	nl := strings.IndexByte(s, '\n')
	if nl <= 0 || nl > 20 {
		return s
	}
	tag := strings.TrimSpace(s[:nl])
	for _, r := range tag {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return s
		}
	}
	return s[nl+1:]
}

// sanitize makes the input valid UTF-8 without control characters and cuts
// it to maxRunes runes.
func sanitize(text string) string {
	if len(text) > maxScanBytes {
		text = text[:maxScanBytes]
	}
	var b strings.Builder
	b.Grow(len(text))
	n := 0
	for i := 0; i < len(text) && n < maxRunes; {
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case r == utf8.RuneError && size <= 1:
			r = ' '
		case r == '\n':
		case r == '\u2028', r == '\u2029':
			r = '\n'
		case r == '\r', r == '\t', r == '\u00a0':
			r = ' '
		case unicode.IsControl(r), r == '\u200b', r == '\u200c', r == '\u200d', r == '\ufeff':
			continue
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// stripMarkup removes chat markup from prose.
func stripMarkup(s string) string {
	s = stripAngle(s)
	s = decodeEntities(s)
	var b strings.Builder
	b.Grow(len(s))
	for li, line := range strings.Split(s, "\n") {
		if li > 0 {
			b.WriteByte('\n')
		}
		t := strings.TrimLeft(line, " ")
		for strings.HasPrefix(t, ">") { // "> quote", ">>> quote"
			t = strings.TrimLeft(t[1:], "> ")
		}
		b.WriteString(stripEmphasis(t))
	}
	return b.String()
}

// stripAngle handles Slack/Discord <...> markup: mentions and broadcast
// tags are dropped, channel refs become "#name", links become their label
// or address, custom emoji and timestamps are dropped.
func stripAngle(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		j := strings.IndexAny(s[i+1:], "<>\n")
		if j < 0 || s[i+1+j] != '>' || j > 512 {
			b.WriteString(s[:i+1])
			s = s[i+1:]
			continue
		}
		b.WriteString(s[:i])
		inner := s[i+1 : i+1+j]
		s = s[i+2+j:]
		label := ""
		if k := strings.IndexByte(inner, '|'); k >= 0 {
			label = inner[k+1:]
			inner = inner[:k]
		}
		switch {
		case strings.HasPrefix(inner, "@"), strings.HasPrefix(inner, "!"):
			// user, role and broadcast mentions say nothing about the request
		case strings.HasPrefix(inner, "#"):
			if label != "" {
				b.WriteString(" #" + label + " ")
			}
		case strings.HasPrefix(inner, "http://"), strings.HasPrefix(inner, "https://"), strings.HasPrefix(inner, "mailto:"):
			if label != "" {
				b.WriteString(" " + label + " ")
			} else {
				b.WriteString(" " + inner + " ")
			}
		case strings.HasPrefix(inner, ":"), strings.HasPrefix(inner, "a:"), strings.HasPrefix(inner, "t:"):
			// Discord custom emoji and timestamps
		default: // not markup: keep the text, e.g. "<5 replicas>"
			b.WriteString("<" + inner)
			if label != "" {
				b.WriteString("|" + label)
			}
			b.WriteString(">")
		}
	}
	return b.String()
}

var entities = [...][2]string{
	{"&gt;", ">"}, {"&lt;", "<"}, {"&quot;", `"`}, {"&#39;", "'"}, {"&#x27;", "'"},
	{"&apos;", "'"}, {"&nbsp;", " "}, {"&#34;", `"`}, {"&amp;", "&"},
}

// decodeEntities decodes the HTML entities chat platforms send. &amp; is
// decoded last so "&amp;gt;" stays "&gt;".
func decodeEntities(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	for _, e := range entities {
		s = strings.ReplaceAll(s, e[0], e[1])
	}
	return s
}

// straightQuotes turns typographic quotes into ASCII ones.
func straightQuotes(s string) string {
	if !strings.ContainsAny(s, "“”„‘’‚«»") {
		return s
	}
	return strings.NewReplacer("“", `"`, "”", `"`, "„", `"`, "«", `"`, "»", `"`, "‘", "'", "’", "'", "‚", "'").Replace(s)
}

// stripEmphasis removes emphasis markers and :emoji: from one line of prose.
// Underscores inside words (http_requests_total) are kept.
func stripEmphasis(s string) string {
	if !strings.ContainsAny(s, "*_~|:") {
		return s
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	isWord := func(i int) bool {
		if i < 0 || i >= len(rs) {
			return false
		}
		r := rs[i]
		return unicode.IsLetter(r) || unicode.IsDigit(r)
	}
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch r {
		case '*', '~':
			continue
		case '|':
			if i+1 < len(rs) && rs[i+1] == '|' {
				i++
				continue
			}
		case '_':
			// a run of underscores is kept only inside a word (http_requests_total)
			j := i
			for j < len(rs) && rs[j] == '_' {
				j++
			}
			if isWord(i-1) && isWord(j) {
				b.WriteString(string(rs[i:j]))
			}
			i = j - 1
			continue
		case ':':
			if !isWord(i - 1) {
				if end := emojiEnd(rs, i); end > 0 {
					i = end
					continue
				}
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

// emojiEnd returns the index of the closing colon of an :emoji_name: that
// starts at rs[i], or -1.
func emojiEnd(rs []rune, i int) int {
	for j := i + 1; j < len(rs) && j-i <= 40; j++ {
		r := rs[j]
		switch {
		case r == ':':
			if j == i+1 {
				return -1
			}
			if j+1 < len(rs) && (unicode.IsLetter(rs[j+1]) || unicode.IsDigit(rs[j+1])) {
				return -1
			}
			return j
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '+', r == '-':
		default:
			return -1
		}
	}
	return -1
}

func collapseSpace(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
