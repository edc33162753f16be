package discord

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/parley-chatops/parley/internal/chat"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenReplies are representative replies; their rendered JSON (the body
// Discord receives) is kept in testdata/NAME.json.
func goldenReplies() map[string]chat.Reply {
	long := make([]string, 300)
	for i := range long {
		long[i] = fmt.Sprintf("2026-07-01T10:%02d:%02dZ error payments-7d9f  upstream timeout calling ledger (attempt %d)", i/60, i%60, i)
	}
	return map[string]chat.Reply{
		"status": {
			Kind: chat.KindInfo, Text: "*checkout* (prod): 3/3 ready",
			Fields: []chat.Field{{Label: "Image", Value: "shop/checkout:1.4.2"}, {Label: "Revision", Value: "4"}, {Label: "Restarts (1h)", Value: "0"}},
			Table: &chat.Table{Header: []string{"POD", "READY", "AGE"}, Rows: [][]string{
				{"checkout-7d9f-abcde", "1/1", "2d"}, {"checkout-7d9f-fghij", "1/1", "2d"}, {"checkout-7d9f-klmno", "1/1", "5h"},
			}},
			Context: []string{"audit #41", "kubernetes.status", "rules router"},
		},
		"confirm": {
			Kind: chat.KindConfirm,
			Text: `This changes prod: checkout replicas 3 -> 5. A member of sre other than you must reply "confirm K7Q2" within 10m, or "cancel".`,
			Buttons: []chat.Button{
				{Label: "Confirm", Style: "primary", Action: "confirm", Value: "cf-01J1Z8"},
				{Label: "Cancel", Style: "danger", Action: "cancel", Value: "cf-01J1Z8"},
			},
		},
		"denied": {
			Kind: chat.KindDenied, Text: "You may not run *kubernetes.scale* in discord:1130000000000000200 (rule: default deny). Nothing was run.",
			Context: []string{"audit #42"},
		},
		"long_output": {
			Kind: chat.KindInfo, Text: strings.Repeat("Many errors in payments over the last hour. ", 60),
			Code: strings.Join(long, "\n"), Context: []string{"loki.query", "300 lines"},
		},
		"eval_result": {
			Kind: chat.KindSuccess, Text: "Evaluation run 7 finished: *intent-routing*, prompt-v2 against baseline.",
			Fields: []chat.Field{{Label: "Accuracy", Value: "0.943 (+0.021)"}, {Label: "Unsafe", Value: "0"}, {Label: "Cost", Value: "$1.84"}, {Label: "Duration", Value: "4m12s"}},
			Table: &chat.Table{Header: []string{"action", "baseline", "prompt-v2"}, Rows: [][]string{
				{"kubernetes.scale", "0.95", "0.97"}, {"prometheus.query", "0.90", "0.94"}, {"none", "0.88", "0.91"},
			}},
			Images:  []chat.Image{{Name: "intent-routing run 7.png", ContentType: "image/png", Data: []byte("\x89PNG\r\n\x1a\nfake"), AltText: "accuracy per action"}},
			Buttons: []chat.Button{{Label: "Compare with run 6", Action: "run", Value: "eval status run:6"}},
			Context: []string{"audit #57", "evaluation.run", "confirmed by discord:80351110224678912"},
		},
	}
}

type golden struct {
	Message json.RawMessage `json:"message"`
	Files   []string        `json:"files,omitempty"`
}

func TestRenderGolden(t *testing.T) {
	for name, r := range goldenReplies() {
		t.Run(name, func(t *testing.T) {
			m := render(r)
			send := m.messageSend(nil)
			checkLimits(t, send.Content, send.Embeds)
			var files []string
			for _, f := range send.Files {
				files = append(files, f.Name+" "+f.ContentType)
			}
			body, err := json.Marshal(send)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, name+".json", golden{Message: body, Files: files})
		})
	}
	// The interaction follow-up of the confirmation prompt.
	body, err := json.Marshal(render(goldenReplies()["confirm"]).webhookParams())
	if err != nil {
		t.Fatal(err)
	}
	compareGolden(t, "confirm_followup.json", golden{Message: body})
}

func compareGolden(t *testing.T, name string, g golden) {
	t.Helper()
	got, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./adapters/discord -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test ./adapters/discord -update and review the diff):\n%s", name, got)
	}
}

// checkLimits asserts Discord's size limits on a rendered message.
func checkLimits(t *testing.T, content string, embeds []*discordgo.MessageEmbed) {
	t.Helper()
	if n := utf8.RuneCountInString(content); n > maxContent {
		t.Errorf("content is %d characters, limit %d", n, maxContent)
	}
	for _, e := range embeds {
		total := utf8.RuneCountInString(e.Title) + utf8.RuneCountInString(e.Description)
		if n := utf8.RuneCountInString(e.Description); n > maxDescription {
			t.Errorf("description is %d characters, limit %d", n, maxDescription)
		}
		if len(e.Fields) > maxFields {
			t.Errorf("%d fields, limit %d", len(e.Fields), maxFields)
		}
		for _, f := range e.Fields {
			if utf8.RuneCountInString(f.Name) > maxFieldName || utf8.RuneCountInString(f.Value) > maxFieldValue || f.Name == "" || f.Value == "" {
				t.Errorf("field %q=%q breaks the field limits", f.Name, f.Value)
			}
			total += utf8.RuneCountInString(f.Name) + utf8.RuneCountInString(f.Value)
		}
		if e.Footer != nil {
			total += utf8.RuneCountInString(e.Footer.Text)
		}
		if total > maxEmbedTotal {
			t.Errorf("embed is %d characters, limit %d", total, maxEmbedTotal)
		}
		if strings.Count(e.Description, "```")%2 != 0 {
			t.Errorf("description leaves a code block open: %q", e.Description)
		}
	}
}

func TestRenderCutsToLimits(t *testing.T) {
	var fields []chat.Field
	for i := range 60 {
		fields = append(fields, chat.Field{Label: strings.Repeat("L", 300), Value: fmt.Sprint(strings.Repeat("v", 1100), i)})
	}
	rows := make([][]string, 400)
	for i := range rows {
		rows[i] = []string{fmt.Sprint("pod-", i), "Running", strings.Repeat("x", 40)}
	}
	r := chat.Reply{
		Text: strings.Repeat("é", 2500), Fields: fields,
		Table: &chat.Table{Header: []string{"pod", "phase", "note"}, Rows: rows},
		Code:  strings.Repeat("one very long line without breaks ", 400), Context: []string{strings.Repeat("c", 3000)},
	}
	m := render(r)
	checkLimits(t, m.Content, m.Embeds)
	if !strings.Contains(m.Content, "more characters cut") {
		t.Errorf("content cut without a note: …%s", m.Content[len(m.Content)-60:])
	}
	e := m.Embeds[0]
	if last := e.Fields[len(e.Fields)-1]; last.Name != "…" || !strings.HasSuffix(last.Value, "fields cut") {
		t.Errorf("fields cut without a note: %+v", last)
	}
	if !strings.Contains(e.Description, "more lines cut") {
		t.Errorf("table cut without a note")
	}
}

func TestCutText(t *testing.T) {
	lines := strings.TrimSuffix(strings.Repeat("0123456789\n", 10), "\n") // 10 lines, 109 chars
	for _, tc := range []struct {
		in    string
		limit int
		want  string
	}{
		{"short", 10, "short"},
		{lines, 109, lines},
		{lines, 60, "0123456789\n0123456789\n0123456789\n… 7 more lines cut"},
		{strings.Repeat("a", 50), 30, "aaaaaa… 44 more characters cut"},
	} {
		got := cutText(tc.in, tc.limit)
		if got != tc.want || utf8.RuneCountInString(got) > tc.limit {
			t.Errorf("cutText(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	for in, want := range map[string]string{
		"*checkout* is *up*":          "**checkout** is **up**",
		"keep `a*b*c` and **bold**":   "keep `a*b*c` and **bold**",
		"2*3*4 stays":                 "2*3*4 stays",
		"```\n*not bold*\n``` *bold*": "```\n*not bold*\n``` **bold**",
	} {
		if got := markdown(in); got != want {
			t.Errorf("markdown(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCustomIDRoundTrip(t *testing.T) {
	rows := buttonRows([]chat.Button{{Label: "Confirm", Action: "confirm", Value: "cf:1"}, {Label: "x", Action: "run", Value: strings.Repeat("v", 200)}})
	if len(rows) != 1 || len(rows[0].(discordgo.ActionsRow).Components) != 1 {
		t.Fatalf("rows: %+v (a custom_id over 100 characters must be dropped)", rows)
	}
	id := rows[0].(discordgo.ActionsRow).Components[0].(discordgo.Button).CustomID
	act, val, ok := parseCustomID(id)
	if !ok || act != "confirm" || val != "cf:1" {
		t.Errorf("parseCustomID(%q) = %q %q %v", id, act, val, ok)
	}
	if _, _, ok := parseCustomID("other-bot:confirm:1"); ok {
		t.Error("a foreign custom_id was accepted")
	}
}

// A read that succeeded but reports an unready target is never green.
func TestUnhealthyResultsAreNotGreen(t *testing.T) {
	for kind, want := range map[chat.ReplyKind]string{chat.KindAttention: "🔴 ", chat.KindProgress: "⏳ "} {
		m := render(chat.Reply{Kind: kind, Text: "web (prod): 0/4 ready", Fields: []chat.Field{{Label: "Ready", Value: "0"}}})
		if !strings.HasPrefix(m.Content, want) {
			t.Errorf("%s: content %q, want prefix %q", kind, m.Content, want)
		}
		if len(m.Embeds) != 1 || m.Embeds[0].Color == kindColour[chat.KindSuccess] {
			t.Errorf("%s: embed colour is the success green", kind)
		}
	}
}
