package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chatops/parley/internal/store"
	"github.com/parley-chatops/parley/internal/telemetry"
)

const operationsDoc = "../../docs/operations.md"

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docCommands are the parley command lines in the document's shell blocks
// (also after "kubectl exec ... --"), as argument lists.
func docCommands(t *testing.T, doc string) [][]string {
	t.Helper()
	var out [][]string
	inBlock := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "```") {
			inBlock = !inBlock
			continue
		}
		if !inBlock {
			continue
		}
		line, _, _ = strings.Cut(line, "#")
		line, _, _ = strings.Cut(line, ">")
		fields := strings.Fields(line)
		for i, f := range fields {
			// The program: first on the line, or after kubectl exec's "--".
			if f == "parley" && (i == 0 || fields[i-1] == "--") && i+1 < len(fields) && regexp.MustCompile(`^[a-z]+$`).MatchString(fields[i+1]) {
				out = append(out, fields[i+1:])
				break
			}
		}
	}
	return out
}

// Every parley command the operations guide shows exists, with every flag
// it uses: the guide cannot drift from the binary unnoticed.
func TestOperationsDocCommandsExist(t *testing.T) {
	cmds := docCommands(t, readDoc(t))
	if len(cmds) < 15 {
		t.Fatalf("only %d parley commands found in %s", len(cmds), operationsDoc)
	}
	seen := map[string]bool{}
	for _, args := range cmds {
		cmd := []string{args[0]}
		if len(args) > 1 && !strings.HasPrefix(args[1], "-") && (args[0] == "audit" || args[0] == "config" || args[0] == "eval" || args[0] == "policy") {
			cmd = append(cmd, args[1])
		}
		var stderr bytes.Buffer
		code := Main(context.Background(), append(append([]string{}, cmd...), "-h"), Env{Stdout: &bytes.Buffer{}, Stderr: &stderr, Getenv: func(string) string { return "" }})
		if code != 0 {
			t.Errorf("parley %s -h: exit %d: %s", strings.Join(cmd, " "), code, stderr.String())
			continue
		}
		seen[strings.Join(cmd, " ")] = true
		for _, a := range args {
			if !strings.HasPrefix(a, "--") {
				continue
			}
			flag, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(flag) + `\b`).MatchString(stderr.String()) {
				t.Errorf("the guide uses parley %s --%s, which the command does not have", strings.Join(cmd, " "), flag)
			}
		}
	}
	for _, want := range []string{"audit verify", "audit export", "backup", "restore", "healthcheck"} {
		if !seen[want] {
			t.Errorf("the guide shows no parley %s", want)
		}
	}
}

// The metric table is the exported metrics, no more and no less.
func TestOperationsDocMetrics(t *testing.T) {
	ch := make(chan *prometheus.Desc, 128)
	go func() {
		telemetry.New(telemetry.Options{}).Registry().Describe(ch)
		close(ch)
	}()
	nameRE := regexp.MustCompile(`fqName: "([^"]+)"`)
	var exported []string
	for d := range ch {
		if m := nameRE.FindStringSubmatch(d.String()); m != nil {
			exported = append(exported, m[1])
		}
	}
	var documented []string
	row := regexp.MustCompile("(?m)^\\| `(parley_[a-z_]+)` \\| (counter|gauge|histogram) \\|")
	for _, m := range row.FindAllStringSubmatch(readDoc(t), -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(exported)
	slices.Sort(documented)
	if len(exported) < 10 || !slices.Equal(exported, documented) {
		t.Errorf("metrics exported:\n%v\ndocumented in %s:\n%v", exported, operationsDoc, documented)
	}
}

// Every alert of the chart is explained, and the migration table is the
// schema Parley creates.
func TestOperationsDocAlertsAndMigrations(t *testing.T) {
	doc := readDoc(t)
	rules, err := os.ReadFile(filepath.Join(chartDir, "templates", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`- alert: (\w+)`).FindAllStringSubmatch(string(rules), -1)
	if len(alerts) < 4 {
		t.Fatalf("only %d alerts in the chart", len(alerts))
	}
	for _, a := range alerts {
		if !strings.Contains(doc, "| `"+a[1]+"` |") {
			t.Errorf("alert %s is not explained in %s", a[1], operationsDoc)
		}
	}

	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var v int
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			t.Fatal(err)
		}
		n++
		if want := "| " + strconv.Itoa(v) + " | " + name + " |"; !strings.Contains(doc, want) {
			t.Errorf("migration %d (%s) is not in the upgrade table of %s", v, name, operationsDoc)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n == 0 || strings.Contains(doc, "| "+strconv.Itoa(n+1)+" | ") {
		t.Errorf("the upgrade table does not end at version %d", n)
	}
}
