package rules

import (
	"strconv"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// numbers gives each number a role from its neighbours: a value of the
// parameters whose Words stand next to it ("5 pods", "rev 3", "last 50
// lines", "run #118", "r22"), "to N", a relative change ("by 2", "2 more
// pods"), or a bare number.
func (a *analysis) numbers() {
	for _, h := range a.kvs {
		n, ok := atoi(h.val)
		if !ok {
			n, ok = numberWord(h.val)
		}
		if !ok {
			continue
		}
		var ps []*paramInfo
		for _, p := range h.key.params {
			if p.is(action.Int) {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			a.bound = append(a.bound, boundNum{n: n, i: h.i, params: ps})
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
			if n, ps := a.gluedNumber(t.s); len(ps) > 0 { // "r22", "rev22" (not "v1.4.2": an image version)
				t.used = true
				a.bound = append(a.bound, boundNum{n: n, i: i, params: ps})
			}
			continue
		}
		if t.kind != tNum || t.used {
			continue
		}
		t.used = true
		prev := a.word(i - 1)
		if ps, at := a.countOf(i + 1); len(ps) > 0 {
			// "4 replicas", "3 more pods", "twelve checkout pods", "10 most recent errors"
			rel := prev == "by" || a.relWord(i-1) || a.relWord(i-2) || a.relWord(i+1) || a.isWord(at+1, "more")
			if rel && hasMutatingInt(ps) {
				a.relative = true
				if a.countAt < 0 {
					a.countAt = i
				}
				continue
			}
			if a.countAt < 0 && hasMutatingInt(ps) {
				a.countAt = i
			}
			a.bound = append(a.bound, boundNum{n: t.n, i: i, params: ps, after: true, word: at})
			continue
		}
		if ps := a.introduced(i); len(ps) > 0 {
			a.bound = append(a.bound, boundNum{n: t.n, i: i, params: ps})
			continue
		}
		switch {
		case prev == "by":
			a.relative = true
		case prev == arrow:
			a.toNum.set(t.n) // "frontend prod -> 5"
		case prev == "to" || prev == "at" || prev == "=" || prev == "of" && a.countWordBefore(i-2):
			a.toNum.set(t.n)
		default:
			a.bareNums = append(a.bareNums, t.n)
		}
	}
}

// countOf reports the Int parameters counted by a number before i, and
// the token of the counting word: "replicas" in "4 replicas", "pods" in
// "3 more checkout pods", "errors" in "10 most recent errors". Names,
// relative words, adjectives of recency and values of the parameter's
// action may come between.
func (a *analysis) countOf(i int) ([]*paramInfo, int) {
	for j := i; j < len(a.toks) && j < i+4; j++ {
		if a.toks[j].sep && j > i {
			return nil, -1
		}
		if ps := a.countParams(j); len(ps) > 0 {
			return ps, j
		}
		switch {
		case a.relWord(j), a.nameAt(j),
			a.isWord(j, "most", "recent", "latest", "newest", "last", "new", "oldest", "earliest", "log", "logged"),
			a.info[j] != nil && len(a.info[j].values) > 0:
			continue
		}
		return nil, -1
	}
	return nil, -1
}

// intWords are the Int parameters a word at i introduces.
func (a *analysis) intWords(i int) []*paramInfo {
	wi := a.r.lex[a.word(i)]
	if wi == nil {
		return nil
	}
	var out []*paramInfo
	for _, p := range wi.words {
		if p.is(action.Int) {
			out = append(out, p)
		}
	}
	return out
}

// introduced reports the Int parameters whose word stands right before the
// number at i ("rev 3", "revision #7", "run 42", "tail 50"), or, for a
// number written "#42", those that take "#".
func (a *analysis) introduced(i int) []*paramInfo {
	if ps := a.intWords(i - 1); len(ps) > 0 && !(a.toks[i].hash && a.isWord(i-1, "version", "versions")) {
		return ps
	}
	var ps []*paramInfo
	for _, h := range a.phrases {
		if h.ph.kind == pWord && h.end == i && h.ph.param.is(action.Int) {
			ps = append(ps, h.ph.param) // "job number 31"
		}
	}
	if len(ps) > 0 {
		return ps
	}
	if a.toks[i].hash {
		return a.r.hashParams
	}
	return nil
}

// gluedNumber reads a word and a number written together: "r22", "rev22",
// "revision-22" for the parameters with that word ("v1.4.2" is no number).
func (a *analysis) gluedNumber(w string) (int, []*paramInfo) {
	k := len(w)
	for k > 0 && w[k-1] >= '0' && w[k-1] <= '9' {
		k--
	}
	if k == 0 || k == len(w) || len(w)-k > 9 {
		return 0, nil
	}
	n, err := strconv.Atoi(w[k:])
	if err != nil {
		return 0, nil
	}
	prefix := strings.TrimSuffix(w[:k], "-")
	wi := a.r.lex[prefix]
	if wi == nil {
		return 0, nil
	}
	var out []*paramInfo
	for _, p := range wi.words {
		if p.is(action.Int) {
			out = append(out, p)
		}
	}
	return n, out
}

func hasMutatingInt(ps []*paramInfo) bool {
	for _, p := range ps {
		if p.act.mutating {
			return true
		}
	}
	return false
}

// countWordBefore: "replicas of 5".
func (a *analysis) countWordBefore(i int) bool {
	return hasMutatingInt(a.countParams(i))
}

func (a *analysis) relWord(i int) bool {
	return a.r.lex[a.word(i)].has(wRel)
}

// boundTo returns the number bound to a parameter.
func (a *analysis) boundTo(p *paramInfo) (int, bool) {
	for _, b := range a.bound {
		for _, q := range b.params {
			if q == p {
				return b.n, true
			}
		}
	}
	return 0, false
}

// countWords reports, in the message, a word counting a parameter of the
// action ("pods", "replicas"), with or without a number.
func (a *analysis) countWords(act *actInfo) bool {
	for i := range a.toks {
		if a.toks[i].used {
			continue
		}
		for _, p := range a.countParams(i) {
			if p.act == act {
				return true
			}
		}
	}
	for _, b := range a.bound {
		if b.after {
			for _, p := range b.params {
				if p.act == act {
					return true
				}
			}
		}
	}
	return false
}

// countParams are the Int parameters a word at i counts: a plural
// ("replicas", "lines"), or a singular whose plural is also a word of the
// parameter ("1 replica"); "one revision" counts nothing.
func (a *analysis) countParams(i int) []*paramInfo {
	w := a.word(i)
	var out []*paramInfo
	for _, p := range a.intWords(i) {
		if len(w) > 3 && strings.HasSuffix(w, "s") || containsWord(p.words, w+"s") {
			out = append(out, p)
		}
	}
	return out
}
