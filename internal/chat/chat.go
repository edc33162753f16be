// Package chat holds the platform-neutral types that chat adapters and the
// pipeline share: an incoming Message, an outgoing Reply, and the Adapter
// interface. Adapters render a Reply in their own format (Block Kit, Discord
// components, plain text); nothing here knows about a particular platform.
package chat

import (
	"context"
	"time"
)

// Platforms known to Parley. Subjects and channels are written
// "platform:stable-id" everywhere (policy, audit, confirmations).
const (
	Slack   = "slack"
	Discord = "discord"
	Console = "console"
	// Webhook is the outgoing webhook sink: incident messages POSTed as
	// signed JSON, for teams without Slack or Discord. Nothing arrives
	// from it.
	Webhook = "webhook"
)

// Message is one request as an adapter received it.
type Message struct {
	Platform string // slack | discord | console
	Channel  string // stable channel id on that platform
	Thread   string // thread the request belongs to (empty: a new thread)
	User     string // stable user id on that platform (never a display name)
	UserName string // display name, for rendering only
	Text     string // raw text as typed, platform markup included
	EventID  string // platform event id, used to drop redeliveries
	// CutFrom is the size in bytes of the text as received when the adapter
	// had to cut it to fit its buffers (0: Text is whole). The pipeline
	// refuses cut messages with a clear answer rather than act on a part.
	CutFrom int
	Time    time.Time // when the platform saw it
	// Groups are platform-provided groups of the user (Slack user groups,
	// Discord roles) as "platform:id"; policy groups may name them.
	Groups []string
	// Action is set when the message is a button click rather than text:
	// the button's Action and Value (for example "confirm", confirmation id).
	Action *ButtonClick
}

// ButtonClick is an interactive click on a Button sent earlier.
type ButtonClick struct {
	Action string // confirm | cancel | run
	Value  string // confirmation id, or an encoded request for "run"
	// MessageID is the platform message the button was on, so the outcome
	// can update it in place (buttons removed, outcome shown).
	MessageID string
}

// Subject is the stable "platform:user" identity used by policy and audit.
func (m Message) Subject() string { return m.Platform + ":" + m.User }

// ChannelRef is the stable "platform:channel" identity used by policy and audit.
func (m Message) ChannelRef() string { return m.Platform + ":" + m.Channel }

// Reply is what Parley says back. Adapters render each part as well as their
// platform allows and fall back to text for the rest.
type Reply struct {
	Platform string
	Channel  string
	Thread   string
	// UpdateOf, when set, names an earlier message (the id a Sender returned)
	// to be edited in place instead of posting a new one.
	UpdateOf string

	Text    string    // main text, light markdown (*bold*, `code`)
	Fields  []Field   // short label/value pairs
	Table   *Table    // optional table
	Code    string    // optional preformatted block
	Images  []Image   // optional attachments (charts)
	Buttons []Button  // optional interactive buttons
	Context []string  // small print: audit ids, durations, router used
	Kind    ReplyKind // what sort of reply this is, for styling

	// Visibility says who sees the reply: everyone in the thread (the
	// default) or only Recipient. Adapters render Private as privately as
	// their platform allows (Slack: an ephemeral message; Discord: an
	// ephemeral interaction response) and say what they do otherwise.
	Visibility Visibility
	// Recipient is the platform user id (not "platform:id") a Private
	// reply is for; the pipeline sets it to the asker.
	Recipient string

	// IdempotencyKey, on a new message (not an edit), names the message so
	// that posting it again, after a crash between the post and recording
	// its id, makes no second message where the platform allows: the
	// Slack adapter keeps the key in the message's metadata, where a
	// search finds it later; Discord refuses a second message with the
	// same nonce for a few minutes; the webhook sink makes it the
	// message's id. Adapters that can do neither ignore it.
	IdempotencyKey string
}

// Visibility is who sees a reply.
type Visibility string

const (
	// Public replies are seen by everyone in the thread: confirmation
	// prompts, results, the audit trail.
	Public Visibility = ""
	// Private replies are for the asker only: refusals, help, budget
	// notices, errors in what they asked.
	Private Visibility = "private"
)

// ReplyKind lets adapters style a reply (colour, emoji) without parsing text.
type ReplyKind string

const (
	KindInfo    ReplyKind = "info"
	KindConfirm ReplyKind = "confirm" // a confirmation prompt
	KindSuccess ReplyKind = "success"
	// KindProgress: the request succeeded and what it reports is still
	// changing (a rollout under way). Never styled as a success.
	KindProgress ReplyKind = "progress"
	// KindAttention: the request succeeded but what it reports is not
	// healthy (pods not ready, a stuck rollout, crash loops).
	KindAttention ReplyKind = "attention"
	KindDenied    ReplyKind = "denied"
	KindError     ReplyKind = "error"
	KindAudit     ReplyKind = "audit" // an audit-trail step
)

// Field is a short label/value pair.
type Field struct {
	Label string
	Value string
}

// Table is a small table of text cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// Image is an attachment such as a PNG chart.
type Image struct {
	Name        string // file name, e.g. "checkout-error_rate.png"
	ContentType string // image/png
	Data        []byte
	AltText     string
}

// Button is an interactive choice. It carries only an action and an opaque
// value (a confirmation id): the click is re-checked like typed text.
type Button struct {
	Label  string
	Style  string // primary | danger | "" (default)
	Action string
	Value  string
}

// Handler receives messages from an adapter. The pipeline implements it.
type Handler interface {
	Handle(ctx context.Context, msg Message)
}

// Sender delivers replies. It returns a platform message id that later
// replies can update in place (empty when the platform has none).
type Sender interface {
	Send(ctx context.Context, r Reply) (id string, err error)
}

// Adapter connects one chat platform: it feeds messages to a Handler until
// ctx ends, and delivers replies.
type Adapter interface {
	Sender
	Name() string
	Run(ctx context.Context, h Handler) error
}
