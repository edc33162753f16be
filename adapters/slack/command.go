package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
)

// CommandName is the slash command Parley answers.
const CommandName = "/parley"

// slashCommand is a /parley invocation as Slack sends it: form fields over
// HTTP, the same fields as a JSON object in a Socket Mode envelope.
type slashCommand struct {
	Command     string `json:"command"`
	Text        string `json:"text"`
	UserID      string `json:"user_id"`
	UserName    string `json:"user_name"`
	ChannelID   string `json:"channel_id"`
	TriggerID   string `json:"trigger_id"`
	ResponseURL string `json:"response_url"`
}

func commandFromForm(form url.Values) slashCommand {
	return slashCommand{
		Command: form.Get("command"), Text: form.Get("text"), UserID: form.Get("user_id"), UserName: form.Get("user_name"),
		ChannelID: form.Get("channel_id"), TriggerID: form.Get("trigger_id"), ResponseURL: form.Get("response_url"),
	}
}

// privateRequest is a slash command asked for help (no text, or "help"):
// everything Parley says about it goes only to the asker, through the
// command's response_url, and nothing is posted in the channel.
type privateRequest struct {
	user, channel, responseURL string
	at                         time.Time
}

// responseURLLife is how long Slack accepts a response_url.
const responseURLLife = 30 * time.Minute

// privateRequests are the private slash requests in flight, by their
// thread ("slash:" and the trigger id).
type privateRequests struct {
	mu sync.Mutex
	m  map[string]privateRequest
}

func (p *privateRequests) put(thread string, r privateRequest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]privateRequest{}
	}
	for k, v := range p.m {
		if r.at.Sub(v.at) > responseURLLife {
			delete(p.m, k)
		}
	}
	p.m[thread] = r
}

func (p *privateRequests) get(thread string) (privateRequest, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.m[thread]
	return r, ok
}

// privateThreadBase prefixes the thread of a private slash request;
// commandKeyBase the State key a replica claims a command under.
const (
	privateThreadBase = "slash:"
	commandKeyBase    = "slack-command:"
)

// claim records key as taken by this adapter, and reports whether it was
// this adapter that took it (State keeps the first writer's value). When
// State fails it says yes: answering twice beats not answering.
func (a *Adapter) claim(ctx context.Context, key string) bool {
	ctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	if err := a.threads.state.Put(ctx, key, a.instance); err != nil {
		a.log.Warn("claim not recorded; handling the command", "key", key, "err", err)
		return true
	}
	v, ok, err := a.threads.state.Get(ctx, key)
	if err != nil || !ok {
		a.log.Warn("claim not read back; handling the command", "key", key, "err", err)
		return true
	}
	return v == a.instance
}

// decodeCommand turns a slash command into the message to handle. It runs
// after the command is acknowledged (Slack allows 3 seconds; the pipeline
// may take longer).
//
// /parley with no text, or "help", is private: the pipeline answers it as
// help, only to the asker. Any other request gets a public anchor in the
// channel first ("@maya asked: /parley scale checkout to 5 in prod"),
// whose thread then holds everything about it as for a mention:
// confirmations, results and the audit trail in public, refusals only to
// the asker.
func (a *Adapter) decodeCommand(c slashCommand) (inbound, bool) {
	if c.Command != "" && c.Command != CommandName {
		a.log.Info("ignoring a slash command that is not Parley's", "command", c.Command)
		return inbound{}, false
	}
	if c.UserID == "" || c.ChannelID == "" || c.TriggerID == "" {
		a.log.Warn("slash command without user, channel or trigger id; ignored")
		return inbound{}, false
	}
	id := "cmd:" + c.TriggerID
	text := strings.TrimSpace(c.Text)
	msg := chat.Message{
		Platform: chat.Slack, Channel: c.ChannelID, User: c.UserID, UserName: nonEmptyOr(c.UserName, c.UserID),
		Text: text, EventID: id, Time: a.opts.Now(), Groups: a.groups.of(c.UserID),
	}
	in := inbound{msg: msg, keys: []string{id}}
	if text == "" || strings.EqualFold(text, "help") || text == "?" {
		in.msg.Text = "help"
		in.msg.Thread = privateThreadBase + c.TriggerID
		a.private.put(in.msg.Thread, privateRequest{user: c.UserID, channel: c.ChannelID, responseURL: c.ResponseURL, at: a.opts.Now()})
		return in, true
	}
	in.prepare = func(ctx context.Context, m *chat.Message) bool {
		// The anchor is posted before the pipeline's de-duplication sees
		// the command: claim it first, so a command delivered to two
		// replicas is anchored (and answered) once.
		if !a.claim(ctx, commandKeyBase+c.TriggerID) {
			a.log.Debug("slash command taken by another replica", "trigger", c.TriggerID)
			return false
		}
		ts, err := a.out.sendRaw(ctx, c.ChannelID, fmt.Sprintf("<@%s> asked: %s %s", c.UserID, CommandName, escape(oneLine(text))))
		if err != nil {
			a.log.Warn("slash command not taken: cannot post in the channel", "channel", c.ChannelID, "err", err)
			a.respond(ctx, c.ResponseURL, "I cannot post in this channel, so I did not act on `"+CommandName+" "+escape(oneLine(text))+
				"`. Invite me first (`/invite @Parley`), or ask me in a channel I am in or in a direct message. Nothing was run.")
			return false
		}
		a.threads.mark(ctx, c.ChannelID, ts)
		m.Thread = ts
		return true
	}
	return in, true
}

func nonEmptyOr(s, alt string) string {
	if s != "" {
		return s
	}
	return alt
}

// respond posts an ephemeral message to a slash command's response_url,
// logging a failure (the asker then sees Slack's own timeout note).
func (a *Adapter) respond(ctx context.Context, responseURL, text string) {
	if err := a.postResponse(ctx, responseURL, Message{Text: text}); err != nil {
		a.log.Warn("response_url not answered", "err", err)
	}
}

// postResponse posts msg, ephemeral, to a response_url. Only Slack's own
// hooks host (or the configured API host, for tests and proxies) is
// called: the URL arrives in a request, and a forged one must not make
// Parley call elsewhere.
func (a *Adapter) postResponse(ctx context.Context, responseURL string, msg Message) error {
	u, err := url.Parse(responseURL)
	if err != nil || !a.responseHostOK(u) {
		return fmt.Errorf("slack: response_url host %q is not Slack's", hostOf(u))
	}
	body, err := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": msg.Text, "blocks": msg.Blocks})
	if err != nil {
		return fmt.Errorf("slack: response: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("slack: response: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("slack: response_url: %s", a.redact(err.Error()))
	}
	defer resp.Body.Close()
	// Drained so the connection is reused; the status alone decides.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)); err != nil {
		a.log.Debug("response_url body not read to the end; the connection is not reused", "err", a.redact(err.Error()))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("slack: response_url answered %s", resp.Status)
	}
	return nil
}

func hostOf(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Host
}

func (a *Adapter) responseHostOK(u *url.URL) bool {
	if u.Scheme == "https" && u.Host == "hooks.slack.com" {
		return true
	}
	if a.opts.APIURL == "" {
		return false
	}
	api, err := url.Parse(a.opts.APIURL)
	return err == nil && api.Scheme == u.Scheme && api.Host == u.Host
}
