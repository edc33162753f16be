package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

// FuzzCanonical: the hand-written canonical encoding is byte for byte the
// one encoding/json writes, which every stored hash was computed from.
func FuzzCanonical(f *testing.F) {
	f.Add("console:ops", `{"deployment":"checkout","replicas":5}`, "scale checkout to 5", 0.93, int64(1773454447001))
	f.Add("<&>", "\"\\\u2028\u2029\x00\x1f\x7f", "é\xff\xfe", 1e-7, int64(-1))
	f.Add("", "", "", 0.0, int64(0))
	f.Add("a\tb\nc\rd\be\ff", "\\\"", "日本", 1e21, int64(math.MaxInt64))
	f.Add("x", "y", "z", math.NaN(), int64(math.MinInt64))
	f.Add("x", "y", "z", math.Inf(-1), int64(3))
	f.Add("x", "y", "z", -0.5, int64(3))
	f.Add("x", "y", "z", 123456789.123456789, int64(3))
	f.Fuzz(func(t *testing.T, a, b, c string, conf float64, n int64) {
		rw := row{seq: n, timeMS: n ^ 0x5555, typ: a, requestID: b, platform: c, channel: a + b, thread: b + c,
			subject: c + a, action: a, params: b, decision: c, rule: a, confirmationID: b, outcome: c, errText: a + c,
			durationMS: -n, router: b, confidence: conf, text: c + b + a, details: a, prevHash: b}
		want := rw.marshalCanonical()
		if got := rw.appendCanonical([]byte("prefix")); !bytes.Equal(got[len("prefix"):], want) || string(got[:len("prefix")]) != "prefix" {
			t.Fatalf("appendCanonical =\n%s\nencoding/json:\n%s", got, want)
		}
		// The stored forms of Params and Details, hashed as the row's
		// params and details, are what encoding/json writes too.
		d := map[string]string{a: b, c: a + c, "k": c}
		if want, _ := json.Marshal(d); encodeDetails(d) != string(want) {
			t.Fatalf("encodeDetails = %s, encoding/json: %s", encodeDetails(d), want)
		}
		p := action.Params{a: b, b + "x": n, c + "y": conf > 0, "nil": nil, "f": []string{a}, "i": int(n)}
		if want := jsonParams(p); encodeParams(p) != want {
			t.Fatalf("encodeParams = %s, encoding/json: %s", encodeParams(p), want)
		}
	})
}

// jsonParams is Params.Canonical as it was first written: each key and
// value by encoding/json, keys sorted.
func jsonParams(p action.Params) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(p)) {
		if i > 0 {
			b.WriteByte(',')
		}
		kj, _ := json.Marshal(k)
		vj, _ := json.Marshal(p[k])
		b.Write(kj)
		b.WriteByte(':')
		b.Write(vj)
	}
	b.WriteByte('}')
	return b.String()
}

// BenchmarkComputeHash: one event's hash, as the commit loop computes it.
func BenchmarkComputeHash(b *testing.B) {
	rw := row{seq: 41, timeMS: 1773454447001, typ: "action.succeeded", requestID: "req-8f3a2c", platform: "console",
		channel: "console:ops", thread: "1773454447.000100", subject: "console:alice", action: "kubernetes.scale",
		params: `{"deployment":"checkout","namespace":"prod","replicas":5}`, outcome: "ok", durationMS: 12,
		router: "rules", confidence: 0.93, text: "scale checkout to 5 in prod", prevHash: Genesis}
	b.ReportAllocs()
	for b.Loop() {
		rw.computeHash()
	}
}

// TestBatchRowsAreEmptiedForTheNext: the rows a batch linked are kept for
// the next batch without the events in them (their text and parameters
// are not held after the write), and the next batch links after the last.
func TestBatchRowsAreEmptiedForTheNext(t *testing.T) {
	forBackends(t, func(t *testing.T, bk backend) {
		f := newFixture(t, bk, Options{})
		ctx := context.Background()
		for round := range 3 {
			stored, err := f.rec.Enqueue(ctx, requestEvents()...).Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Wait returns once the committer settled the batch (after it
			// kept the rows): nothing else is being written.
			rows := f.rec.rows[:cap(f.rec.rows)]
			if len(f.rec.rows) != 0 || len(rows) < len(stored) {
				t.Fatalf("round %d: kept rows len %d cap %d; want empty, room for %d", round, len(f.rec.rows), cap(f.rec.rows), len(stored))
			}
			for i, rw := range rows {
				if rw != (row{}) {
					t.Fatalf("round %d: kept row %d still holds event #%d (%s)", round, i, rw.seq, rw.text)
				}
			}
			if want := int64((round + 1) * len(stored)); stored[len(stored)-1].Seq != want {
				t.Fatalf("round %d: last seq %d, want %d", round, stored[len(stored)-1].Seq, want)
			}
		}
		if res, err := f.rec.Verify(ctx); err != nil || !res.OK {
			t.Fatalf("verify: %+v, %v", res, err)
		}
	})
}
