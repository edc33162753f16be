package useraction

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/action"
)

// FuzzLoad: any bytes as an action file either load into a well-formed
// action or give errors naming the file; never a panic, never both.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"cdn-purge.yaml", "emails-drain.yaml", "oncall-who.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../examples/actions", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(goodHTTP))
	f.Add([]byte(purgeSrc))
	f.Add([]byte("name: a.b\nparams: &p {x: *p}\n"))
	f.Add([]byte("run: {http: {url: 'https://h/{{range .x}}{{end}}'}}"))
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "emails-drain-job.yaml"), []byte(goodJob), 0o644); err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(dir, "fuzz.yaml")
	env := testEnv(map[string]string{"CDN_TOKEN": secretValue})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, errs := parseFile(path, dir, data, map[string]string{"help": ""}, &Options{Getenv: env})
		if (a == nil) == (len(errs) == 0) {
			t.Fatalf("action %v and %d errors", a, len(errs))
		}
		for _, e := range errs {
			if e.File != path || strings.Contains(e.Error(), secretValue) {
				t.Fatalf("bad error %v", e)
			}
		}
		if a == nil {
			return
		}
		s := a.Spec()
		if err := s.Check(); err != nil || !nameRE.MatchString(s.Name) || s.Name == "help" || len(s.Examples) == 0 {
			t.Fatalf("loaded a bad spec %+v: %v", s, err)
		}
		if (a.http == nil) == (a.job == nil) {
			t.Fatal("not exactly one runner")
		}
		// Rendering any valid parameters never panics.
		raw := map[string]any{}
		for _, p := range s.Params {
			switch p.Type {
			case action.Int:
				if p.Min != nil {
					raw[p.Name] = *p.Min
				} else {
					raw[p.Name] = 1
				}
			case action.Enum:
				raw[p.Name] = p.Enum[0]
			case action.Bool:
				raw[p.Name] = true
			case action.Duration:
				raw[p.Name] = "5m"
			}
		}
		if p, err := s.Validate(raw); err == nil && a.http != nil {
			_, _ = a.http.render(p, a.templateData(p))
		}
	})
}
