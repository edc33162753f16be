package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBinaryFollowUpsPerUser plays a console conversation through the
// compiled binary: "scale it to 4" after a status asks to confirm the
// scale of the deployment that status was about, and another person's
// "scale it to 4" in the same channel reads their own earlier turns, never
// the first person's (with none, it names nothing and nothing is asked).
func TestBinaryFollowUpsPerUser(t *testing.T) {
	bin := parley(t)
	dir := t.TempDir()
	transcript := strings.Join([]string{
		"alice@ops: status of checkout in prod",
		"bob@ops: scale it to 4",
		"alice@ops: scale it to 4",
		"bob@ops: status of payments in prod",
		"bob@ops: scale it to 4",
		"alice@ops: confirm",
	}, "\n") + "\n"
	out, code := run(t, dir, bin, transcript, "chat", "--transcript", "-")
	if code != 0 {
		t.Fatalf("chat exited %d:\n%s", code, out)
	}
	turns := strings.Split(out, "@ops> ")
	if len(turns) != 7 {
		t.Fatalf("want 6 echoed turns, got:\n%s", out)
	}
	for i, want := range []string{
		2: "kubernetes.scale needs exactly one deployment", // bob's first: alice's thread is not his
		3: "This changes prod: checkout replicas 3 -> 4.",
		5: "This changes prod: payments replicas 2 -> 4.",
		6: "Scaled checkout (prod) 3 -> 4.",
	} {
		if want != "" && !strings.Contains(turns[i], want) {
			t.Errorf("turn %d lacks %q:\n%s", i, want, turns[i])
		}
	}
	if strings.Contains(turns[2], "checkout") && strings.Contains(turns[2], "confirm") {
		t.Errorf("bob was offered alice's checkout:\n%s", turns[2])
	}

	list, code := run(t, dir, bin, "", "audit", "export", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("audit export exited %d:\n%s", code, list)
	}
	asked := map[string][]string{} // subject -> params of its confirmation requests
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		var e struct {
			Type    string         `json:"type"`
			Subject string         `json:"subject"`
			Params  map[string]any `json:"params"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("bad jsonl line %q: %v", line, err)
		}
		if e.Type == "confirmation.requested" {
			b, _ := json.Marshal(e.Params)
			asked[e.Subject] = append(asked[e.Subject], string(b))
		}
	}
	if got := strings.Join(asked["console:alice"], " "); got != `{"deployment":"checkout","namespace":"prod","replicas":4}` {
		t.Errorf("alice's confirmation requests = %s", got)
	}
	if got := strings.Join(asked["console:bob"], " "); got != `{"deployment":"payments","namespace":"prod","replicas":4}` {
		t.Errorf("bob's confirmation requests = %s", got)
	}
}
