package slack

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
)

// eventCallback is the outer Events API envelope, the same over HTTP and
// inside a Socket Mode events_api payload.
type eventCallback struct {
	Type      string          `json:"type"`
	EventID   string          `json:"event_id"`
	EventTime int64           `json:"event_time"`
	Challenge string          `json:"challenge"`
	Event     json.RawMessage `json:"event"`
}

// messageEvent is the inner event of app_mention and message events.
type messageEvent struct {
	Type        string          `json:"type"`
	Subtype     string          `json:"subtype"`
	User        string          `json:"user"`
	BotID       string          `json:"bot_id"`
	Text        string          `json:"text"`
	TS          string          `json:"ts"`
	ThreadTS    string          `json:"thread_ts"`
	Channel     string          `json:"channel"`
	ChannelType string          `json:"channel_type"`
	Edited      json.RawMessage `json:"edited"`
	// ParentUserID is who started the thread of a thread reply.
	ParentUserID string `json:"parent_user_id"`
}

// blockActions is an interactive block_actions payload.
type blockActions struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		MessageTS string `json:"message_ts"`
		ThreadTS  string `json:"thread_ts"`
		ChannelID string `json:"channel_id"`
	} `json:"container"`
	Message struct {
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
	} `json:"message"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
	} `json:"actions"`
}

// inbound is one message to hand to the pipeline, with the keys that
// identify its event for de-duplication.
type inbound struct {
	msg  chat.Message
	keys []string
	// addressed, when set, decides on the handler's goroutine (after the
	// event is acknowledged) whether the message is for Parley at all: a
	// thread reply without a mention is, in a thread Parley answered in.
	addressed func(ctx context.Context) bool
	// prepare, when set, runs on the handler's goroutine before the
	// message is handled; false drops it (it answered already).
	prepare func(ctx context.Context, m *chat.Message) bool
}

// readSubtypes are the message subtypes people's messages carry: a
// message with a file attached, and a thread reply also sent to the
// channel. Every other subtype (edits, joins, bot messages, …) is not a
// request.
var readSubtypes = map[string]bool{"": true, "file_share": true, "thread_broadcast": true}

// decodeEvent turns an event_callback into the message to handle, if any.
// It reads, from people only (never a bot, Parley included), unedited
// messages: mentions of the bot, DMs, messages in bound channels, and
// replies in threads Parley started or answered in (checked after the
// acknowledgement, see addressed). Anything else is ignored.
func (a *Adapter) decodeEvent(cb eventCallback) (inbound, bool, error) {
	if cb.Type != "event_callback" || len(cb.Event) == 0 {
		return inbound{}, false, nil
	}
	var ev messageEvent
	if err := json.Unmarshal(cb.Event, &ev); err != nil {
		return inbound{}, false, fmt.Errorf("decode event %s: %w", cb.EventID, err)
	}
	botUser, botID := a.bot()
	if ev.User == "" || ev.BotID != "" || !readSubtypes[ev.Subtype] || len(ev.Edited) > 0 && string(ev.Edited) != "null" ||
		ev.User == botUser || botID != "" && ev.BotID == botID || ev.Channel == "" || ev.TS == "" {
		return inbound{}, false, nil
	}
	inThread := ev.ThreadTS != "" && ev.ThreadTS != ev.TS
	var addressed func(context.Context) bool
	switch ev.Type {
	case "app_mention":
	case "message":
		switch {
		case ev.ChannelType == "im" || a.bound(ev.Channel):
		case inThread && botUser != "" && ev.ParentUserID == botUser:
			// A thread under Parley's own message (a slash command's
			// request, an incident summary).
		case botUser != "" && strings.Contains(ev.Text, "<@"+botUser+">"):
			// A mention: its app_mention event carries it (the two share
			// a key, so this one must not be dropped in its place).
			return inbound{}, false, nil
		case inThread:
			channel, thread := ev.Channel, ev.ThreadTS
			addressed = func(ctx context.Context) bool { return a.threads.answered(ctx, channel, thread) }
		default:
			return inbound{}, false, nil
		}
	default:
		return inbound{}, false, nil
	}
	thread := ev.ThreadTS
	if thread == "" {
		thread = ev.TS
	}
	// The message's channel and ts name it durably: an app_mention and a
	// message event of one message (and Slack's retries of either) share
	// it, on every replica.
	id := "msg:" + ev.Channel + ":" + ev.TS
	msg := chat.Message{
		Platform: chat.Slack,
		Channel:  ev.Channel,
		Thread:   thread,
		User:     ev.User,
		UserName: ev.User,
		Text:     ev.Text,
		EventID:  id,
		Time:     a.tsTime(ev.TS),
		Groups:   a.groups.of(ev.User),
	}
	keys := []string{id}
	if cb.EventID != "" {
		keys = append(keys, "event:"+cb.EventID)
	}
	return inbound{msg: msg, keys: keys, addressed: addressed}, true, nil
}

// decodeActions turns a block_actions payload into one message per click on
// a Parley button.
func (a *Adapter) decodeActions(payload []byte) ([]inbound, error) {
	var p blockActions
	if err := json.Unmarshal(payload, &p); err != nil {
		return nil, fmt.Errorf("decode interactive payload: %w", err)
	}
	if p.Type != "block_actions" || p.User.ID == "" {
		return nil, nil
	}
	channel := p.Channel.ID
	if channel == "" {
		channel = p.Container.ChannelID
	}
	msgTS := p.Container.MessageTS
	if msgTS == "" {
		msgTS = p.Message.TS
	}
	thread := p.Container.ThreadTS
	if thread == "" {
		thread = p.Message.ThreadTS
	}
	if thread == "" {
		thread = msgTS
	}
	var out []inbound
	for _, act := range p.Actions {
		name, ok := strings.CutPrefix(act.ActionID, ActionPrefix)
		if !ok || channel == "" {
			continue
		}
		name, _, _ = strings.Cut(name, "#")
		id := "action:" + channel + ":" + msgTS + ":" + act.ActionTS + ":" + p.User.ID + ":" + act.ActionID
		userName := p.User.Username
		if userName == "" {
			userName = p.User.ID
		}
		out = append(out, inbound{
			msg: chat.Message{
				Platform: chat.Slack,
				Channel:  channel,
				Thread:   thread,
				User:     p.User.ID,
				UserName: userName,
				EventID:  id,
				Time:     a.tsTime(act.ActionTS),
				Groups:   a.groups.of(p.User.ID),
				Action:   &chat.ButtonClick{Action: name, Value: act.Value, MessageID: msgTS},
			},
			keys: []string{id},
		})
	}
	return out, nil
}

// tsTime reads a Slack ts ("1712345678.000200") as a time.
func (a *Adapter) tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || s <= 0 {
		return a.opts.Now()
	}
	var micros int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		micros, _ = strconv.ParseInt(frac, 10, 64)
	}
	return time.Unix(s, micros*1000).UTC()
}

// errBusy means the message could not be taken now; Slack will redeliver.
var errBusy = fmt.Errorf("slack: not accepting messages")

// deliver hands a decoded message to the handler once: a message whose
// event was seen before is dropped. The handler runs on its own goroutine,
// at most MaxHandlers at a time; deliver waits for a slot until wait ends.
func (a *Adapter) deliver(wait context.Context, in inbound) error {
	if !a.seen.add(in.keys...) {
		a.log.Debug("duplicate event dropped", "event", in.msg.EventID)
		return nil
	}
	a.mu.Lock()
	h, runCtx, hctx := a.handler, a.runCtx, a.hctx
	if h != nil {
		a.handling.Add(1)
	}
	a.mu.Unlock()
	if h == nil {
		a.seen.forget(in.keys...)
		return errBusy
	}
	select {
	case a.sem <- struct{}{}:
	case <-wait.Done():
		a.handling.Done()
		a.seen.forget(in.keys...)
		return errBusy
	case <-runCtx.Done():
		a.handling.Done()
		a.seen.forget(in.keys...)
		return errBusy
	}
	go func() {
		defer a.handling.Done()
		defer func() { <-a.sem }()
		if in.addressed != nil && !in.addressed(hctx) {
			a.log.Debug("thread reply not for Parley", "event", in.msg.EventID)
			return
		}
		msg := in.msg
		if in.prepare != nil && !in.prepare(hctx, &msg) {
			return
		}
		h.Handle(hctx, msg)
	}()
	return nil
}

// lru is a bounded set of recently seen keys.
type lru struct {
	mu    sync.Mutex
	cap   int
	order *list.List
	items map[string]*list.Element
}

func newLRU(capacity int) *lru {
	return &lru{cap: capacity, order: list.New(), items: map[string]*list.Element{}}
}

// add records the keys and reports whether none of them was seen before.
func (l *lru) add(keys ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e, ok := l.items[k]; ok {
			l.order.MoveToFront(e)
			for _, k := range keys { // remember the others too
				if _, ok := l.items[k]; !ok {
					l.items[k] = l.order.PushFront(k)
				}
			}
			l.trim()
			return false
		}
	}
	for _, k := range keys {
		l.items[k] = l.order.PushFront(k)
	}
	l.trim()
	return true
}

func (l *lru) has(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.items[key]
	return ok
}

func (l *lru) forget(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if e, ok := l.items[k]; ok {
			l.order.Remove(e)
			delete(l.items, k)
		}
	}
}

func (l *lru) trim() {
	for l.order.Len() > l.cap {
		e := l.order.Back()
		l.order.Remove(e)
		delete(l.items, e.Value.(string))
	}
}
