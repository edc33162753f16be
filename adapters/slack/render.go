package slack

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/parley-chatops/parley/internal/chat"
)

// Slack's documented Block Kit limits.
const (
	maxBlocks           = 50
	maxSectionText      = 3000
	maxFieldText        = 2000
	maxFieldsPerSection = 10
	maxMessageText      = 40000
	maxButtonsPerBlock  = 25
	maxButtonLabel      = 75
	maxButtonValue      = 2000
	maxContextElements  = 10
	maxContextText      = 2000
	maxFallbackText     = 3000
)

// contentBudget bounds the characters of text, fields, tables and code shown
// in one message. Slack would take more, but a reply longer than this is
// unreadable in a channel; the rest is cut with a note.
const contentBudget = 12000

// ActionPrefix marks the action ids of Parley's buttons ("parley_confirm").
// Clicks on other apps' or other features' buttons are ignored.
const ActionPrefix = "parley_"

// Message is a reply rendered for chat.postMessage / chat.update: Text is
// the notification and fallback text, Blocks the Block Kit layout.
type Message struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// kindEmoji is the prefix that styles each kind of reply.
var kindEmoji = map[chat.ReplyKind]string{
	chat.KindConfirm: ":raised_hand:",
	chat.KindSuccess: ":white_check_mark:",
	// A read that succeeded but reports trouble never gets the check mark.
	chat.KindProgress:  ":hourglass_flowing_sand:",
	chat.KindAttention: ":red_circle:",
	chat.KindDenied:    ":no_entry:",
	chat.KindError:     ":warning:",
	chat.KindAudit:     ":scroll:",
}

// piece is one candidate content block and the number of source lines it
// shows, so a cut can say how many lines were left out.
type piece struct {
	block slack.Block
	chars int
	lines int
}

// Render turns a platform-neutral reply into Block Kit. Images are not
// blocks: Send uploads them into the thread after the message.
func Render(r chat.Reply) Message {
	var pieces []piece
	prefix := kindEmoji[r.Kind]
	if text := strings.TrimRight(r.Text, "\n"); text != "" {
		converted := mrkdwn(text)
		if prefix != "" {
			converted = prefix + " " + converted
		}
		pieces = append(pieces, textPieces(converted)...)
	}
	pieces = append(pieces, fieldPieces(r.Fields)...)
	if r.Table != nil && (len(r.Table.Header) > 0 || len(r.Table.Rows) > 0) {
		pieces = append(pieces, codePieces(strings.Split(formatTable(r.Table), "\n"))...)
	}
	if code := strings.TrimRight(r.Code, "\n"); code != "" {
		pieces = append(pieces, codePieces(strings.Split(code, "\n"))...)
	}

	tail := append(buttonBlocks(r.Buttons), contextBlocks(r.Context)...)
	room := maxBlocks - len(tail) - 1 // one for a possible "lines cut" note
	var blocks []slack.Block
	used, cut := 0, 0
	for i, p := range pieces {
		if len(blocks) >= room || (used+p.chars > contentBudget && len(blocks) > 0) {
			for _, rest := range pieces[i:] {
				cut += rest.lines
			}
			break
		}
		blocks = append(blocks, p.block)
		used += p.chars
	}
	if cut > 0 {
		blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, fmt.Sprintf("… %d more lines cut", cut), false, false)))
	}
	blocks = append(blocks, tail...)
	return Message{Text: fallbackText(r, prefix), Blocks: blocks}
}

// RenderTrail renders the coalesced audit-trail message of one thread: every
// step so far, one line each, in one updating message.
func RenderTrail(steps []string) Message {
	var b strings.Builder
	b.WriteString(kindEmoji[chat.KindAudit] + " *Audit trail*")
	for _, s := range steps {
		b.WriteString("\n• " + escape(oneLine(s)))
	}
	noun := "steps"
	if len(steps) == 1 {
		noun = "step"
	}
	text := cutRunes(b.String(), maxSectionText)
	return Message{
		Text:   fmt.Sprintf("Audit trail (%d %s)", len(steps), noun),
		Blocks: []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)},
	}
}

// trailSize is the section text length RenderTrail produces for steps.
func trailSize(steps []string) int {
	n := len(kindEmoji[chat.KindAudit] + " *Audit trail*")
	for _, s := range steps {
		n += len("\n• ") + len(escape(oneLine(s)))
	}
	return n
}

// PlainText renders a reply as plain mrkdwn text only: the fallback when
// Slack refuses the blocks.
func PlainText(r chat.Reply) string {
	var b strings.Builder
	if p := kindEmoji[r.Kind]; p != "" {
		b.WriteString(p + " ")
	}
	b.WriteString(mrkdwn(r.Text))
	for _, f := range r.Fields {
		b.WriteString("\n*" + escape(f.Label) + "*: " + escape(f.Value))
	}
	if r.Table != nil {
		b.WriteString("\n```\n" + escape(formatTable(r.Table)) + "\n```")
	}
	if r.Code != "" {
		b.WriteString("\n```\n" + escape(strings.TrimRight(r.Code, "\n")) + "\n```")
	}
	for _, c := range r.Context {
		b.WriteString("\n" + mrkdwn(c))
	}
	return cutRunes(strings.TrimSpace(b.String()), maxFallbackText)
}

func fallbackText(r chat.Reply, prefix string) string {
	text := strings.TrimSpace(r.Text)
	if text == "" && len(r.Fields) > 0 {
		text = r.Fields[0].Label + ": " + r.Fields[0].Value
	}
	if text == "" {
		text = "Parley"
	}
	text = mrkdwn(text)
	if prefix != "" {
		text = prefix + " " + text
	}
	return cutRunes(text, maxFallbackText)
}

// textPieces splits mrkdwn text into sections of at most maxSectionText,
// at line boundaries where possible.
func textPieces(text string) []piece {
	var out []piece
	for _, chunk := range packLines(strings.Split(text, "\n"), maxSectionText, 0) {
		out = append(out, piece{
			block: slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, chunk.text, false, false), nil, nil),
			chars: len(chunk.text), lines: chunk.lines,
		})
	}
	return out
}

// codePieces renders preformatted lines as code blocks of at most
// maxSectionText each, fences included.
func codePieces(lines []string) []piece {
	escaped := make([]string, len(lines))
	for i, l := range lines {
		escaped[i] = escape(l)
	}
	const fences = len("```\n") + len("\n```")
	var out []piece
	for _, chunk := range packLines(escaped, maxSectionText, fences) {
		text := "```\n" + chunk.text + "\n```"
		out = append(out, piece{
			block: slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil),
			chars: len(text), lines: chunk.lines,
		})
	}
	return out
}

type chunk struct {
	text  string
	lines int
}

// packLines joins lines into chunks of at most limit-overhead bytes; a line
// longer than that is split at rune boundaries.
func packLines(lines []string, limit, overhead int) []chunk {
	room := limit - overhead
	var out []chunk
	var cur []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			out = append(out, chunk{text: strings.Join(cur, "\n"), lines: len(cur)})
			cur, size = nil, 0
		}
	}
	for _, l := range lines {
		for len(l) > room {
			flush()
			head := cutBytes(l, room)
			out = append(out, chunk{text: head, lines: 1})
			l = l[len(head):]
		}
		add := len(l)
		if len(cur) > 0 {
			add++ // the newline
		}
		if size+add > room {
			flush()
			add = len(l)
		}
		cur = append(cur, l)
		size += add
	}
	flush()
	return out
}

func fieldPieces(fields []chat.Field) []piece {
	var out []piece
	for start := 0; start < len(fields); start += maxFieldsPerSection {
		end := min(start+maxFieldsPerSection, len(fields))
		var objs []*slack.TextBlockObject
		chars := 0
		for _, f := range fields[start:end] {
			text := cutRunes("*"+mrkdwn(f.Label)+"*\n"+mrkdwn(f.Value), maxFieldText)
			objs = append(objs, slack.NewTextBlockObject(slack.MarkdownType, text, false, false))
			chars += len(text)
		}
		out = append(out, piece{block: slack.NewSectionBlock(nil, objs, nil), chars: chars, lines: end - start})
	}
	return out
}

func buttonBlocks(buttons []chat.Button) []slack.Block {
	var blocks []slack.Block
	seen := map[string]int{}
	var elems []slack.BlockElement
	for _, btn := range buttons {
		if btn.Action == "" {
			continue
		}
		id := ActionPrefix + btn.Action
		// Action ids must be unique within a block; a repeated action gets a
		// "#n" suffix that decoding strips.
		if n := seen[btn.Action]; n > 0 {
			id = fmt.Sprintf("%s#%d", id, n)
		}
		seen[btn.Action]++
		label := btn.Label
		if label == "" {
			label = btn.Action
		}
		el := slack.NewButtonBlockElement(id, cutRunes(btn.Value, maxButtonValue), slack.NewTextBlockObject(slack.PlainTextType, cutRunes(label, maxButtonLabel), true, false))
		switch btn.Style {
		case "primary":
			el.Style = slack.StylePrimary
		case "danger":
			el.Style = slack.StyleDanger
		}
		elems = append(elems, el)
		if len(elems) == maxButtonsPerBlock {
			blocks = append(blocks, slack.NewActionBlock("", elems...))
			elems = nil
		}
	}
	if len(elems) > 0 {
		blocks = append(blocks, slack.NewActionBlock("", elems...))
	}
	// Slack needs distinct block ids only when they are set; leave them
	// empty except for the first block, which names Parley's actions.
	if len(blocks) > 0 {
		blocks[0].(*slack.ActionBlock).BlockID = "parley_actions"
	}
	return blocks
}

func contextBlocks(lines []string) []slack.Block {
	var parts []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, mrkdwn(l))
		}
	}
	if len(parts) == 0 {
		return nil
	}
	if len(parts) > maxContextElements {
		// Fold the overflow into the last element rather than lose it.
		rest := strings.Join(parts[maxContextElements-1:], " · ")
		parts = append(parts[:maxContextElements-1], rest)
	}
	var elems []slack.MixedElement
	for _, p := range parts {
		elems = append(elems, slack.NewTextBlockObject(slack.MarkdownType, cutRunes(p, maxContextText), false, false))
	}
	return []slack.Block{slack.NewContextBlock("", elems...)}
}

// formatTable lays a table out in aligned columns for a code block.
func formatTable(t *chat.Table) string {
	cols := len(t.Header)
	for _, r := range t.Rows {
		cols = max(cols, len(r))
	}
	widths := make([]int, cols)
	measure := func(cells []string) {
		for i, c := range cells {
			widths[i] = max(widths[i], utf8.RuneCountInString(oneLine(c)))
		}
	}
	measure(t.Header)
	for _, r := range t.Rows {
		measure(r)
	}
	var b strings.Builder
	line := func(cells []string) {
		var l strings.Builder
		for i := range widths {
			c := ""
			if i < len(cells) {
				c = oneLine(cells[i])
			}
			if i > 0 {
				l.WriteString("  ")
			}
			l.WriteString(c + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	if len(t.Header) > 0 {
		line(t.Header)
		var rule []string
		for _, w := range widths {
			rule = append(rule, strings.Repeat("-", w))
		}
		b.WriteString(strings.Join(rule, "  ") + "\n")
	}
	for _, r := range t.Rows {
		line(r)
	}
	return strings.TrimRight(b.String(), "\n")
}

var (
	boldRe   = regexp.MustCompile(`\*\*([^*\n]+?)\*\*`)
	strikeRe = regexp.MustCompile(`~~([^~\n]+?)~~`)
	linkRe   = regexp.MustCompile(`\[([^\]\n]+)\]\((https?://[^\s)]+)\)`)
)

// mrkdwn converts Parley's light markdown to Slack mrkdwn: **bold** becomes
// *bold*, ~~strike~~ ~strike~, [text](url) <url|text>. &, < and > are
// escaped first, so user text can never form a mention such as <!channel>.
// Code spans (`...`) are left as they are, escaped.
func mrkdwn(s string) string {
	parts := strings.Split(escape(s), "`")
	for i := range parts {
		// Even parts are outside code spans; after an unmatched backtick
		// (an even count of parts) the last part is plain text too.
		if i%2 == 1 && !(i == len(parts)-1 && len(parts)%2 == 0) {
			continue
		}
		p := boldRe.ReplaceAllString(parts[i], "*$1*")
		p = strikeRe.ReplaceAllString(p, "~$1~")
		p = linkRe.ReplaceAllStringFunc(p, func(m string) string {
			sub := linkRe.FindStringSubmatch(m)
			return "<" + sub[2] + "|" + strings.ReplaceAll(sub[1], "|", "¦") + ">"
		})
		parts[i] = p
	}
	return strings.Join(parts, "`")
}

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escape applies Slack's three mandatory escapes.
func escape(s string) string { return escaper.Replace(s) }

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// cutRunes shortens s to at most n bytes at a rune boundary, ending in "…".
func cutRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return cutBytes(s, n-len("…")) + "…"
}

// cutBytes returns the longest prefix of s of at most n bytes that ends at
// a rune boundary, and not inside an escape such as &amp;.
func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	head := s[:n]
	if amp := strings.LastIndexByte(head, '&'); amp >= 0 && amp > len(head)-5 && !strings.Contains(head[amp:], ";") {
		head = head[:amp]
	}
	return head
}
