package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/builtin"

	"github.com/parley-chatops/parley/internal/policy"
)

// minimal is a valid rule to append where a test needs the file to have one.
const minimal = `
rules:
  - name: anyone may read
    actions: [help]
    effect: allow
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // substring, including file:line
	}{
		{"empty file", ``, "p.yaml:1: empty policy"},
		{"null document", "~\n", "p.yaml:1: empty policy"},
		{"invalid yaml", "rules: [\n", "p.yaml:1: invalid YAML"},
		{"two documents", minimal + "---\n" + minimal, "p.yaml:6: a policy file holds one YAML document"},
		{"top level list", "- a\n", `p.yaml:1: policy: want a mapping`},
		{"unknown top key", "rulez: []\n" + minimal, `p.yaml:1: policy: unknown key "rulez"; did you mean "rules"?`},
		{"no rules", "default: deny\n", "p.yaml:1: policy has no rules"},
		{"empty rules", "rules: []\n", "p.yaml:1: rules: empty list"},
		{"rules not a list", "rules: {a: b}\n", "p.yaml:1: rules: want a list of rules"},
		{"bad default", minimal + "default: maybe\n", `p.yaml:6: default: "maybe" is not deny or allow`},
		{"default confirm", minimal + "default: confirm\n", `p.yaml:6: default: "confirm" is not deny or allow`},
		{"rule not a mapping", "rules:\n  - just text\n", "p.yaml:2: rule 1: want a mapping"},
		{"missing name", "rules:\n  - effect: allow\n", "p.yaml:2: rule 1: name is required"},
		{"reserved name", "rules:\n  - name: default\n    effect: allow\n", `p.yaml:2: rule "default": "default" is reserved`},
		{"duplicate name", minimal + "  - name: anyone may read\n    effect: deny\n", `p.yaml:6: rule "anyone may read": name already used by the rule at line 3`},
		{"missing effect", "rules:\n  - name: r\n", `p.yaml:2: rule "r": effect is required`},
		{"unknown effect", "rules:\n  - name: r\n    effect: permit\n", `p.yaml:3: rule "r": effect "permit" is not allow, deny or confirm`},
		{"unknown rule key", "rules:\n  - name: r\n    effect: allow\n    efect: deny\n", `p.yaml:4: rule "r": unknown key "efect"; did you mean "effect"?`},
		{"key before name", "rules:\n  - colour: red\n    name: r\n    effect: allow\n", `p.yaml:2: rule "r": unknown key "colour"`},
		{"duplicate key", "rules:\n  - name: r\n    effect: allow\n    effect: deny\n", `p.yaml:4: rule "r": key "effect" given twice`},
		{"unknown group in subjects", "groups: {sre: [console:alice]}\nrules:\n  - name: r\n    subjects: [group:sra]\n    effect: allow\n", `p.yaml:4: rule "r": subjects: unknown group "sra" (groups: sre)`},
		{"unknown group no groups", "rules:\n  - name: r\n    subjects: [group:sre]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: unknown group "sre" (the policy defines no groups)`},
		{"subject without platform", "rules:\n  - name: r\n    subjects: [alice]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: "alice": want platform:id`},
		{"subject unknown platform", "rules:\n  - name: r\n    subjects: [teams:alice]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: "teams:alice": unknown platform "teams"`},
		{"subject empty id", "rules:\n  - name: r\n    subjects: [\"slack:\"]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: "slack:": empty id`},
		{"slack display name", "rules:\n  - name: r\n    subjects: [\"slack:@alice\"]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: "slack:@alice": slack ids are upper-case`},
		{"discord user name", "rules:\n  - name: r\n    subjects: [discord:alice]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: "discord:alice": discord ids are numeric`},
		{"subjects empty list", "rules:\n  - name: r\n    subjects: []\n    effect: allow\n", `p.yaml:3: rule "r": subjects: empty list; omit subjects to match anyone`},
		{"subjects scalar", "rules:\n  - name: r\n    subjects: console:alice\n    effect: allow\n", `p.yaml:3: rule "r": subjects: want a list, got "console:alice"; write [console:alice]`},
		{"subjects duplicate", "rules:\n  - name: r\n    subjects: [console:a, console:a]\n    effect: allow\n", `p.yaml:3: rule "r": subjects: "console:a" listed twice`},
		{"subject group wildcard", "rules:\n  - name: r\n    subjects: [\"slack-group:*\"]\n    effect: allow\n", `a wildcard is not allowed here`},
		{"channel bad", "rules:\n  - name: r\n    channels: [ops]\n    effect: allow\n", `p.yaml:3: rule "r": channels: "ops": want platform:id`},
		{"channel is a group", "rules:\n  - name: r\n    channels: [\"slack-group:S1\"]\n    effect: allow\n", `p.yaml:3: rule "r": channels: "slack-group:S1": slack-group names a group, not a channel`},
		{"unknown action", "rules:\n  - name: r\n    actions: [kubernetes.scal]\n    effect: allow\n", `p.yaml:3: rule "r": actions: unknown action "kubernetes.scal"; did you mean "kubernetes.scale"?`},
		{"unknown action far", "rules:\n  - name: r\n    actions: [shell.exec]\n    effect: allow\n", `p.yaml:3: rule "r": actions: unknown action "shell.exec" (actions: help,`},
		{"none is not an action", "rules:\n  - name: r\n    actions: [none]\n    effect: allow\n", `unknown action "none"`},
		{"pattern matches nothing", "rules:\n  - name: r\n    actions: [\"k8s.*\"]\n    effect: allow\n", `p.yaml:3: rule "r": actions: pattern "k8s.*" matches no action`},
		{"malformed action", "rules:\n  - name: r\n    actions: [\"Kubernetes.Scale\"]\n    effect: allow\n", `p.yaml:3: rule "r": actions: "Kubernetes.Scale" is not an action name or pattern`},
		{"when syntax", "rules:\n  - name: r\n    when: params.namespace ==\n    effect: allow\n", `p.yaml:3: rule "r": when: Syntax error`},
		{"when undeclared", "rules:\n  - name: r\n    when: ns == \"prod\"\n    effect: allow\n", `p.yaml:3: rule "r": when: undeclared reference to 'ns'`},
		{"when not bool", "rules:\n  - name: r\n    when: action + \"x\"\n    effect: allow\n", `p.yaml:3: rule "r": when: condition yields string, want a bool`},
		{"when empty", "rules:\n  - name: r\n    when: \"\"\n    effect: allow\n", `p.yaml:3: rule "r": when: empty condition`},
		{"when unknown param", "rules:\n  - name: r\n    actions: [kubernetes.scale]\n    when: params.replcas > 3\n    effect: allow\n", `p.yaml:4: rule "r": when: params.replcas is not a parameter of kubernetes.scale (parameters: deployment, namespace, replicas)`},
		{"when unknown param index", "rules:\n  - name: r\n    actions: [help]\n    when: has(params.x) || params[\"y\"] == 1\n    effect: allow\n", `params.x is not a parameter of help (parameters: )`},
		{"when block line", "rules:\n  - name: r\n    when: |\n      action == \"help\" &&\n      nope\n    effect: allow\n", `p.yaml:5: rule "r": when: undeclared reference to 'nope'`},
		{"when list", "rules:\n  - name: r\n    when: [a]\n    effect: allow\n", `p.yaml:3: rule "r": when: want text, got a list`},
		{"ttl on allow", "rules:\n  - name: r\n    effect: allow\n    ttl: 5m\n", `p.yaml:4: rule "r": ttl applies only to effect confirm, not allow`},
		{"approvers on deny", "rules:\n  - name: r\n    effect: deny\n    approvers: [requester]\n", `p.yaml:4: rule "r": approvers applies only to effect confirm, not deny`},
		{"distinct on allow", "rules:\n  - name: r\n    effect: allow\n    distinct_approver: true\n", `p.yaml:4: rule "r": distinct_approver applies only to effect confirm`},
		{"ttl unparseable", "rules:\n  - name: r\n    effect: confirm\n    ttl: soon\n", `p.yaml:4: rule "r": ttl: invalid duration "soon"`},
		{"ttl too long", "rules:\n  - name: r\n    effect: confirm\n    ttl: 2d\n", `p.yaml:4: rule "r": ttl 2d is longer than the maximum 1d`},
		{"ttl too short", "rules:\n  - name: r\n    effect: confirm\n    ttl: 500ms\n", `p.yaml:4: rule "r": ttl 500ms is too short`},
		{"distinct not bool", "rules:\n  - name: r\n    effect: confirm\n    approvers: [console:bob]\n    distinct_approver: yes\n", `p.yaml:5: rule "r": distinct_approver: want true or false`},
		{"distinct with requester only", "rules:\n  - name: r\n    effect: confirm\n    approvers: [requester]\n    distinct_approver: true\n", `p.yaml:5: rule "r": distinct_approver with approvers [requester] can never be satisfied`},
		{"distinct default approvers", "rules:\n  - name: r\n    effect: confirm\n    distinct_approver: true\n", `p.yaml:4: rule "r": distinct_approver with approvers [requester] can never be satisfied`},
		{"distinct with requester among others", "groups: {sre: []}\nrules:\n  - name: r\n    effect: confirm\n    approvers: [requester, group:sre]\n    distinct_approver: true\n", `p.yaml:6: rule "r": distinct_approver excludes the requester`},
		{"approver unknown group", "rules:\n  - name: r\n    effect: confirm\n    approvers: [group:sre]\n", `p.yaml:4: rule "r": approvers: unknown group "sre"`},
		{"approver wildcard", "rules:\n  - name: r\n    effect: confirm\n    approvers: [\"*\"]\n", `p.yaml:4: rule "r": approvers: * would let anyone confirm`},
		{"approver malformed", "rules:\n  - name: r\n    effect: confirm\n    approvers: [bob]\n", `p.yaml:4: rule "r": approvers: "bob": want platform:id`},
		{"approvers empty", "rules:\n  - name: r\n    effect: confirm\n    approvers: []\n", `p.yaml:4: rule "r": approvers: empty list`},
		{"reason not text", "rules:\n  - name: r\n    effect: deny\n    reason: [a]\n", `p.yaml:4: rule "r": reason: want text`},
		{"group bad name", "groups:\n  \"s re\": [console:a]\n" + minimal, `p.yaml:2: groups: "s re" is not a valid group name`},
		{"group not a list", "groups:\n  sre: console:alice\n" + minimal, `p.yaml:2: group sre: want a list, got "console:alice"`},
		{"group nested", "groups:\n  a: [console:x]\n  b: [group:a]\n" + minimal, `p.yaml:3: group b: "group:a": groups cannot contain groups`},
		{"group wildcard member", "groups:\n  a: [\"*\"]\n" + minimal, `p.yaml:2: group a: * cannot be a member`},
		{"group bad member", "groups:\n  a: [slack:u123]\n" + minimal, `p.yaml:2: group a: member "slack:u123": slack ids are upper-case`},
		{"group duplicate", "groups:\n  a: [console:x]\n  a: [console:y]\n" + minimal, `p.yaml:3: groups: key "a" given twice`},
		{"groups a list", "groups: [a]\n" + minimal, `p.yaml:1: groups: want a mapping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(tt.src), "p.yaml", builtin.Specs(), testPlatforms)
			if err == nil {
				t.Fatalf("Parse succeeded (%d rules), want error containing %q", len(p.Explain(policy.Input{}).Rules), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
			var pe *policy.Error
			if !errors.As(err, &pe) || pe.File != "p.yaml" {
				t.Fatalf("error %v is not a *policy.Error for p.yaml", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := `groups:
  sre: [console:alice, discord:bob]
rules:
  - name: x
    subjects: [group:sra]
    effect: allow
    ttl: 5m
default: maybe
`
	_, err := policy.Parse([]byte(src), "p.yaml", builtin.Specs(), testPlatforms)
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"p.yaml:2:", "p.yaml:5:", "p.yaml:7:", "p.yaml:8:"}
	if len(lines) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestParseCapsProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("rules:\n")
	for range 30 {
		b.WriteString("  - name: r\n    effect: nope\n")
	}
	_, err := policy.Parse([]byte(b.String()), "p.yaml", builtin.Specs(), testPlatforms)
	if err == nil || !strings.Contains(err.Error(), "more problems") {
		t.Fatalf("want a capped problem list, got %v", err)
	}
}

func TestParseRejectsAliasBomb(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for i := range 8 {
		name := string(rune('b' + i))
		src += name + ": &" + name + " [*" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + ", *" + prev + "]\n"
		prev = name
	}
	src = "groups:\n  " + strings.ReplaceAll(strings.TrimSpace(src), "\n", "\n  ") + "\n" + minimal
	_, err := policy.Parse([]byte(src), "p.yaml", builtin.Specs(), testPlatforms)
	if err == nil {
		t.Fatal("Parse succeeded on an alias bomb")
	}
	if !strings.Contains(err.Error(), "too large") && !strings.Contains(err.Error(), "member") {
		t.Fatalf("unexpected error: %v", err)
	}
}

func TestParseAcceptsAliasesAndDefaults(t *testing.T) {
	src := `
groups:
  sre: &ops [console:alice, slack-group:S0614TZR7]
  oncall: *ops
  empty: []
rules:
  - name: ops changes
    subjects: [group:oncall]
    actions: &changes [kubernetes.scale, kubernetes.restart]
    effect: confirm
  - name: reads
    actions: ["*"]
    effect: allow
`
	p, err := policy.Parse([]byte(src), "", builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	if p.File() != "policy" {
		t.Errorf("File() = %q, want the placeholder name", p.File())
	}
	if p.Default() != policy.Deny {
		t.Errorf("Default() = %s, want deny when omitted", p.Default())
	}
	d := p.Decide(policy.Input{Subject: "slack:U1", Groups: []string{"slack-group:S0614TZR7"}, Action: "kubernetes.scale",
		Params: map[string]any{"deployment": "x", "namespace": "prod", "replicas": 1}})
	if d.Effect != policy.Confirm || d.TTL != policy.DefaultTTL || len(d.Approvers) != 1 || d.Approvers[0] != policy.Requester {
		t.Errorf("confirm without approvers/ttl = %+v, want requester and the default TTL", d)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(path, []byte(minimal+"  - name: bad\n    effect: nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(path, builtin.Specs(), testPlatforms); err == nil || !strings.HasPrefix(err.Error(), path+":7: ") {
		t.Fatalf("Load error = %v, want it to start with %s:7:", err, path)
	}
	if err := os.WriteFile(path, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Load(path, builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatal(err)
	}
	if p.File() != path {
		t.Errorf("File() = %q, want %q", p.File(), path)
	}
	if _, err := policy.Load(filepath.Join(dir, "missing.yaml"), builtin.Specs(), testPlatforms); err == nil {
		t.Error("Load of a missing file succeeded")
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", 2<<20)+"\n"+minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := policy.Load(big, builtin.Specs(), testPlatforms); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Load of a huge file = %v, want a size error", err)
	}
}

func TestTTLParsed(t *testing.T) {
	p := mustParse(t, `
groups: {sre: [console:alice]}
rules:
  - name: r
    effect: confirm
    approvers: [group:sre]
    ttl: 1h30m
`)
	d := p.Decide(policy.Input{Subject: "console:alice", Action: "kubernetes.restart"})
	if d.TTL != 90*time.Minute {
		t.Errorf("TTL = %v, want 1h30m", d.TTL)
	}
}

func mustParse(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(src), "test.yaml", builtin.Specs(), testPlatforms)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}
