package discord

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/bwmarrin/discordgo"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"
)

// Send implements chat.Sender. Replies to one channel go out one at a time
// and in order; discordgo waits out rate limits (429 retry_after and the
// X-RateLimit buckets) and retries 502s. A reply that still cannot be
// delivered is reported to OnUndelivered and returned as an error that
// unwraps to an action error kind.
//
// Where a reply goes, from its Thread:
//   - a slash command or button interaction (Thread is its id), while its
//     token lasts: the deferred response first, then follow-ups;
//   - a thread: posted in it;
//   - a request message: a thread started from it (the thread gets the
//     message's id), or where that is impossible (DMs, no permission) a
//     reply that references the message.
//
// With UpdateOf set the named message is edited in place instead: its
// content replaced and its buttons removed.
//
// A Private reply to an interaction is ephemeral (flag 64): only the person
// who typed the command or clicked the button sees it. Discord has no
// private reply to an ordinary message, so a Private reply to a mention or
// a bound-channel message goes into its thread like any other; people who
// want answers only they see use /parley.
func (a *Adapter) Send(ctx context.Context, r chat.Reply) (string, error) {
	if r.Channel == "" {
		return "", &apiError{op: "send", msg: "the reply names no channel", kind: action.ErrInvalid}
	}
	unlock := a.lockChannel(r.Channel)
	defer unlock()
	sctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()

	r.Buttons = a.compactButtons(sctx, r.Buttons)
	m := render(r)
	var id string
	var err error
	if r.UpdateOf != "" {
		id, err = a.update(sctx, r, m)
	} else {
		id, err = a.post(sctx, r, m)
	}
	if err != nil {
		a.log.Warn("reply not delivered", "channel", r.Channel, "kind", string(r.Kind), "err", err)
		if a.opts.OnUndelivered != nil {
			a.opts.OnUndelivered(ctx, r, err)
		}
		return "", err
	}
	return id, nil
}

func (a *Adapter) post(ctx context.Context, r chat.Reply, m rendered) (string, error) {
	channel, thread := r.Channel, r.Thread
	if ref, live := a.interaction(r.Thread); ref != nil {
		if live {
			id, err := a.postInteraction(ctx, ref, m, r.Visibility == chat.Private)
			if err == nil || !tokenRefused(err) {
				return id, err
			}
			a.mu.Lock()
			ref.unusable = true
			a.mu.Unlock()
			a.log.Info("interaction token refused; replying in the channel", "interaction", ref.ix.ID)
		}
		// The token expired: continue under the first public answer, if
		// there was one (an ephemeral message cannot start a thread).
		a.mu.Lock()
		channel, thread = ref.ix.ChannelID, ref.anchor
		a.mu.Unlock()
	}
	return a.postChannel(ctx, channel, thread, m, nonceOf(r.IdempotencyKey))
}

// maxNonce is the longest nonce Discord takes.
const maxNonce = 25

// nonceOf is the message nonce of an idempotency key: its last 25
// characters (the keys Parley makes end in a hash).
func nonceOf(key string) string {
	if len(key) > maxNonce {
		return key[len(key)-maxNonce:]
	}
	return key
}

// interaction returns the interaction an id names and whether its token can
// still be used.
func (a *Adapter) interaction(id string) (*interactionRef, bool) {
	if id == "" {
		return nil, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ref, ok := a.inters.get(id)
	if !ok {
		return nil, false
	}
	return ref, ref.acked && !ref.unusable && a.opts.Now().Before(ref.expires)
}

// answeredStub replaces a slash command's ephemeral "thinking…" message
// when the first answer is for everyone: that answer is a public
// follow-up below it.
const answeredStub = "Answered in the channel for everyone to see."

// postInteraction answers through the interaction's token. A slash
// command's deferred response is ephemeral ("Parley is thinking…" shows to
// the asker only): a private first answer replaces it; a public one goes
// out as a follow-up after the deferred response has been turned into a
// short note (Discord makes the first follow-up after a deferral edit the
// deferred message, with its visibility). Later answers are follow-ups,
// ephemeral when private.
func (a *Adapter) postInteraction(ctx context.Context, ref *interactionRef, m rendered, private bool) (string, error) {
	a.mu.Lock()
	first := !ref.component && ref.original == ""
	a.mu.Unlock()
	if first {
		edit := m.webhookEdit()
		if !private {
			stub, none := answeredStub, []*discordgo.MessageEmbed{}
			comps := []discordgo.MessageComponent{}
			edit = &discordgo.WebhookEdit{Content: &stub, Embeds: &none, Components: &comps, AllowedMentions: noMentions()}
		}
		msg, err := a.s.InteractionResponseEdit(ref.ix, edit, discordgo.WithContext(ctx))
		if err != nil {
			return "", describe("edit interaction response", err, a.token, ref.ix.Token)
		}
		a.mu.Lock()
		ref.original = msg.ID
		a.messages.put(msg.ID, sentMessage{channel: ref.ix.ChannelID, via: ref, webhook: "@original"})
		a.mu.Unlock()
		if private {
			return msg.ID, nil
		}
	}
	params := m.webhookParams()
	if private {
		params.Flags = discordgo.MessageFlagsEphemeral
	}
	msg, err := a.s.FollowupMessageCreate(ref.ix, true, params, discordgo.WithContext(ctx))
	if err != nil {
		return "", describe("post follow-up", err, a.token, ref.ix.Token)
	}
	a.mu.Lock()
	a.messages.put(msg.ID, sentMessage{channel: ref.ix.ChannelID, via: ref, webhook: msg.ID})
	if !private && ref.anchor == "" {
		ref.anchor = msg.ID
	}
	a.mu.Unlock()
	return msg.ID, nil
}

// tokenRefused reports whether an interaction token can no longer be used,
// so the reply should go to the channel instead.
func tokenRefused(err error) bool {
	code, status := restCode(err)
	if e, ok := err.(*apiError); ok {
		code, status = e.code, e.status
	}
	switch code {
	case codeUnknownInteraction, codeUnknownWebhook, codeInvalidWebhookTok:
		return true
	}
	return status == http.StatusUnauthorized
}

func (a *Adapter) postChannel(ctx context.Context, channel, thread string, m rendered, nonce string) (string, error) {
	target, ref := channel, (*discordgo.MessageReference)(nil)
	if thread != "" && thread != channel {
		target, ref = a.threadTarget(ctx, channel, thread)
	}
	var msg *discordgo.Message
	var err error
	if send := m.messageSend(ref); nonce != "" && len(send.Files) == 0 {
		msg, err = a.sendOnce(ctx, target, send, nonce)
	} else {
		msg, err = a.s.ChannelMessageSendComplex(target, send, discordgo.WithContext(ctx))
	}
	if err != nil {
		return "", describe("post message", err, a.token)
	}
	a.mu.Lock()
	a.messages.put(msg.ID, sentMessage{channel: target})
	if target != channel {
		a.ourThreads.put(target, struct{}{})
	}
	a.mu.Unlock()
	return msg.ID, nil
}

// threadTarget decides where a reply to thread (a thread id or a request
// message id) goes: the channel to post in, and a reference when it is a
// plain reply to the message.
func (a *Adapter) threadTarget(ctx context.Context, channel, thread string) (string, *discordgo.MessageReference) {
	a.mu.Lock()
	parent, known := a.channels.get(thread)
	o, hasOrigin := a.origins.get(thread)
	a.mu.Unlock()
	if known {
		if parent != "" {
			return thread, nil // a thread
		}
		return thread, nil // some other channel the reply was addressed to
	}
	no := false
	soft := &discordgo.MessageReference{MessageID: thread, ChannelID: channel, FailIfNotExists: &no}
	if hasOrigin && (o.dm || o.noThread) {
		return channel, soft
	}
	if c, err := a.s.State.Channel(thread); err == nil && c != nil && c.IsThread() {
		a.rememberChannel(c)
		return thread, nil
	}
	title := "Parley"
	if hasOrigin {
		title = o.title
	}
	// A thread started from a message takes the message's id.
	ch, err := a.s.MessageThreadStartComplex(channel, thread, &discordgo.ThreadStart{Name: title, AutoArchiveDuration: 1440}, discordgo.WithContext(ctx))
	if err == nil {
		a.rememberChannel(ch)
		return ch.ID, nil
	}
	code, status := restCode(err)
	if code == codeThreadAlreadyMade {
		a.mu.Lock()
		a.channels.put(thread, channel)
		a.mu.Unlock()
		return thread, nil
	}
	a.log.Debug("cannot start a thread; replying by reference", "message", thread, "err", describe("start thread", err, a.token))
	if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
		o.noThread = true
		if o.title == "" {
			o.title = title
		}
		a.mu.Lock()
		a.origins.put(thread, o)
		a.mu.Unlock()
	}
	return channel, soft
}

// update edits an earlier message: through the interaction that owns it
// while its token lasts, else as the bot in its channel.
func (a *Adapter) update(ctx context.Context, r chat.Reply, m rendered) (string, error) {
	a.mu.Lock()
	sm, ok := a.messages.get(r.UpdateOf)
	live := ok && sm.via != nil && sm.via.acked && !sm.via.unusable && a.opts.Now().Before(sm.via.expires)
	var ix *discordgo.Interaction
	if live {
		ix = sm.via.ix
	}
	parent, isThread := a.channels.get(r.Thread)
	a.mu.Unlock()
	if live {
		_, err := a.s.WebhookMessageEdit(ix.AppID, ix.Token, sm.webhook, m.webhookEdit(), discordgo.WithContext(ctx))
		if err == nil {
			return r.UpdateOf, nil
		}
		if !tokenRefused(err) {
			return "", describe("edit message", err, a.token, ix.Token)
		}
	}
	channel := r.Channel
	switch {
	case ok && sm.channel != "":
		channel = sm.channel
	case isThread && parent != "":
		channel = r.Thread
	}
	if _, err := a.s.ChannelMessageEditComplex(m.messageEdit(channel, r.UpdateOf), discordgo.WithContext(ctx)); err != nil {
		return "", describe("edit message", err, a.token)
	}
	return r.UpdateOf, nil
}

// lockChannel serialises sends to one channel, so replies keep their order
// and a thread is started once.
func (a *Adapter) lockChannel(channel string) (unlock func()) {
	a.mu.Lock()
	l := a.chanLocks[channel]
	if l == nil {
		l = &channelLock{}
		a.chanLocks[channel] = l
	}
	l.refs++
	a.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		a.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(a.chanLocks, channel)
		}
		a.mu.Unlock()
	}
}

// sendOnce creates a message with a nonce and enforce_nonce: Discord then
// returns the message made earlier with the same nonce (for a few
// minutes) instead of creating a second, so a post repeated after a crash
// shows once.
func (a *Adapter) sendOnce(ctx context.Context, channel string, data *discordgo.MessageSend, nonce string) (*discordgo.Message, error) {
	for _, e := range data.Embeds { // as ChannelMessageSendComplex does
		if e.Type == "" {
			e.Type = discordgo.EmbedTypeRich
		}
	}
	body := struct {
		*discordgo.MessageSend
		Nonce        string `json:"nonce"`
		EnforceNonce bool   `json:"enforce_nonce"`
	}{data, nonce, true}
	endpoint := discordgo.EndpointChannelMessages(channel)
	resp, err := a.s.RequestWithBucketID(http.MethodPost, endpoint, body, endpoint, discordgo.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	var msg discordgo.Message
	if err := json.Unmarshal(resp, &msg); err != nil {
		return nil, fmt.Errorf("discord: decode the created message: %w", err)
	}
	return &msg, nil
}
