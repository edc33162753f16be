package discord

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"

	"github.com/parley-chatops/parley/internal/chat"
)

// Discord's message limits (https://discord.com/developers/docs/resources/message
// and .../channel#embed-object-embed-limits), counted in characters.
const (
	maxContent     = 2000
	maxDescription = 4096
	maxEmbedTotal  = 6000
	maxFields      = 25
	maxFieldName   = 256
	maxFieldValue  = 1024
	maxFooter      = 2048
	maxButtons     = 25 // 5 rows of 5
	maxRowButtons  = 5
	maxLabel       = 80
	maxCustomID    = 100
	maxStoredValue = 2000 // a button value kept in the button store behind a short custom_id
	maxFiles       = 10
	// fieldBudget keeps room in the 6000-character embed for the
	// description and footer when a reply carries many fields.
	fieldBudget = 3000
)

// Embed colours by reply kind.
var kindColour = map[chat.ReplyKind]int{
	chat.KindInfo:    0x5865F2, // blurple
	chat.KindConfirm: 0xFEE75C, // yellow
	chat.KindSuccess: 0x57F287, // green
	// A read that succeeded but reports trouble is never green.
	chat.KindProgress:  0xFEE75C, // yellow
	chat.KindAttention: 0xE67E22, // orange
	chat.KindDenied:    0xED4245, // red
	chat.KindError:     0xED4245,
	chat.KindAudit:     0x99AAB5, // grey
}

// customIDPrefix marks Parley's buttons: "parley:<action>:<value>".
const customIDPrefix = "parley:"

// rendered is a chat.Reply in Discord's terms, before it is cast into the
// body of one endpoint (channel message, interaction follow-up, edit).
type rendered struct {
	Content    string
	Embeds     []*discordgo.MessageEmbed
	Components []discordgo.MessageComponent
	Images     []chat.Image
}

// noMentions stops a reply from pinging anyone: replies echo user input, and
// "@everyone" in a request must not become a ping from the bot.
func noMentions() *discordgo.MessageAllowedMentions {
	return &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}}
}

func (m rendered) files() []*discordgo.File {
	var fs []*discordgo.File
	for i, img := range m.Images {
		fs = append(fs, &discordgo.File{Name: fileName(img.Name, i), ContentType: img.ContentType, Reader: bytes.NewReader(img.Data)})
	}
	return fs
}

func (m rendered) messageSend(ref *discordgo.MessageReference) *discordgo.MessageSend {
	return &discordgo.MessageSend{
		Content: m.Content, Embeds: m.Embeds, Components: m.Components, Files: m.files(),
		AllowedMentions: noMentions(), Reference: ref,
	}
}

func (m rendered) webhookParams() *discordgo.WebhookParams {
	return &discordgo.WebhookParams{
		Content: m.Content, Embeds: m.Embeds, Components: m.Components, Files: m.files(),
		AllowedMentions: noMentions(),
	}
}

// Edits always set every part, so an update replaces the whole message; in
// particular the buttons of a confirmation prompt go away.
func (m rendered) webhookEdit() *discordgo.WebhookEdit {
	content, embeds, comps := m.Content, nonNil(m.Embeds), nonNil(m.Components)
	return &discordgo.WebhookEdit{Content: &content, Embeds: &embeds, Components: &comps, Files: m.files(), AllowedMentions: noMentions()}
}

func (m rendered) messageEdit(channel, id string) *discordgo.MessageEdit {
	content, embeds, comps := m.Content, nonNil(m.Embeds), nonNil(m.Components)
	return &discordgo.MessageEdit{Channel: channel, ID: id, Content: &content, Embeds: &embeds, Components: &comps, Files: m.files(), AllowedMentions: noMentions()}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// render turns a platform-neutral reply into a Discord message: the text as
// content, fields, table, code and small print in one embed, buttons as
// action rows and images as attachments. Every part is cut to Discord's
// limits with a note saying how much was cut.
func render(r chat.Reply) rendered {
	var out rendered
	text := markdown(strings.TrimRight(r.Text, "\n"))
	switch r.Kind {
	case chat.KindAudit:
		text = subtext(text)
	case chat.KindDenied:
		text = prefix("🚫 ", text)
	case chat.KindError:
		text = prefix("⚠️ ", text)
	case chat.KindAttention:
		text = prefix("🔴 ", text)
	case chat.KindProgress:
		text = prefix("⏳ ", text)
	}

	var blocks []string
	if r.Table != nil && (len(r.Table.Header) > 0 || len(r.Table.Rows) > 0) {
		blocks = append(blocks, tableText(r.Table))
	}
	if strings.TrimSpace(r.Code) != "" {
		blocks = append(blocks, strings.TrimRight(r.Code, "\n"))
	}
	needEmbed := len(r.Fields) > 0 || len(blocks) > 0
	if !needEmbed && len(r.Context) > 0 {
		// Small print alone does not earn an embed: Discord's subtext does.
		text = strings.TrimLeft(text+"\n"+subtext(strings.Join(r.Context, " · ")), "\n")
	}
	out.Content = cutText(text, maxContent)

	if needEmbed {
		e := &discordgo.MessageEmbed{Color: kindColour[r.Kind]}
		if e.Color == 0 {
			e.Color = kindColour[chat.KindInfo]
		}
		used := 0
		e.Fields, used = embedFields(r.Fields)
		if len(r.Context) > 0 {
			e.Footer = &discordgo.MessageEmbedFooter{Text: cutText(strings.Join(r.Context, " · "), maxFooter)}
			used += runes(e.Footer.Text)
		}
		e.Description = codeBlocks(blocks, min(maxDescription, maxEmbedTotal-used))
		out.Embeds = []*discordgo.MessageEmbed{e}
	}

	out.Components = buttonRows(r.Buttons)
	out.Images = r.Images
	if len(out.Images) > maxFiles {
		out.Images = out.Images[:maxFiles]
	}
	if len(out.Images) > 0 && len(out.Embeds) > 0 && strings.HasPrefix(out.Images[0].ContentType, "image/") {
		out.Embeds[0].Image = &discordgo.MessageEmbedImage{URL: "attachment://" + fileName(out.Images[0].Name, 0)}
	}
	if out.Content == "" && len(out.Embeds) == 0 && len(out.Images) == 0 {
		out.Content = "(empty reply)"
	}
	return out
}

func prefix(p, text string) string {
	if text == "" {
		return ""
	}
	return p + text
}

// subtext renders small print with Discord's "-# " line prefix.
func subtext(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, "-# "+l)
		}
	}
	return strings.Join(lines, "\n")
}

func embedFields(fields []chat.Field) ([]*discordgo.MessageEmbedField, int) {
	var out []*discordgo.MessageEmbedField
	used := 0
	for i, f := range fields {
		name := cutText(oneLine(f.Label), maxFieldName)
		value := cutText(f.Value, maxFieldValue)
		if strings.TrimSpace(name) == "" {
			name = "\u200b" // Discord refuses empty names
		}
		if strings.TrimSpace(value) == "" {
			value = "—"
		}
		size := runes(name) + runes(value)
		last := len(out) == maxFields-1
		if (last && i < len(fields)-1) || used+size > fieldBudget {
			rest := len(fields) - i
			note := &discordgo.MessageEmbedField{Name: "…", Value: fmt.Sprintf("%d more %s cut", rest, plural(rest, "field", "fields"))}
			out = append(out, note)
			used += runes(note.Name) + runes(note.Value)
			break
		}
		out = append(out, &discordgo.MessageEmbedField{Name: name, Value: value, Inline: true})
		used += size
	}
	return out, used
}

// codeBlocks fences each block and fits them all in limit characters,
// cutting whole lines from the end of the last blocks first and saying so.
func codeBlocks(blocks []string, limit int) string {
	if len(blocks) == 0 {
		return ""
	}
	var parts []string
	room := limit
	for i, b := range blocks {
		// Leave each later block at least its fences and a note.
		reserve := (len(blocks) - i - 1) * 48
		part := fence(b, max(room-reserve, 0))
		if part == "" {
			continue
		}
		parts = append(parts, part)
		room -= runes(part) + 1
	}
	return strings.Join(parts, "\n")
}

// fence wraps text in a code block of at most limit characters; lines that
// do not fit are cut and counted in a note after the block.
func fence(text string, limit int) string {
	text = strings.ReplaceAll(text, "```", "`\u200b``") // keep the fence closed
	lines := strings.Split(text, "\n")
	full := "```\n" + text + "\n```"
	if runes(full) <= limit {
		return full
	}
	for keep := len(lines) - 1; keep >= 0; keep-- {
		cut := len(lines) - keep
		note := fmt.Sprintf("\n… %d more %s cut", cut, plural(cut, "line", "lines"))
		body := strings.Join(lines[:keep], "\n")
		if keep == 0 {
			if runes(note) <= limit {
				return strings.TrimPrefix(note, "\n")
			}
			return ""
		}
		s := "```\n" + body + "\n```" + note
		if runes(s) <= limit {
			return s
		}
		if keep == 1 {
			// One very long line: cut it by characters instead.
			budget := limit - runes("```\n\n```") - runes(note) - 1
			if budget > 0 {
				return "```\n" + cutRunes(body, budget) + "…\n```" + note
			}
		}
	}
	return ""
}

// cutText fits s in limit characters, cutting whole lines when it has
// several and characters when it has one, with a note of what was cut.
func cutText(s string, limit int) string {
	if runes(s) <= limit {
		return s
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 1 {
		for keep := len(lines) - 1; keep > 0; keep-- {
			cut := len(lines) - keep
			out := strings.Join(lines[:keep], "\n") + fmt.Sprintf("\n… %d more %s cut", cut, plural(cut, "line", "lines"))
			if runes(out) <= limit {
				return out
			}
		}
		s = lines[0]
	}
	total := runes(s)
	for keep := limit - 1; keep > 0; keep-- {
		note := fmt.Sprintf("… %d more characters cut", total-keep)
		if keep+runes(note) <= limit {
			cut := cutRunes(s, keep)
			// End on a word when one ends near the cut.
			if i := strings.LastIndexByte(cut, ' '); i > len(cut)*4/5 {
				cut = strings.TrimRight(cut[:i], " ")
			}
			return cut + fmt.Sprintf("… %d more characters cut", total-runes(cut))
		}
	}
	return cutRunes(s, limit)
}

func cutRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n {
			return s[:pos]
		}
		i++
	}
	return s
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// tableText lays a table out in aligned columns for a code block.
func tableText(t *chat.Table) string {
	cols := len(t.Header)
	for _, r := range t.Rows {
		cols = max(cols, len(r))
	}
	widths := make([]int, cols)
	measure := func(cells []string) {
		for i, c := range cells {
			widths[i] = max(widths[i], runes(oneLine(c)))
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
			l.WriteString(c)
			if i < cols-1 {
				l.WriteString(strings.Repeat(" ", widths[i]-runes(c)+2))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteString("\n")
	}
	if len(t.Header) > 0 {
		line(t.Header)
		var rule []string
		for _, w := range widths {
			rule = append(rule, strings.Repeat("-", w))
		}
		line(rule)
	}
	for _, r := range t.Rows {
		line(r)
	}
	return strings.TrimRight(b.String(), "\n")
}

func buttonRows(buttons []chat.Button) []discordgo.MessageComponent {
	var rows []discordgo.MessageComponent
	var row discordgo.ActionsRow
	n := 0
	for _, btn := range buttons {
		id := customIDPrefix + btn.Action + ":" + btn.Value
		if n == maxButtons || btn.Action == "" || len(id) > maxCustomID {
			continue // the reply's text always says what to type instead
		}
		row.Components = append(row.Components, discordgo.Button{
			Label: cutText(oneLine(btn.Label), maxLabel), Style: buttonStyle(btn), CustomID: id,
		})
		n++
		if len(row.Components) == maxRowButtons {
			rows = append(rows, row)
			row = discordgo.ActionsRow{}
		}
	}
	if len(row.Components) > 0 {
		rows = append(rows, row)
	}
	return rows
}

func buttonStyle(b chat.Button) discordgo.ButtonStyle {
	switch {
	case b.Style == "danger":
		return discordgo.DangerButton
	case b.Action == "confirm":
		return discordgo.SuccessButton
	case b.Style == "primary":
		return discordgo.PrimaryButton
	default:
		return discordgo.SecondaryButton
	}
}

// parseCustomID splits "parley:<action>:<value>".
func parseCustomID(id string) (act, value string, ok bool) {
	rest, ok := strings.CutPrefix(id, customIDPrefix)
	if !ok {
		return "", "", false
	}
	act, value, ok = strings.Cut(rest, ":")
	return act, value, ok && act != ""
}

func fileName(name string, i int) string {
	clean := strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, name)
	if strings.Trim(clean, "._") == "" {
		return fmt.Sprintf("image-%d.png", i+1)
	}
	return clean
}

// Slack-style *bold* (what chat.Reply text uses) is italics on Discord;
// make it **bold**, leaving code spans alone.
var (
	boldRE     = regexp.MustCompile(`(^|[^*\w])\*([^*\s][^*\n]*?)\*($|[^*\w])`)
	codeSpanRE = regexp.MustCompile("```[\\s\\S]*?```|`[^`\n]*`")
)

func markdown(s string) string {
	var b strings.Builder
	last := 0
	for _, loc := range codeSpanRE.FindAllStringIndex(s, -1) {
		b.WriteString(bold(s[last:loc[0]]))
		b.WriteString(s[loc[0]:loc[1]])
		last = loc[1]
	}
	b.WriteString(bold(s[last:]))
	return b.String()
}

func bold(s string) string {
	// Applied twice so that adjacent matches sharing a boundary both convert.
	for range 2 {
		s = boldRE.ReplaceAllString(s, "$1**$2**$3")
	}
	return s
}
