package pipeline

import (
	"testing"
	"time"
)

func TestParseConfirmCommand(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		cancel bool
		code   string
	}{
		{"confirm K7Q2", true, false, "K7Q2"},
		{"confirm k7q2", true, false, "K7Q2"},
		{"  Confirm   K7Q2. ", true, false, "K7Q2"},
		{"<@U024BE7LH> *confirm* `K7Q2`", true, false, "K7Q2"},
		{"confirm", true, false, ""},
		{"approve", true, false, ""},
		{"cancel K7Q2", true, true, "K7Q2"},
		{"cancel", true, true, ""},
		{"abort", true, true, ""},
		{"confirm K7Q2 and also scale prod", false, false, ""},
		{"confirm the scale of checkout", false, false, ""},
		{"cancel everything", false, false, ""},
		{"confirmK7Q2", false, false, ""},
		{"scale checkout to 5", false, false, ""},
		{"", false, false, ""},
	}
	for _, tt := range tests {
		got, ok := parseConfirmCommand(tt.in)
		if ok != tt.ok || got.cancel != tt.cancel || got.code != tt.code {
			t.Errorf("parseConfirmCommand(%q) = %+v, %v; want cancel=%v code=%q ok=%v", tt.in, got, ok, tt.cancel, tt.code, tt.ok)
		}
	}
}

func TestRateLimitAndDedupe(t *testing.T) {
	p := &Pipeline{cfg: Config{RateBurst: 3, RateEvery: 1 << 62, DedupeCapacity: 2}, seen: map[string]time.Time{}, buckets: map[string]*bucket{}}
	p.cfg.Now = func() time.Time { return time.Unix(0, 0) }
	for i := range 3 {
		if !p.allowRate("console:alice") {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	if p.allowRate("console:alice") {
		t.Error("request beyond the burst allowed")
	}
	if !p.allowRate("console:bob") {
		t.Error("another subject was limited by alice's bucket")
	}
	if p.duplicateHere("e1") || !p.duplicateHere("e1") {
		t.Error("dedupe did not remember e1")
	}
	p.duplicateHere("e2")
	p.duplicateHere("e3") // evicts e1
	if p.duplicateHere("e1") {
		t.Error("dedupe kept more ids than its capacity")
	}
}

// TestFullRateBucketsAreForgotten: a subject whose bucket refilled is
// not remembered (memory on a long-running serve), and comes back with a
// full burst, as if never seen.
func TestFullRateBucketsAreForgotten(t *testing.T) {
	now := time.Unix(1000, 0)
	p := &Pipeline{cfg: Config{RateBurst: 2, RateEvery: time.Second}, buckets: map[string]*bucket{}}
	p.cfg.Now = func() time.Time { return now }
	p.allowRate("console:alice")
	p.allowRate("console:alice")
	p.allowRate("console:bob")
	now = now.Add(1500 * time.Millisecond) // bob's one token is back; alice has 1.5 of 2
	p.forgetFullBuckets(now)
	if _, ok := p.buckets["console:bob"]; ok {
		t.Error("bob's refilled bucket is still kept")
	}
	if _, ok := p.buckets["console:alice"]; !ok {
		t.Fatal("alice's bucket was dropped before it refilled")
	}
	if first, second := p.allowRate("console:alice"), p.allowRate("console:alice"); !first || second {
		t.Error("alice's bucket lost its state: want exactly one more request allowed")
	}
	if first, second := p.allowRate("console:bob"), p.allowRate("console:bob"); !first || !second {
		t.Error("bob did not get a full burst back")
	}
}

func TestParseCancelEval(t *testing.T) {
	for in, want := range map[string]int{
		"cancel eval 42": 42, "stop evaluation run #7": 7, "<@U1> cancel the eval 3": 3, "abort eval run 12.": 12,
		"cancel eval": 0, "cancel eval forty": 0, "cancel K7Q2": 0, "cancel eval 42 and restart prod": 0,
	} {
		got, ok := parseCancelEval(in)
		if (want > 0) != ok || got != want {
			t.Errorf("parseCancelEval(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}
