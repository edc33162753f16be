package redact

import "github.com/parley-chatops/parley/internal/chat"

// Reply returns r with Redact applied to every text a person reads: the
// text, fields, table, code block, small print, button labels and image
// alt texts. Ids, button values (opaque references the pipeline looks up)
// and image data are kept as they are.
func Reply(r chat.Reply) chat.Reply { return ReplyWith(r, Redact) }

// ReplyWith is Reply with another redaction function (a test's, or
// Redact plus a known value).
func ReplyWith(r chat.Reply, red func(string) string) chat.Reply {
	r.Text = red(r.Text)
	r.Code = red(r.Code)
	if r.Fields != nil {
		fs := make([]chat.Field, len(r.Fields))
		for i, f := range r.Fields {
			fs[i] = chat.Field{Label: red(f.Label), Value: red(f.Value)}
		}
		r.Fields = fs
	}
	if r.Table != nil {
		t := &chat.Table{Header: redactAll(r.Table.Header, red)}
		if r.Table.Rows != nil {
			t.Rows = make([][]string, len(r.Table.Rows))
			for i, row := range r.Table.Rows {
				t.Rows[i] = redactAll(row, red)
			}
		}
		r.Table = t
	}
	r.Context = redactAll(r.Context, red)
	if r.Buttons != nil {
		bs := make([]chat.Button, len(r.Buttons))
		for i, b := range r.Buttons {
			b.Label = red(b.Label)
			bs[i] = b
		}
		r.Buttons = bs
	}
	if r.Images != nil {
		is := make([]chat.Image, len(r.Images))
		for i, img := range r.Images {
			img.AltText = red(img.AltText)
			is[i] = img
		}
		r.Images = is
	}
	return r
}

// redactAll returns a redacted copy of ss (nil for nil).
func redactAll(ss []string, red func(string) string) []string {
	if ss == nil {
		return nil
	}
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = red(s)
	}
	return out
}
