package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/builtin"
	"github.com/parley-chatops/parley/internal/intent"
)

var fuzzSeeds = []string{
	"evAs BAline", "error rate of checkout over 700w", "logs for payments over the last 700 weeks", "run evals for prompt-v2",
	"scale checkout to 5 in prod", "<@U1> kubectl rollout undo deploy/x --to-revision=3 -n prod",
	"```{app=\"x\"} |= \"y\"```", "`unterminated", "&gt;&gt;&gt; *_~||x||~_*", ":::::", "<<<>>>", "\"'“‘",
	"--replicas= -n", "restart \xff\xfe checkout", "twenty twenty-five hundred dozen", "#", "x/y/z:w=v",
	"run the intent-routing eval against prompt-v2 vs baseline", "don't", "an hour and a half",
}

func FuzzNormalize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Normalize(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Normalize(%q) is not valid UTF-8: %q", s, got)
		}
		if utf8.RuneCountInString(got) > maxRunes+16 {
			t.Fatalf("Normalize(%q) has %d runes", s, utf8.RuneCountInString(got))
		}
		if strings.ContainsAny(got, "\x00\x1b\r") {
			t.Fatalf("Normalize(%q) kept control characters: %q", s, got)
		}
	})
}

// FuzzRoute checks that any input routes without panicking, within the
// catalog, and never to a change without its target: each required
// parameter naming what it acts on is set, except at a confidence of at
// most 0.6 when another inventory name of it is (the pipeline asks for the
// rest before anything runs: "run evals for prompt-v8"). Explicit calls
// keep their values as typed, for validation to refuse. With a thread
// behind it, the same text is never a change it was not without one (the
// thread only gives a change its target: "scale it to 4"), and a change's
// target from the thread is one of the inventory.
func FuzzRoute(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	r := New(builtin.Specs())
	inv := intent.Inventory{Namespaces: []string{"prod", "staging"},
		Deployments:  map[string][]string{"prod": {"checkout", "payments"}, "staging": {"checkout"}},
		Services:     []string{"checkout", "payments"},
		EvalSuites:   []string{"intent-routing"},
		EvalVariants: []string{"baseline", "prompt-v2"}}
	cat := builtin.Specs()
	f.Fuzz(func(t *testing.T, s string) {
		got, err := r.Route(context.Background(), intent.Query{Text: s, Catalog: cat, Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		if got.Source != Source && got.Source != ExplicitSource || got.Confidence < 0 || got.Confidence > 1 {
			t.Fatalf("bad intent %+v", got)
		}
		if got.Source == ExplicitSource {
			return
		}
		spec, ok := specNamed(cat, got.Action)
		if got.Action != action.None && !ok {
			t.Fatalf("action %q is not in the catalog", got.Action)
		}
		if spec.Kind == action.Mutating {
			other := false
			for _, p := range spec.Params {
				if p.Source != action.NoSource && p.Source != action.Namespaces && !p.Required && got.Params.String(p.Name) != "" {
					other = true
				}
			}
			for _, p := range spec.Params {
				target := p.Required && p.Source != action.Namespaces && (p.Type == action.String || p.Type == action.Enum)
				if target && got.Params.String(p.Name) == "" && !(other && got.Confidence <= 0.6) {
					t.Fatalf("%q: mutating %s without %s: %v (confidence %.2f)", s, got.Action, p.Name, got.Params, got.Confidence)
				}
			}
		}
		if _, err := spec.Validate(map[string]any(got.Params)); err != nil && got.Action != action.None && spec.Kind != action.Mutating &&
			!errors.Is(err, action.ErrMissing) { // a read without a required name: the pipeline asks for it ("pod logs" of what?)
			// A value the message gives as key: value is kept as typed,
			// for validation to say what is allowed ("run: A": run must
			// be a whole number); any other value must validate.
			rest := action.Params{}
			for k, v := range got.Params {
				if !r.readAsKeyValue(s, inv, got.Action, k, v) {
					rest[k] = v
				}
			}
			if _, err := spec.Validate(map[string]any(rest)); err != nil && !errors.Is(err, action.ErrMissing) || len(rest) == len(got.Params) {
				t.Fatalf("%q: params do not validate: %v", s, err)
			}
		}
		thread := []intent.Turn{{Text: "status of checkout in prod", Action: action.KubernetesStatus,
			Params: action.Params{"deployment": "checkout", "namespace": "prod"}}}
		follow, err := r.Route(context.Background(), intent.Query{Text: s, Catalog: cat, Inventory: inv, History: thread})
		if err != nil {
			t.Fatal(err)
		}
		fspec, _ := specNamed(cat, follow.Action)
		if fspec.Kind != action.Mutating || follow.Action == got.Action {
			return
		}
		if got.Action != action.None || !strings.Contains(got.Note, "needs") {
			t.Fatalf("%q: %s after a status, %s (%s) without it: the thread made a change", s, follow.Action, got.Action, got.Note)
		}
		if d := follow.Params.String("deployment"); d != "" && d != "checkout" && d != "payments" {
			t.Fatalf("%q: %s of %q after a status: not an inventory name", s, follow.Action, d)
		}
	})
}

// TestImpossibleWindowIgnored: FuzzRoute's finding. A window longer than
// any query may span ("700w", "700 weeks": over ten years) is not passed
// to a read, which would then fail validation; the read runs with its
// default window and the note says why.
func TestImpossibleWindowIgnored(t *testing.T) {
	r := New(builtin.Specs())
	inv := intent.Inventory{Services: []string{"checkout"}}
	for _, text := range []string{"error rate of checkout over 700w", "logs for checkout over the last 700 weeks"} {
		got, err := r.Route(context.Background(), intent.Query{Text: text, Catalog: builtin.Specs(), Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := specNamed(builtin.Specs(), got.Action)
		if spec.Kind != action.Read || got.Params["window"] != nil || !strings.Contains(got.Note, "window 700w ignored") {
			t.Errorf("%q: %s %v (%s); want a read without the window, noted", text, got.Action, got.Params, got.Note)
		}
		if _, err := spec.Validate(map[string]any(got.Params)); err != nil {
			t.Errorf("%q: params do not validate: %v", text, err)
		}
	}
}

// readAsKeyValue reports whether the router read v, the value of the
// parameter name of act, from text as typed in a key:value, key=value or
// --key value (its analysis's kvs, by the parameter's name or words, or a
// key of its kind). The forms are the router's to say: "run: A", "run*: A"
// (markup), "run':0A0" (an apostrophe inside a word), "--run A".
func (r *Router) readAsKeyValue(text string, inv intent.Inventory, act, name string, v any) bool {
	val := fmt.Sprint(v)
	for _, h := range r.analyse(text, r.indexFor(inv)).kvs {
		if !strings.EqualFold(h.orig, val) && !strings.EqualFold(h.val, val) {
			continue
		}
		if h.key.slot != slotNone {
			return true
		}
		for _, p := range h.key.params {
			if p.act.name == act && p.p.Name == name {
				return true
			}
		}
	}
	return false
}
