package rules

import (
	"hash/maphash"
	"math/bits"
	"strings"

	"github.com/parley-chatops/parley/internal/intent"
)

// kinds of inventory names, as a bit set (a name may be several).
type kinds uint8

const (
	kNamespace kinds = 1 << iota
	kDeployment
	kService
	kSuite
	kVariant
)

type entry struct {
	key   string // lower case
	canon string // inventory spelling
	kinds kinds
	mask  uint64 // letters and digits present, for a quick distance bound
}

// index is an inventory prepared for name resolution. It is immutable once
// built and shared by concurrent Route calls.
type index struct {
	seed    maphash.Seed
	fp      uint64
	byKey   map[string]int    // lower-case name -> entries index
	entries []entry           // every distinct name
	aliases map[string]string // namespace alias -> canonical namespace
	parts   map[string]int    // one word of a suite name ("summarizer") -> entry, when unique
	deps    map[string]map[string]bool
	maxLen  int
}

var nsAliasGroups = [][]string{
	{"prod", "production", "prd", "prod-cluster"},
	{"staging", "stage", "stg", "stagging"},
	{"dev", "development", "devel", "develop"},
	{"qa", "test", "testing"},
}

// fingerprint hashes an inventory so an unchanged one reuses its index.
func fingerprint(seed maphash.Seed, inv intent.Inventory) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	list := func(tag byte, xs []string) {
		h.WriteByte(tag)
		for _, x := range xs {
			h.WriteString(x)
			h.WriteByte(0)
		}
	}
	list(1, inv.Namespaces)
	list(2, inv.Services)
	list(3, inv.EvalSuites)
	list(4, inv.EvalVariants)
	sum := h.Sum64()
	// map order is random: combine per-namespace hashes commutatively
	for ns, ds := range inv.Deployments {
		var d maphash.Hash
		d.SetSeed(seed)
		d.WriteString(ns)
		d.WriteByte(0)
		for _, x := range ds {
			d.WriteString(x)
			d.WriteByte(0)
		}
		sum += d.Sum64()*0x9e3779b97f4a7c15 + 1
	}
	return sum
}

func buildIndex(seed maphash.Seed, fp uint64, inv intent.Inventory) *index {
	ix := &index{seed: seed, fp: fp, byKey: map[string]int{}, aliases: map[string]string{},
		parts: map[string]int{}, deps: map[string]map[string]bool{}}
	add := func(name string, k kinds) {
		name = strings.TrimSpace(name)
		if name == "" {
			return
		}
		key := strings.ToLower(name)
		if i, ok := ix.byKey[key]; ok {
			ix.entries[i].kinds |= k
			return
		}
		ix.byKey[key] = len(ix.entries)
		ix.entries = append(ix.entries, entry{key: key, canon: name, kinds: k, mask: letterMask(key)})
		if len(key) > ix.maxLen {
			ix.maxLen = len(key)
		}
	}
	for _, ns := range inv.Namespaces {
		add(ns, kNamespace)
	}
	for ns, ds := range inv.Deployments {
		add(ns, kNamespace)
		set := map[string]bool{}
		for _, d := range ds {
			add(d, kDeployment)
			set[strings.ToLower(d)] = true
		}
		ix.deps[strings.ToLower(ns)] = set
	}
	for _, s := range inv.Services {
		add(s, kService)
	}
	for _, s := range inv.EvalSuites {
		add(s, kSuite)
	}
	for _, s := range inv.EvalVariants {
		add(s, kVariant)
	}
	for _, g := range nsAliasGroups {
		target := ""
		for _, n := range g {
			if i, ok := ix.byKey[n]; ok && ix.entries[i].kinds&kNamespace != 0 {
				target = n
				break
			}
		}
		if target == "" {
			continue
		}
		for _, n := range g {
			if _, ok := ix.byKey[n]; !ok {
				ix.aliases[n] = target
			}
		}
	}
	// a distinctive word of a suite name stands for the suite
	count := map[string]int{}
	for i, e := range ix.entries {
		if e.kinds&kSuite == 0 {
			continue
		}
		for _, p := range strings.FieldsFunc(e.key, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			if len(p) >= 4 && p != e.key {
				count[p]++
				ix.parts[p] = i
			}
		}
	}
	for p, c := range count {
		if c > 1 {
			delete(ix.parts, p)
		}
	}
	return ix
}

func letterMask(s string) uint64 {
	var m uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z':
			m |= 1 << (c - 'a')
		case c >= '0' && c <= '9':
			m |= 1 << (26 + c - '0')
		default:
			m |= 1 << 40
		}
	}
	return m
}

// lookup finds an exact name or namespace alias.
func (ix *index) lookup(key string) (entry, bool) {
	if i, ok := ix.byKey[key]; ok {
		return ix.entries[i], true
	}
	if t, ok := ix.aliases[key]; ok {
		return ix.entries[ix.byKey[t]], true
	}
	return entry{}, false
}

// maxTypos is how many edits a word of this length may carry and still be
// read as a name or keyword. Short words must match exactly (or, at four
// letters, by one transposition) so ordinary words never become names.
func maxTypos(n int) int {
	switch {
	case n <= 4:
		return 1 // transpositions only, see closeEnough
	case n <= 7:
		return 1
	default:
		return 2
	}
}

// closeEnough reports the edit distance between a typed word and a target
// when it is within the target's typo budget.
func closeEnough(word, target string) (int, bool) {
	if len(word) < 4 || len(target) < 4 {
		return 0, false
	}
	return closeEnoughMask(word, letterMask(word), target, letterMask(target))
}

// closeEnoughMask is closeEnough with the words' letter masks known.
func closeEnoughMask(word string, wm uint64, target string, tm uint64) (int, bool) {
	if len(word) < 4 || len(target) < 4 {
		return 0, false
	}
	k := maxTypos(len(target))
	if d := len(word) - len(target); d > k || -d > k {
		return 0, false
	}
	if len(target) == 4 && len(word) != 4 {
		return 0, false
	}
	if bits.OnesCount64(wm^tm) > 2*k {
		return 0, false
	}
	d := osa(word, target, k)
	if d > k {
		return 0, false
	}
	if len(target) == 4 && !isTransposition(word, target) {
		return 0, false
	}
	if d == 2 && word[0] != target[0] {
		return 0, false
	}
	return d, true
}

func isTransposition(a, b string) bool {
	for i := 0; i+1 < len(a); i++ {
		if a[i] != b[i] {
			return a[i] == b[i+1] && a[i+1] == b[i] && a[i+2:] == b[i+2:]
		}
	}
	return false
}

// fuzzy finds the one inventory name within typo distance of word. A tie
// between different names is no match.
func (ix *index) fuzzy(word string) (entry, int, bool) {
	if len(word) < 4 || len(word) > ix.maxLen+2 {
		return entry{}, 0, false
	}
	best, bestD, tie := -1, 99, false
	wm := letterMask(word)
	for i := range ix.entries {
		e := &ix.entries[i]
		k := maxTypos(len(e.key))
		if d := len(word) - len(e.key); d > k || -d > k {
			continue
		}
		if bits.OnesCount64(wm^e.mask) > 2*k {
			continue
		}
		d, ok := closeEnough(word, e.key)
		if !ok {
			continue
		}
		switch {
		case d < bestD:
			best, bestD, tie = i, d, false
		case d == bestD:
			tie = true
		}
	}
	if best < 0 {
		// a typo of a namespace alias: "prodution"
		for alias, target := range ix.aliases {
			if d, ok := closeEnough(word, alias); ok && d < bestD {
				best, bestD, tie = ix.byKey[target], d, false
			}
		}
	}
	if best < 0 || tie {
		return entry{}, 0, false
	}
	return ix.entries[best], bestD, true
}

// osa is the optimal string alignment (restricted Damerau-Levenshtein)
// distance of two byte strings, giving up early above limit.
func osa(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit + 1
	}
	var rows [3][65]int
	prev2, prev, cur := &rows[0], &rows[1], &rows[2]
	for j := 0; j <= len(b); j++ {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
