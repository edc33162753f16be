package redact

import (
	"cmp"
	"slices"
	"strings"
)

// referenceRedact is Redact as it was first written: every rule's pattern
// matched on the whole text, to a fixed point. It is what windowed
// matching must give, byte for byte. It runs every rule, where the first
// version skipped a rule unless the text, lower-cased, held one of its
// words: that skip was only a shortcut, and so the reference is the
// patterns' own answer. (The shortcut had one hole: strings.ToLower keeps
// the long s, which (?i) takes for an s, so "paſſword=x" kept its value.)
func referenceRedact(s string) string {
	for range maxPasses {
		out := referencePass(s)
		if out == s {
			return out
		}
		s = out
	}
	return s
}

func referencePass(s string) string {
	markers := referenceMarkers(s)
	var spans []span
	for i := range rules {
		r := &rules[i]
		for _, m := range r.re.FindAllStringSubmatchIndex(s, -1) {
			sp := secret(m, r.groups)
			if sp.start < 0 || sp.end <= sp.start {
				continue
			}
			if r.check != nil && !r.check(s[sp.start:sp.end]) {
				continue
			}
			first, _ := slices.BinarySearchFunc(markers, sp.start, func(mk span, at int) int { return cmp.Compare(mk.end, at+1) })
			for _, mk := range markers[first:] {
				if mk.start >= sp.end {
					break
				}
				sp.start, sp.end = min(sp.start, mk.start), max(sp.end, mk.end)
			}
			if s[sp.start:sp.end] == Marker {
				continue
			}
			spans = append(spans, sp)
		}
	}
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	last := 0
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

func referenceMarkers(s string) []span {
	var out []span
	for off := 0; ; {
		i := strings.Index(s[off:], Marker)
		if i < 0 {
			return out
		}
		out = append(out, span{off + i, off + i + len(Marker)})
		off += i + len(Marker)
	}
}
