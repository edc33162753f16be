package console

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/parley-chatops/parley/internal/chat"
)

type collect struct{ msgs []chat.Message }

func (c *collect) Handle(_ context.Context, m chat.Message) { c.msgs = append(c.msgs, m) }

func TestTranscriptParsing(t *testing.T) {
	in := strings.Join([]string{
		"# comment",
		"",
		"alice@ops: status of checkout",
		"bob@incident-42: confirm K7Q2",
		"not a transcript line",
		"eve@ops:   ",
	}, "\n")
	var out strings.Builder
	a := New(Config{In: strings.NewReader(in), Out: &out, Transcript: true})
	var c collect
	if err := a.Run(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.msgs) != 3 {
		t.Fatalf("got %d messages, want 3: %+v", len(c.msgs), c.msgs)
	}
	m := c.msgs[0]
	if m.Platform != chat.Console || m.User != "alice" || m.Channel != "ops" || m.Text != "status of checkout" {
		t.Errorf("first message = %+v", m)
	}
	if c.msgs[1].Subject() != "console:bob" || c.msgs[1].ChannelRef() != "console:incident-42" {
		t.Errorf("second message = %+v", c.msgs[1])
	}
	if c.msgs[0].EventID == c.msgs[1].EventID {
		t.Error("event ids repeat")
	}
	if !strings.Contains(out.String(), `line 5: want "user@channel: message"`) {
		t.Errorf("no error for the malformed line:\n%s", out.String())
	}
}

func TestLongLineIsCutAndMarked(t *testing.T) {
	long := strings.Repeat("x", MaxLine+100)
	a := New(Config{In: strings.NewReader(long + "\nnext\n"), Out: &strings.Builder{}, User: "alice", Channel: "ops"})
	var c collect
	if err := a.Run(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.msgs) != 2 {
		t.Fatalf("got %d messages, want 2", len(c.msgs))
	}
	if c.msgs[0].CutFrom != MaxLine+100 || len(c.msgs[0].Text) != MaxLine {
		t.Errorf("long line: CutFrom=%d len=%d", c.msgs[0].CutFrom, len(c.msgs[0].Text))
	}
	if c.msgs[1].Text != "next" || c.msgs[1].CutFrom != 0 {
		t.Errorf("line after the long one = %+v", c.msgs[1])
	}
}

func TestRender(t *testing.T) {
	got := Render(chat.Reply{
		Text:    "checkout (prod): 3/3 ready",
		Fields:  []chat.Field{{Label: "image", Value: "shop/checkout:1.4.2"}, {Label: "revision", Value: "4"}},
		Table:   &chat.Table{Header: []string{"rev", "image"}, Rows: [][]string{{"4", "shop/checkout:1.4.2"}}},
		Buttons: []chat.Button{{Label: "Confirm"}, {Label: "Cancel"}},
		Context: []string{"[audit #3]"},
	})
	for _, want := range []string{"checkout (prod): 3/3 ready\n", "  image:     shop/checkout:1.4.2\n", "rev  image", "[Confirm] [Cancel]", "[audit #3]"} {
		if !strings.Contains(got, want) {
			t.Errorf("render lacks %q:\n%s", want, got)
		}
	}
	var out strings.Builder
	a := New(Config{Out: &out})
	if _, err := a.Send(context.Background(), chat.Reply{Kind: chat.KindAudit, Text: "#1 message.received"}); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("audit step printed without --trail: %q", out.String())
	}
}

// brokenOut fails every write, as a closed pipe does.
type brokenOut struct{}

func (brokenOut) Write([]byte) (int, error) { return 0, syscall.EPIPE }

// A reply that cannot be printed is not sent: Send says so, and a
// transcript whose echo cannot be printed stops with the error.
func TestWriteFailuresAreReported(t *testing.T) {
	a := New(Config{In: strings.NewReader("alice@ops: status\n"), Out: brokenOut{}, Transcript: true, Echo: true})
	if _, err := a.Send(context.Background(), chat.Reply{Text: "hello"}); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Send to a broken output = %v, want EPIPE", err)
	}
	var c collect
	if err := a.Run(context.Background(), &c); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("Run with a broken output = %v, want EPIPE", err)
	}
	if len(c.msgs) != 0 {
		t.Errorf("handled %d messages after the echo failed, want 0", len(c.msgs))
	}
}
