package useraction

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

// secretValue is the value tests put in the environment for secret
// references; built from parts so that no token-shaped literal is in the
// repository.
var secretValue = strings.Join([]string{"cdn", "tok", "9f8e7d6c5b4a"}, "-")

func testEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// writeDir writes files (name -> content) into a new folder.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var builtins = []string{"help", "kubernetes.scale", "prometheus.query"}

func TestLoadExamples(t *testing.T) {
	acts, err := LoadDir("../../examples/actions", Options{Builtins: builtins, Getenv: testEnv(map[string]string{"CDN_TOKEN": secretValue})})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*Action{}
	for _, a := range acts {
		got[a.Spec().Name] = a
	}
	if len(acts) != 3 || got["cdn.purge"] == nil || got["emails.drain"] == nil || got["oncall.who"] == nil {
		t.Fatalf("loaded %d actions %v; want cdn.purge, emails.drain, oncall.who (the Job template is not an action)", len(acts), got)
	}
	purge := got["cdn.purge"].Spec()
	if purge.Kind != action.Mutating || purge.Description == "" || got["cdn.purge"].Runner() != "http" {
		t.Errorf("cdn.purge spec = %+v", purge)
	}
	site, _ := purge.Param("site")
	path, _ := purge.Param("path")
	if site.Type != action.Enum || !site.Required || strings.Join(site.Enum, ",") != "shop,blog,docs" {
		t.Errorf("site = %+v; want a required enum shop, blog, docs", site)
	}
	if path.Type != action.String || path.Pattern == nil || path.Default != "/" {
		t.Errorf("path = %+v; want a string with a pattern and default /", path)
	}
	if len(purge.Examples) != 4 || purge.Examples[1].Params["path"] != "/assets" || purge.Examples[1].Params["site"] != "docs" {
		t.Errorf("examples = %+v", purge.Examples)
	}
	drain := got["emails.drain"].Spec()
	batch, _ := drain.Param("batch")
	dry, _ := drain.Param("dry_run")
	if batch.Type != action.Int || *batch.Min != 10 || *batch.Max != 5000 || batch.Default != 500 || dry.Type != action.Bool {
		t.Errorf("emails.drain params = %+v", drain.Params)
	}
	if got["emails.drain"].Runner() != "kubernetes_job" || drain.Examples[3].Params["dry_run"] != true {
		t.Errorf("emails.drain = %+v", drain)
	}
	svc, _ := got["oncall.who"].Spec().Param("service")
	if svc.Type != action.String || svc.Source != action.Services || got["oncall.who"].Spec().Kind != action.Read {
		t.Errorf("oncall.who service = %+v", svc)
	}
	// The specs go into a registry beside the built-ins like any action.
	var all []action.Action
	for _, a := range acts {
		all = append(all, a)
	}
	if _, err := action.NewRegistry(all...); err != nil {
		t.Fatal(err)
	}
	// Out-of-range values are refused before policy, saying what is allowed.
	for raw, want := range map[string]string{
		`{"site":"intranet"}`:          "site must be one of shop, blog, docs",
		`{"site":"shop","path":"a;b"}`: "path must match ^/[A-Za-z0-9/_.-]*$",
	} {
		p, _ := action.ParseParams(raw)
		if _, err := purge.Validate(p); err == nil || !errors.Is(err, action.ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(%s) = %v; want ErrInvalid saying %q", raw, err, want)
		}
	}
	if _, err := drain.Validate(map[string]any{"queue": "emails", "batch": 9999}); err == nil || !strings.Contains(err.Error(), "batch must be at most 5000") {
		t.Errorf("batch 9999: %v", err)
	}
}

// A valid action to vary in the bad-input cases.
const goodHTTP = `name: cdn.purge
summary: Purge the CDN.
kind: mutating
params:
  site: {type: string, enum: [shop, blog], required: true}
examples:
  - text: purge the cdn for shop
    params: {site: shop}
run:
  http:
    method: POST
    url: https://cdn.example.com/purge/{{ .site }}
    headers: {Authorization: {secret: {env: CDN_TOKEN}, format: "Bearer %s"}}
    json: {site: "{{ .site }}"}
reply: purged {{ .site }}
`

const goodJob = `apiVersion: batch/v1
kind: Job
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: busybox:1.36
`

func jobAction(template string) string {
	return `name: queue.drain
summary: Drain a queue.
kind: mutating
params:
  queue: {type: string, enum: [emails], required: true}
examples:
  - text: drain the emails queue
run:
  kubernetes_job: {namespace: ops, template: ` + template + `, timeout: 1m}
`
}

func TestLoadBadInput(t *testing.T) {
	env := map[string]string{"CDN_TOKEN": secretValue}
	tokenShaped := "Bearer " + strings.Repeat("a1B2", 8)
	cases := []struct {
		name  string
		files map[string]string
		want  string // file:line: message, as a regular expression
	}{
		{"unknown key", map[string]string{"a.yaml": strings.Replace(goodHTTP, "kind: mutating", "kind: mutating\nsumary: x", 1)},
			`a\.yaml:4: action: unknown key "sumary"; did you mean "summary"\?`},
		{"wrong type", map[string]string{"a.yaml": strings.Replace(goodHTTP, "required: true", `required: "yes"`, 1)},
			`a\.yaml:5: params\.site\.required: want true or false, got "yes"`},
		{"kind", map[string]string{"a.yaml": strings.Replace(goodHTTP, "kind: mutating", "kind: write", 1)},
			`a\.yaml:3: kind: "write" is not read or mutating`},
		{"clash with a built-in", map[string]string{"a.yaml": strings.Replace(goodHTTP, "cdn.purge", "kubernetes.scale", 1)},
			`a\.yaml:1: name: kubernetes\.scale is a built-in action`},
		{"clash between files", map[string]string{"a.yaml": goodHTTP, "b.yaml": goodHTTP},
			`b\.yaml:1: name: cdn\.purge is already defined in .*a\.yaml`},
		{"bad name", map[string]string{"a.yaml": strings.Replace(goodHTTP, "cdn.purge", "PurgeCDN", 1)},
			`a\.yaml:1: name: "PurgeCDN" is not a lowercase dotted name`},
		{"undotted name", map[string]string{"a.yaml": strings.Replace(goodHTTP, "cdn.purge", "purge", 1)},
			`a\.yaml:1: name: "purge" is not a lowercase dotted name`},
		{"unknown param type", map[string]string{"a.yaml": strings.Replace(goodHTTP, "type: string", "type: text", 1)},
			`a\.yaml:5: params\.site\.type: unknown type "text"`},
		{"enum on an integer", map[string]string{"a.yaml": strings.Replace(goodHTTP, "type: string", "type: integer", 1)},
			`a\.yaml:5: params\.site\.enum: only a string parameter takes an enum`},
		{"pattern on an enum", map[string]string{"a.yaml": strings.Replace(goodHTTP, "required: true}", "required: true, pattern: '^s.*$'}", 1)},
			`a\.yaml:5: params\.site\.pattern: only a string parameter takes a pattern, not an enum`},
		{"unanchored pattern", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  path: {type: string, pattern: '/[a-z]*'}\nexamples:", 1)},
			`a\.yaml:6: params\.path\.pattern: "/\[a-z\]\*" must match the whole value`},
		{"alternation is not anchored", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  path: {type: string, pattern: '^a|b$'}\nexamples:", 1)},
			`a\.yaml:6: params\.path\.pattern: .* must match the whole value`},
		{"pattern does not compile", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  path: {type: string, pattern: '^(a$'}\nexamples:", 1)},
			`a\.yaml:6: params\.path\.pattern: "\^\(a\$" does not compile`},
		{"min above max", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  n: {type: integer, min: 10, max: 5}\nexamples:", 1)},
			`a\.yaml:6: params\.n: min 10 is above max 5`},
		{"min on a string", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  n: {type: string, min: 1}\nexamples:", 1)},
			`a\.yaml:6: params\.n\.min: only an integer parameter takes min`},
		{"default outside the enum", map[string]string{"a.yaml": strings.Replace(goodHTTP, "required: true}", "default: intranet}", 1)},
			`a\.yaml:5: params\.site\.default: site must be one of shop, blog, got "intranet"`},
		{"default outside the range", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  n: {type: integer, max: 5, default: 9}\nexamples:", 1)},
			`a\.yaml:6: params\.n\.default: n must be at most 5`},
		{"required with a default", map[string]string{"a.yaml": strings.Replace(goodHTTP, "required: true}", "required: true, default: shop}", 1)},
			`a\.yaml:5: params\.site: required and has a default`},
		{"enum of booleans", map[string]string{"a.yaml": strings.Replace(goodHTTP, "enum: [shop, blog]", "enum: [shop, true]", 1)},
			`a\.yaml:5: params\.site\.enum: want text, got bool true; quote it`},
		{"reserved parameter", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:", "  response: {type: string}\nexamples:", 1)},
			`a\.yaml:6: params: "response" is reserved`},
		{"url template does not parse", map[string]string{"a.yaml": strings.Replace(goodHTTP, "{{ .site }}\n    headers", "{{ .site \n    headers", 1)},
			`a\.yaml:12: run\.http\.url: `},
		{"url names no parameter", map[string]string{"a.yaml": strings.Replace(goodHTTP, "purge/{{ .site }}", "purge/{{ .sitee }}", 1)},
			`a\.yaml:12: run\.http\.url: \.sitee is not a parameter \(known: \.site\)`},
		{"host from a parameter", map[string]string{"a.yaml": strings.Replace(goodHTTP, "https://cdn.example.com/purge/{{ .site }}", "https://{{ .site }}.example.com/purge", 1)},
			`a\.yaml:12: run\.http\.url .*: the scheme and host must be written out`},
		{"unencoded url", map[string]string{"a.yaml": strings.Replace(goodHTTP, "purge/{{ .site }}", "purge/{{ .site }}?tag=a b", 1)},
			`a\.yaml:12: run\.http\.url .*: ' ' must be percent-encoded in the URL \(a space is %20\)`},
		{"credentials in the url", map[string]string{"a.yaml": strings.Replace(goodHTTP, "https://cdn", "https://user:pw@cdn", 1)},
			`a\.yaml:12: run\.http\.url .*credentials in the URL are not allowed`},
		{"body template does not parse", map[string]string{"a.yaml": strings.Replace(goodHTTP, `json: {site: "{{ .site }}"}`, `json: {site: "{{ .site }"}`, 1)},
			`a\.yaml:14: run\.http\.json: `},
		{"body names no parameter", map[string]string{"a.yaml": strings.Replace(goodHTTP, `json: {site: "{{ .site }}"}`, `json: {site: "{{ .region }}"}`, 1)},
			`a\.yaml:14: run\.http\.json: \.region is not a parameter`},
		{"reply does not parse", map[string]string{"a.yaml": strings.Replace(goodHTTP, "reply: purged {{ .site }}", "reply: purged {{ if .site }}", 1)},
			`a\.yaml:15: reply: `},
		{"reply names no parameter", map[string]string{"a.yaml": strings.Replace(goodHTTP, "reply: purged {{ .site }}", "reply: purged {{ .path }}", 1)},
			`a\.yaml:15: reply: \.path is not a parameter \(known: \.response, \.site\)`},
		{"reply defines templates", map[string]string{"a.yaml": strings.Replace(goodHTTP, "reply: purged {{ .site }}", `reply: '{{ define "x" }}y{{ end }}z'`, 1)},
			`a\.yaml:15: reply: \{\{define\}\} and \{\{block\}\} are not supported`},
		{"no runner", map[string]string{"a.yaml": strings.Replace(goodHTTP, "  http:", "  https:", 1)},
			`a\.yaml:10: run: unknown key "https"; did you mean "http"\?`},
		{"empty run", map[string]string{"a.yaml": goodHTTP[:strings.Index(goodHTTP, "run:")] + "run: {}\n"},
			`a\.yaml:9: run: no runner; give exactly one of http, kubernetes_job`},
		{"two runners", map[string]string{"a.yaml": strings.Replace(goodHTTP, "reply:", "  kubernetes_job: {namespace: ops, template: job.yaml}\nreply:", 1), "job.yaml": goodJob},
			`a\.yaml:10: run: http and kubernetes_job: give exactly one runner`},
		{"missing url", map[string]string{"a.yaml": strings.Replace(goodHTTP, "    url: https://cdn.example.com/purge/{{ .site }}\n", "", 1)},
			`a\.yaml:11: run\.http: missing url`},
		{"missing secret env", map[string]string{"a.yaml": strings.Replace(goodHTTP, "CDN_TOKEN", "CDN_TOKEN_UNSET", 1)},
			`a\.yaml:13: run\.http\.headers\.Authorization\.secret\.env: environment variable CDN_TOKEN_UNSET is empty or unset`},
		{"relative secret file", map[string]string{"a.yaml": strings.Replace(goodHTTP, "env: CDN_TOKEN", "file: token.txt", 1)},
			`a\.yaml:13: run\.http\.headers\.Authorization\.secret\.file: "token\.txt": give the absolute path`},
		{"secret format without %s", map[string]string{"a.yaml": strings.Replace(goodHTTP, `"Bearer %s"`, `"Bearer"`, 1)},
			`a\.yaml:13: run\.http\.headers\.Authorization\.format: "Bearer" must hold %s once`},
		{"literal token", map[string]string{"a.yaml": strings.Replace(goodHTTP, `{Authorization: {secret: {env: CDN_TOKEN}, format: "Bearer %s"}}`, `{X-Purge: "`+tokenShaped+`"}`, 1)},
			`a\.yaml:13: run\.http\.headers\.X-Purge: the value looks like a credential`},
		{"literal credential header", map[string]string{"a.yaml": strings.Replace(goodHTTP, `{Authorization: {secret: {env: CDN_TOKEN}, format: "Bearer %s"}}`, `{X-Api-Key: hello}`, 1)},
			`a\.yaml:13: run\.http\.headers\.X-Api-Key: a credential header takes a secret reference`},
		{"managed header", map[string]string{"a.yaml": strings.Replace(goodHTTP, `{Authorization: {secret: {env: CDN_TOKEN}, format: "Bearer %s"}}`, `{Host: evil.example.com}`, 1)},
			`a\.yaml:13: run\.http\.headers: Host is set by Parley`},
		{"secret over plain http", map[string]string{"a.yaml": strings.Replace(goodHTTP, "https://cdn", "http://cdn", 1)},
			`a\.yaml:12: run\.http\.url: the Authorization header carries a secret, which plain http would send in clear text`},
		{"body on a GET", map[string]string{"a.yaml": strings.Replace(goodHTTP, "method: POST", "method: GET", 1)},
			`a\.yaml:14: run\.http\.json: a GET request carries no body`},
		{"read action that deletes", map[string]string{"a.yaml": strings.Replace(strings.Replace(goodHTTP, "method: POST", "method: DELETE", 1), "kind: mutating", "kind: read", 1)},
			`a\.yaml:11: run\.http\.method: a DELETE changes something, and a read action runs without confirmation`},
		{"timeout too long", map[string]string{"a.yaml": strings.Replace(goodHTTP, "reply:", "    timeout: 1h\nreply:", 1)},
			`a\.yaml:15: run\.http\.timeout: 1h is longer than the 2m allowed`},
		{"expect not a status", map[string]string{"a.yaml": strings.Replace(goodHTTP, "reply:", "    expect: [200, 700]\nreply:", 1)},
			`a\.yaml:15: run\.http\.expect: 700 is not an HTTP status`},
		{"no examples", map[string]string{"a.yaml": strings.Replace(goodHTTP, "examples:\n  - text: purge the cdn for shop\n    params: {site: shop}\n", "", 1)},
			`a\.yaml:1: missing examples`},
		{"example with an unknown parameter", map[string]string{"a.yaml": strings.Replace(goodHTTP, "params: {site: shop}", "params: {site: shop, region: eu}", 1)},
			`a\.yaml:8: examples\[0\]\.params: "region" is not a parameter of this action`},
		{"example with a bad value", map[string]string{"a.yaml": strings.Replace(goodHTTP, "params: {site: shop}", "params: {site: intranet}", 1)},
			`a\.yaml:8: examples\[0\]\.params: site must be one of shop, blog`},
		{"two documents", map[string]string{"a.yaml": goodHTTP + "---\nname: x.y\n"},
			`a\.yaml:16: one action a file: found a second YAML document`},
		{"empty file", map[string]string{"a.yaml": ""}, `a\.yaml: empty file`},
		{"invalid YAML", map[string]string{"a.yaml": "name: [a\n"}, `a\.yaml:\d+: invalid YAML`},
		{"job template is not a Job", map[string]string{"a.yaml": jobAction("deploy.yaml"),
			"deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"},
			`a\.yaml:9: run\.kubernetes_job\.template deploy\.yaml: is apps/v1 Deployment, not a batch/v1 Job`},
		{"job template fails to decode", map[string]string{"a.yaml": jobAction("job.yaml"),
			"job.yaml": strings.Replace(goodJob, "image:", "imag:", 1)},
			`a\.yaml:9: run\.kubernetes_job\.template job\.yaml: line 9: .*unknown field "spec\.template\.spec\.containers\[0\]\.imag"`},
		{"job template splices parameters", map[string]string{"a.yaml": jobAction("job.yaml"),
			"job.yaml": strings.Replace(goodJob, "busybox:1.36", `busybox:1.36
          args: ["drain {{ .queue }}"]`, 1)},
			`a\.yaml:9: run\.kubernetes_job\.template job\.yaml: holds \{\{ \}\}: a Job template is used as written`},
		{"job template sets PARLEY_ variables", map[string]string{"a.yaml": jobAction("job.yaml"),
			"job.yaml": strings.Replace(goodJob, "busybox:1.36", "busybox:1.36\n          env: [{name: PARLEY_PARAM_QUEUE, value: x}]", 1)},
			`container "main" sets PARLEY_PARAM_QUEUE: PARLEY_ variables are set by Parley`},
		{"job template without a restart policy", map[string]string{"a.yaml": jobAction("job.yaml"),
			"job.yaml": strings.Replace(goodJob, "      restartPolicy: Never\n", "", 1)},
			`restartPolicy is "": a Job needs Never \(recommended\) or OnFailure`},
		{"job template outside the folder", map[string]string{"a.yaml": jobAction("../job.yaml")},
			`a\.yaml:9: run\.kubernetes_job\.template: "\.\./job\.yaml" is outside the actions folder`},
		{"absolute job template", map[string]string{"a.yaml": jobAction("/etc/job.yaml")},
			`a\.yaml:9: run\.kubernetes_job\.template: "/etc/job\.yaml": give a path relative to the action file`},
		{"missing job template", map[string]string{"a.yaml": jobAction("nope.yaml")},
			`a\.yaml:9: run\.kubernetes_job\.template: nope\.yaml: no such file`},
		{"job namespace", map[string]string{"a.yaml": strings.Replace(jobAction("job.yaml"), "namespace: ops", "namespace: Ops_1", 1), "job.yaml": goodJob},
			`a\.yaml:9: run\.kubernetes_job\.namespace: "Ops_1" is not a namespace name`},
		{"job logs", map[string]string{"a.yaml": strings.Replace(jobAction("job.yaml"), "timeout: 1m", "timeout: 1m, logs: all", 1), "job.yaml": goodJob},
			`a\.yaml:9: run\.kubernetes_job\.logs: "all" is not tail or none`},
		{"stray manifest", map[string]string{"a.yaml": goodHTTP, "job.yaml": goodJob},
			`job\.yaml:1: this is a Kubernetes manifest, not an action file`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, tc.files)
			acts, err := LoadDir(dir, Options{Builtins: builtins, Getenv: testEnv(env)})
			if err == nil {
				t.Fatalf("loaded %d actions; want an error", len(acts))
			}
			if acts != nil {
				t.Errorf("an error and actions: %v", acts)
			}
			if !regexp.MustCompile(tc.want).MatchString(err.Error()) {
				t.Errorf("error:\n%v\nwant it to match\n%s", err, tc.want)
			}
			if !regexp.MustCompile(`^/.*\.ya?ml(:\d+)?: `).MatchString(err.Error()) {
				t.Errorf("error does not start with file[:line]: %v", err)
			}
			if strings.Contains(err.Error(), secretValue) || strings.Contains(err.Error(), tokenShaped) {
				t.Errorf("a secret is in the error: %v", err)
			}
		})
	}
}

func TestLoadReportsEveryFile(t *testing.T) {
	dir := writeDir(t, map[string]string{
		"a.yaml":       strings.Replace(goodHTTP, "kind: mutating", "kind: write", 1),
		"b.yml":        strings.Replace(strings.Replace(goodHTTP, "cdn.purge", "cdn.flush", 1), "type: string", "type: strng", 1),
		"README.md":    "not an action",
		".hidden.yaml": "not: loaded",
	})
	_, err := LoadDir(dir, Options{Getenv: testEnv(map[string]string{"CDN_TOKEN": secretValue})})
	if err == nil || !strings.Contains(err.Error(), `a.yaml:3: kind: "write"`) || !strings.Contains(err.Error(), `b.yml:5: params.site.type: unknown type "strng"; did you mean "string"?`) {
		t.Fatalf("err = %v; want both files' problems", err)
	}
	if strings.Contains(err.Error(), "README") || strings.Contains(err.Error(), "hidden") {
		t.Errorf("a file that is not an action was read: %v", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "nope"), Options{}); err == nil || !strings.Contains(err.Error(), "actions folder") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestLoadWithoutSecrets(t *testing.T) {
	dir := writeDir(t, map[string]string{"a.yaml": goodHTTP})
	// Offline commands (classify, eval routing, policy check) load the
	// specs without the secrets; the action then refuses to run.
	acts, err := LoadDir(dir, Options{NoSecrets: true, Getenv: testEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = acts[0].Run(t.Context(), action.Request{Action: "cdn.purge", Params: action.Params{"site": "shop"}})
	if err == nil || !strings.Contains(err.Error(), "secrets were not loaded (env CDN_TOKEN)") || !errors.Is(err, action.ErrNotConfigured) {
		t.Errorf("run without secrets: %v", err)
	}
}

// TestLoadConfigMapLayout: a Kubernetes ConfigMap volume holds each key as
// a symbolic link into a hidden, timestamped folder (name -> ..data/name).
// Action files and Job templates load through the links; the hidden
// folders are not read as actions.
func TestLoadConfigMapLayout(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "..2026_12_06_10_00_00.123")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"drain.yaml": jobAction("drain-job.yaml"), "drain-job.yaml": goodJob, "purge.yaml": goodHTTP}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	acts, err := LoadDir(dir, Options{Getenv: testEnv(map[string]string{"CDN_TOKEN": secretValue})})
	if err != nil {
		t.Fatal(err)
	}
	if len(acts) != 2 {
		t.Fatalf("loaded %d actions, want queue.drain and cdn.purge", len(acts))
	}
}

// TestLoadRefusesTemplateLinkOutside: a link inside the folder that leads
// out of it is refused like a path that does.
func TestLoadRefusesTemplateLinkOutside(t *testing.T) {
	outside := writeDir(t, map[string]string{"job.yaml": goodJob})
	dir := writeDir(t, map[string]string{"a.yaml": jobAction("job.yaml")})
	if err := os.Symlink(filepath.Join(outside, "job.yaml"), filepath.Join(dir, "job.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err := LoadDir(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), `a.yaml:9: run.kubernetes_job.template: "job.yaml" is outside the actions folder`) {
		t.Fatalf("err = %v", err)
	}
}
