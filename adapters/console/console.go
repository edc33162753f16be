// Package console is the terminal chat adapter: `parley chat` reads one
// request a line and prints Parley's replies, through exactly the same
// pipeline (policy, confirmation, audit) as Slack and Discord.
//
// Two input modes:
//   - interactive: every line comes from one user in one channel (--as, --channel);
//   - transcript: every line is "user@channel: message", so a script can play a
//     conversation between several people (tests, demos).
package console

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parley-chatops/parley/internal/chat"
)

// MaxLine is the longest input line the adapter reads whole. Longer lines
// are cut here and passed on marked as truncated so the pipeline can refuse
// them with a clear answer instead of the adapter failing.
const MaxLine = 4 << 20

// Config configures the console adapter.
type Config struct {
	In         io.Reader
	Out        io.Writer
	User       string // interactive mode: the user id (console:USER)
	Channel    string // interactive mode: the channel id (console:CHANNEL)
	Transcript bool   // lines are "user@channel: message"
	Prompt     bool   // print "> " before reading (interactive terminals)
	Echo       bool   // echo each input line (transcripts)
	Trail      bool   // print audit-trail steps as they happen
	Now        func() time.Time
}

// Adapter is the console adapter.
type Adapter struct {
	cfg Config
	mu  sync.Mutex // serialises writes to Out
	n   int        // message ids
}

// New returns a console adapter.
func New(cfg Config) *Adapter {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.User == "" {
		cfg.User = "alice"
	}
	if cfg.Channel == "" {
		cfg.Channel = "ops"
	}
	return &Adapter{cfg: cfg}
}

// Name implements chat.Adapter.
func (a *Adapter) Name() string { return chat.Console }

// Run reads lines until EOF or ctx ends, handing each to h in order. Each
// message is handled before the next line is read, so a transcript plays
// deterministically.
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	r := bufio.NewReaderSize(a.cfg.In, 64<<10)
	lineNo := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil
		}
		if a.cfg.Prompt {
			if err := a.write("> "); err != nil {
				return err
			}
		}
		line, size, err := readLine(r, MaxLine)
		if errors.Is(err, io.EOF) && line == "" {
			return nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("console: read: %w", err)
		}
		lineNo++
		msg, ok, perr := a.parse(line, lineNo)
		if perr != nil {
			if err := a.write(fmt.Sprintf("line %d: %v\n", lineNo, perr)); err != nil {
				return err
			}
			continue
		}
		if !ok {
			continue
		}
		if size > len(line) {
			msg.CutFrom = size
		}
		if a.cfg.Echo {
			if err := a.write(fmt.Sprintf("%s@%s> %s\n", msg.User, msg.Channel, preview(msg.Text, 200))); err != nil {
				return err
			}
		}
		h.Handle(ctx, msg)
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

func (a *Adapter) parse(line string, lineNo int) (chat.Message, bool, error) {
	line = strings.TrimRight(line, "\r\n")
	user, channel, text := a.cfg.User, a.cfg.Channel, line
	if a.cfg.Transcript {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			return chat.Message{}, false, nil
		}
		head, rest, ok := strings.Cut(line, ":")
		u, c, ok2 := strings.Cut(strings.TrimSpace(head), "@")
		if !ok || !ok2 || !validID(u) || !validID(c) {
			return chat.Message{}, false, fmt.Errorf(`want "user@channel: message", got %q`, preview(line, 60))
		}
		user, channel, text = u, c, strings.TrimPrefix(rest, " ")
	}
	a.n++
	return chat.Message{
		Platform: chat.Console,
		Channel:  channel,
		Thread:   channel,
		User:     user,
		UserName: user,
		Text:     text,
		EventID:  "console-" + strconv.Itoa(lineNo),
		Time:     a.cfg.Now(),
	}, true, nil
}

func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// readLine reads one line, keeping at most max bytes of it; size is the
// whole line's length.
func readLine(r *bufio.Reader, max int) (line string, size int, err error) {
	var b strings.Builder
	for {
		chunk, isPrefix, err := r.ReadLine()
		size += len(chunk)
		if room := max - b.Len(); room > 0 {
			b.Write(chunk[:min(room, len(chunk))])
		}
		if err != nil {
			return b.String(), size, err
		}
		if !isPrefix {
			return b.String(), size, nil
		}
	}
}

// Send implements chat.Sender: it prints the reply as text.
func (a *Adapter) Send(_ context.Context, r chat.Reply) (string, error) {
	if r.Kind == chat.KindAudit && !a.cfg.Trail {
		return "", nil
	}
	if err := a.write(Render(r)); err != nil {
		return "", err
	}
	a.mu.Lock()
	a.n++
	id := "console-reply-" + strconv.Itoa(a.n)
	a.mu.Unlock()
	return id, nil
}

// write prints s. Its error (a closed pipe, a full disk) is the caller's:
// a reply that could not be printed was not sent.
func (a *Adapter) write(s string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := io.WriteString(a.cfg.Out, s); err != nil {
		return fmt.Errorf("console: write: %w", err)
	}
	return nil
}

// Render formats a reply as plain text for a terminal.
func Render(r chat.Reply) string {
	var b strings.Builder
	if r.Kind == chat.KindAudit {
		text := strings.TrimSpace(r.Text)
		b.Grow(len(text) + 8*(strings.Count(text, "\n")+1))
		for l := range strings.SplitSeq(text, "\n") {
			b.WriteString("  · ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
		return b.String()
	}
	// The text and the code block are most of a reply: room for them, and
	// for the code's indent, up front.
	b.Grow(len(r.Text) + len(r.Code) + 5*strings.Count(r.Code, "\n") + 256)
	if r.Text != "" {
		b.WriteString(r.Text)
		b.WriteString("\n")
	}
	width := 0
	for _, f := range r.Fields {
		width = max(width, utf8.RuneCountInString(f.Label))
	}
	for _, f := range r.Fields {
		// Continuation lines of a multi-line value line up under its first.
		value := strings.ReplaceAll(strings.TrimRight(f.Value, "\n"), "\n", "\n"+strings.Repeat(" ", width+5))
		fmt.Fprintf(&b, "  %-*s  %s\n", width+1, f.Label+":", value)
	}
	if r.Table != nil {
		b.WriteString(renderTable(r.Table))
	}
	if r.Code != "" {
		for l := range strings.SplitSeq(strings.TrimRight(r.Code, "\n"), "\n") {
			b.WriteString("    ")
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	for _, img := range r.Images {
		fmt.Fprintf(&b, "  [image %s, %d bytes: %s]\n", img.Name, len(img.Data), img.AltText)
	}
	// Buttons are for platforms that can click; the console types the
	// command the prompt names instead, unless the reply says nothing else.
	if len(r.Buttons) > 0 && r.Kind != chat.KindConfirm {
		var parts []string
		for _, btn := range r.Buttons {
			parts = append(parts, "["+btn.Label+"]")
		}
		b.WriteString("  " + strings.Join(parts, " ") + "\n")
	}
	for _, c := range r.Context {
		b.WriteString("  " + c + "\n")
	}
	return b.String()
}

func renderTable(t *chat.Table) string {
	widths := make([]int, len(t.Header))
	for i, h := range t.Header {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range t.Rows {
		for i, c := range row {
			if i < len(widths) {
				widths[i] = max(widths[i], utf8.RuneCountInString(c))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		var l strings.Builder
		l.WriteString(" ")
		for i := range widths {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			fmt.Fprintf(&l, " %-*s", widths[i]+1, c)
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	line(t.Header)
	for _, row := range t.Rows {
		line(row)
	}
	return b.String()
}

func preview(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes)", len(s))
}
