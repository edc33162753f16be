package rules

import (
	"hash/maphash"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"<@U123ABC> restart checkout", "restart checkout"},
		{"<@!123> <@&456> hi", "hi"},
		{"post in <#C123|general> please", "post in #general please"},
		{"see <https://grafana.example.com/d/x|the dashboard>", "see the dashboard"},
		{"see <https://example.com>", "see https://example.com"},
		{"*bold* _italic_ ~strike~ **b** __u__ ||spoiler||", "bold italic strike b u spoiler"},
		{"&gt; scale checkout to 5 &amp; wait", "scale checkout to 5 & wait"},
		{"restart :fire: checkout :+1:", "restart checkout"},
		{"variant:prompt-v2 baseline:baseline", "variant:prompt-v2 baseline:baseline"},
		{"query `rate(http_requests_total[5m])`", "query `rate(http_requests_total[5m])`"},
		{"```promql\nsum(rate(x[1m]))\n```", "`sum(rate(x[1m]))`"},
		{"`{app=&quot;checkout&quot;} |= &quot;timeout&quot;`", "`{app=\"checkout\"} |= \"timeout\"`"},
		{"http_requests_total and snake_case stay", "http_requests_total and snake_case stay"},
		{"<:party:1234> <t:1700000000:R> done", "done"},
		{"a\x00b\x1bc", "abc"},
		{"bad \xff\xfe utf8", "bad utf8"},
		{"stray ` backtick", "stray backtick"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeBounded(t *testing.T) {
	big := strings.Repeat("scale checkout to 5 ", 100000) // ~2 MB
	got := Normalize(big)
	if n := utf8.RuneCountInString(got); n > maxRunes+8 {
		t.Errorf("normalised %d runes, want at most about %d", n, maxRunes)
	}
}

func TestFuzzyNames(t *testing.T) {
	ix := buildIndex(maphash.MakeSeed(), 0, loadDataset(t, "testdata/cases.yaml").Inventory)
	for _, w := range []string{"to", "in", "for", "the", "on", "at", "it", "card", "auto", "part", "char", "chart", "test", "prove", "stage-left", "searches"} {
		if e, _, ok := ix.fuzzy(w); ok {
			t.Errorf("fuzzy(%q) = %s, want no match", w, e.canon)
		}
	}
	for w, want := range map[string]string{"chekout": "checkout", "paymnets": "payments", "prdo": "prod", "stagging": "staging",
		"atuh": "auth", "frontedn": "frontend", "checkotu": "checkout", "serach": "search", "intent-routng": "intent-routing"} {
		if e, _, ok := ix.fuzzy(w); !ok || e.canon != want {
			t.Errorf("fuzzy(%q) = %q, %v; want %s", w, e.canon, ok, want)
		}
	}
}

func TestOSA(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"scale", "sacle", 1}, {"restart", "restrat", 1}, {"rollback", "rollbak", 1},
		{"abc", "abc", 0}, {"kitten", "sitting", 3}, {"ca", "abc", 3},
	}
	for _, tt := range tests {
		if got := osa(tt.a, tt.b, 5); got != tt.want {
			t.Errorf("osa(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
