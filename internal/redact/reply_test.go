package redact

import (
	"reflect"
	"strings"
	"testing"

	"github.com/parley-chatops/parley/internal/chat"
)

func TestReply(t *testing.T) {
	header := "Authorization: Bearer " + strings.Repeat("Zm9vYmFy", 3)
	in := chat.Reply{
		Platform: "slack", Channel: "C1", Thread: "1.2", UpdateOf: "3.4", Kind: chat.KindInfo,
		Text:    "curl failed with " + header,
		Fields:  []chat.Field{{Label: "token " + randomish, Value: "password=hunter2"}},
		Table:   &chat.Table{Header: []string{"key", ghToken}, Rows: [][]string{{"a", slackBot}, {"b", "ok"}}},
		Code:    "export OPENAI_API_KEY=" + openAIKey,
		Context: []string{"audit #4", "via " + awsKeyID},
		Buttons: []chat.Button{{Label: "Use " + slackApp, Action: "run", Value: "opaque-" + ghToken}},
		Images:  []chat.Image{{Name: "c.png", AltText: "chart for " + jwt, Data: []byte("PNG")}},
	}
	orig := in
	origRows := [][]string{append([]string(nil), in.Table.Rows[0]...), append([]string(nil), in.Table.Rows[1]...)}
	out := Reply(in)
	text := render(out)
	for _, secret := range []string{strings.Repeat("Zm9vYmFy", 3), randomish, "hunter2", ghToken, slackBot, openAIKey, awsKeyID, slackApp, jwt} {
		if strings.Contains(text, secret) {
			t.Errorf("secret %q survived in the visible text:\n%s", secret, text)
		}
	}
	if got := out.Buttons[0].Value; got != "opaque-"+ghToken {
		t.Errorf("button value = %q; a value is an opaque reference and must be kept", got)
	}
	if out.Platform != "slack" || out.Channel != "C1" || out.Thread != "1.2" || out.UpdateOf != "3.4" || out.Kind != chat.KindInfo ||
		string(out.Images[0].Data) != "PNG" || out.Images[0].Name != "c.png" || out.Buttons[0].Action != "run" {
		t.Errorf("ids, kind or data changed: %+v", out)
	}
	if out.Table.Rows[1][1] != "ok" || out.Fields[0].Label != "token [REDACTED]" {
		t.Errorf("table or field = %+v %+v", out.Table, out.Fields)
	}
	// The caller's reply is not modified.
	if !reflect.DeepEqual(in.Table.Rows, origRows) || in.Text != orig.Text || in.Fields[0].Value != "password=hunter2" || in.Buttons[0].Label != orig.Buttons[0].Label {
		t.Error("Reply modified its argument")
	}
	if z := Reply(chat.Reply{}); !reflect.DeepEqual(z, chat.Reply{}) {
		t.Errorf("Reply of the zero reply = %+v", z)
	}
}

func render(r chat.Reply) string {
	var b strings.Builder
	b.WriteString(r.Text + "\n" + r.Code + "\n")
	for _, f := range r.Fields {
		b.WriteString(f.Label + "=" + f.Value + "\n")
	}
	b.WriteString(strings.Join(r.Table.Header, "|") + "\n")
	for _, row := range r.Table.Rows {
		b.WriteString(strings.Join(row, "|") + "\n")
	}
	b.WriteString(strings.Join(r.Context, "\n"))
	for _, btn := range r.Buttons {
		b.WriteString(btn.Label + "\n")
	}
	for _, img := range r.Images {
		b.WriteString(img.AltText + "\n")
	}
	return b.String()
}
