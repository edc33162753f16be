package slack

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/parley-chatops/parley/adapters/chattest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/chat"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestRenderGolden(t *testing.T) {
	var long []string
	for i := range 2000 {
		long = append(long, fmt.Sprintf("2026-11-27T03:%02d:%02dZ level=error msg=\"payment declined\" order=%d", i/60%60, i%60, 100000+i))
	}
	cases := map[string]chat.Reply{
		"status": {
			Kind: chat.KindInfo,
			Text: "**checkout** (prod): 3/3 ready",
			Fields: []chat.Field{
				{Label: "image", Value: "shop/checkout:1.4.2"}, {Label: "revision", Value: "4"},
				{Label: "age", Value: "3d"},
			},
			Table: &chat.Table{Header: []string{"pod", "ready", "restarts"}, Rows: [][]string{
				{"checkout-7d9f-abcde", "1/1", "0"}, {"checkout-7d9f-fghij", "1/1", "2"}, {"checkout-7d9f-klmno", "1/1", "0"},
			}},
			Context: []string{"[audit #3]", "rules router 0.97"},
		},
		"confirm": {
			Kind: chat.KindConfirm,
			Text: "This changes prod: checkout replicas 3 -> 5. Another member of *sre* must confirm within 10m, or reply \"cancel K7Q2\".",
			Buttons: []chat.Button{
				{Label: "Confirm", Style: "primary", Action: "confirm", Value: "c0ffee42"},
				{Label: "Cancel", Style: "danger", Action: "cancel", Value: "c0ffee42"},
			},
			Context: []string{"[audit #7] [confirmation c0ffee42]"},
		},
		"denied": {
			Kind:    chat.KindDenied,
			Text:    "You may not restart payments in prod (rule \"prod changes need a second sre\"). Nothing was run.",
			Context: []string{"[audit #12]"},
		},
		"long-output": {
			Kind: chat.KindSuccess,
			Text: "Error logs for payments, last 1h (2000 lines):",
			Code: strings.Join(long, "\n"),
		},
		"escaping": {
			Kind: chat.KindError,
			Text: "Cannot parse `a<b && c>d` for <@U1> & <!here>; see [the docs](https://example.com/docs?a=1&b=2) ~~old~~",
		},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			checkGolden(t, name, Render(r))
		})
	}
	t.Run("audit-trail", func(t *testing.T) {
		checkGolden(t, "audit-trail", RenderTrail([]string{
			`#1 10:00:00 message.received slack:U1 "<@UBOT> scale checkout to 5 in prod"`,
			"#2 10:00:00 intent.routed kubernetes.scale deployment=checkout namespace=prod replicas=5 (rules 0.97)",
			`#3 10:00:00 policy.decided → confirm (rule "prod changes need a second sre")`,
		}))
	})
}

func checkGolden(t *testing.T, name string, msg Message) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // readable golden files; the same JSON values
	enc.SetIndent("", "  ")
	if err := enc.Encode(msg); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./adapters/slack -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s; run go test ./adapters/slack -update and review the diff\ngot:\n%s", name, path, got)
	}
}

// TestRenderLimits checks every rendered message against Slack's limits.
func TestRenderLimits(t *testing.T) {
	var fields []chat.Field
	for i := range 25 {
		fields = append(fields, chat.Field{Label: fmt.Sprintf("f%d", i), Value: strings.Repeat("v", 2500)})
	}
	var buttons []chat.Button
	for i := range 30 {
		buttons = append(buttons, chat.Button{Label: strings.Repeat("L", 100), Action: "run", Value: fmt.Sprint(i)})
	}
	var rows [][]string
	for i := range 500 {
		rows = append(rows, []string{fmt.Sprint(i), strings.Repeat("é", 40)})
	}
	r := chat.Reply{
		Text:    strings.Repeat("a very long line with & and < ", 400) + "\n" + strings.Repeat("line\n", 3000),
		Fields:  fields,
		Table:   &chat.Table{Header: []string{"n", "name"}, Rows: rows},
		Code:    strings.Repeat("x", 10000),
		Buttons: buttons,
		Context: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"},
	}
	msg := Render(r)
	if len(msg.Blocks) > maxBlocks {
		t.Errorf("%d blocks", len(msg.Blocks))
	}
	if len(msg.Text) > maxMessageText {
		t.Errorf("text of %d bytes", len(msg.Text))
	}
	data, _ := json.Marshal(msg.Blocks)
	var blocks []map[string]any
	if err := json.Unmarshal(data, &blocks); err != nil {
		t.Fatal(err)
	}
	sawCut, actionIDs := false, map[string]bool{}
	for _, b := range blocks {
		if txt, ok := b["text"].(map[string]any); ok {
			if n := len(txt["text"].(string)); n > maxSectionText {
				t.Errorf("section text of %d bytes", n)
			}
		}
		if fs, ok := b["fields"].([]any); ok {
			if len(fs) > maxFieldsPerSection {
				t.Errorf("%d fields in a section", len(fs))
			}
			for _, f := range fs {
				if n := len(f.(map[string]any)["text"].(string)); n > maxFieldText {
					t.Errorf("field of %d bytes", n)
				}
			}
		}
		if b["type"] == "context" {
			els := b["elements"].([]any)
			if len(els) > maxContextElements {
				t.Errorf("%d context elements", len(els))
			}
			if strings.Contains(els[0].(map[string]any)["text"].(string), "more lines cut") {
				sawCut = true
			}
		}
		if b["type"] == "actions" {
			els := b["elements"].([]any)
			if len(els) > maxButtonsPerBlock {
				t.Errorf("%d buttons in a block", len(els))
			}
			for _, e := range els {
				id := e.(map[string]any)["action_id"].(string)
				if actionIDs[id] {
					t.Errorf("action id %s repeated", id)
				}
				actionIDs[id] = true
			}
		}
	}
	if !sawCut {
		t.Error("no '… N more lines cut' note")
	}
	if len(actionIDs) != 30 {
		t.Errorf("%d buttons rendered, want 30", len(actionIDs))
	}
}

func TestMrkdwn(t *testing.T) {
	for in, want := range map[string]string{
		"**bold** and *kept*":            "*bold* and *kept*",
		"a & b < c > d":                  "a &amp; b &lt; c &gt; d",
		"<!channel> <@U1>":               "&lt;!channel&gt; &lt;@U1&gt;",
		"`**not bold**` **bold**":        "`**not bold**` *bold*",
		"[docs](https://x.io/a?b=1&c=2)": "<https://x.io/a?b=1&amp;c=2|docs>",
		"~~gone~~":                       "~gone~",
		"unclosed ` **b**":               "unclosed ` *b*",
	} {
		if got := mrkdwn(in); got != want {
			t.Errorf("mrkdwn(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeActionIDs(t *testing.T) {
	a, err := New(Options{BotToken: chattest.SlackBotToken, AppToken: chattest.SlackAppToken})
	if err != nil {
		t.Fatal(err)
	}
	msg := Render(chat.Reply{Buttons: []chat.Button{{Action: "run", Value: "1"}, {Action: "run", Value: "2"}}})
	data, _ := json.Marshal(msg.Blocks)
	if !strings.Contains(string(data), `"parley_run#1"`) {
		t.Fatalf("second run button id: %s", data)
	}
	ins, err := a.decodeActions([]byte(chattest.SlackClick("U1", "C1", "1.1", "", "parley_run#1", "2", "2.2")))
	if err != nil || len(ins) != 1 || ins[0].msg.Action.Action != "run" || ins[0].msg.Action.Value != "2" {
		t.Fatalf("decode = %+v, %v", ins, err)
	}
}

func TestLRU(t *testing.T) {
	l := newLRU(3)
	if !l.add("a") || l.add("a") {
		t.Fatal("a")
	}
	// Seeing one key of a message remembers its other keys too.
	if l.add("a", "b") || l.add("b") {
		t.Fatal("b should be known through a")
	}
	l.add("c")
	l.add("d") // evicts the least recent
	if got := l.order.Len(); got != 3 {
		t.Fatalf("len %d", got)
	}
	l.forget("d")
	if !l.add("d") {
		t.Fatal("forgotten key still known")
	}
}

// A read that succeeded but reports an unready target is never styled as
// a success.
func TestUnhealthyResultsAreNotCheckMarks(t *testing.T) {
	for kind, want := range map[chat.ReplyKind]string{
		chat.KindAttention: ":red_circle: ",
		chat.KindProgress:  ":hourglass_flowing_sand: ",
		chat.KindSuccess:   ":white_check_mark: ",
	} {
		m := Render(chat.Reply{Kind: kind, Text: "web (prod): 0/4 ready", Fields: []chat.Field{{Label: "Ready", Value: "0"}}})
		if !strings.HasPrefix(m.Text, want) {
			t.Errorf("%s: text %q, want prefix %q", kind, m.Text, want)
		}
		if kind != chat.KindSuccess && strings.Contains(m.Text, "white_check_mark") {
			t.Errorf("%s rendered with a check mark", kind)
		}
	}
}
