package slack

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// maxSocketMessage bounds one WebSocket message from Slack.
const maxSocketMessage = 4 << 20

// runSocket receives envelopes over Socket Mode until ctx ends. socketmode
// reconnects with backoff after a dropped socket; Slack redelivers what was
// not acknowledged, and de-duplication by event id keeps each event to one
// handling.
func (a *Adapter) runSocket(ctx context.Context) error {
	smc := socketmode.New(a.api, socketmode.OptionLog(debugLog{a}), socketmode.OptionReadLimit(maxSocketMessage))
	done := make(chan error, 1)
	go func() { done <- smc.RunContext(ctx) }()
	for {
		select {
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return a.wrap("socket mode", err, errKindOfConnect(err))
		case evt := <-smc.Events:
			a.onSocketEvent(ctx, smc, evt)
		}
	}
}

func errKindOfConnect(err error) error {
	return kindOf(err)
}

func (a *Adapter) onSocketEvent(ctx context.Context, smc *socketmode.Client, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		a.log.Debug("socket mode connecting")
	case socketmode.EventTypeConnected:
		a.log.Info("socket mode connected")
	case socketmode.EventTypeConnectionError:
		if e, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			a.log.Warn("socket mode connection failed; retrying", "attempt", e.Attempt, "backoff", e.Backoff, "err", a.redact(fmt.Sprint(e.ErrorObj)))
		}
	case socketmode.EventTypeInvalidAuth:
		a.log.Error("socket mode: the app-level token was refused")
	case socketmode.EventTypeIncomingError:
		if e, ok := evt.Data.(*slack.IncomingEventError); ok {
			a.log.Warn("socket mode read failed; reconnecting", "err", a.redact(fmt.Sprint(e.ErrorObj)))
		}
	case socketmode.EventTypeErrorWriteFailed:
		a.log.Warn("socket mode acknowledgement not written")
	case socketmode.EventTypeErrorBadMessage:
		// socketmode could not parse the envelope into its own types (for
		// example an unknown inner event); read the envelope ourselves so it
		// is still acknowledged and, when it is ours, handled.
		if e, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			var req socketmode.Request
			if err := json.Unmarshal(e.Message, &req); err != nil || req.EnvelopeID == "" {
				a.log.Warn("socket mode message unreadable", "err", fmt.Sprint(e.Cause))
				return
			}
			a.onEnvelope(ctx, smc, &req)
		}
	case socketmode.EventTypeEventsAPI, socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand:
		if evt.Request != nil {
			a.onEnvelope(ctx, smc, evt.Request)
		}
	}
}

// onEnvelope acknowledges an envelope at once and then handles it.
func (a *Adapter) onEnvelope(ctx context.Context, smc *socketmode.Client, req *socketmode.Request) {
	if req.EnvelopeID != "" {
		if err := smc.AckCtx(ctx, req.EnvelopeID, nil); err != nil {
			a.log.Warn("socket mode ack failed", "envelope", req.EnvelopeID, "err", err)
		}
	}
	if req.RetryAttempt > 0 {
		a.log.Debug("redelivered envelope", "envelope", req.EnvelopeID, "attempt", req.RetryAttempt, "reason", req.RetryReason)
	}
	switch req.Type {
	case socketmode.RequestTypeEventsAPI:
		var cb eventCallback
		if err := json.Unmarshal(req.Payload, &cb); err != nil {
			a.log.Warn("events_api payload unreadable", "envelope", req.EnvelopeID, "err", err)
			return
		}
		in, ok, err := a.decodeEvent(cb)
		if err != nil {
			a.log.Warn("event unreadable", "envelope", req.EnvelopeID, "err", err)
			return
		}
		if ok {
			a.handOver(ctx, in)
		}
	case socketmode.RequestTypeSlashCommands:
		var c slashCommand
		if err := json.Unmarshal(req.Payload, &c); err != nil {
			a.log.Warn("slash command payload unreadable", "envelope", req.EnvelopeID, "err", err)
			return
		}
		if in, ok := a.decodeCommand(c); ok {
			a.handOver(ctx, in)
		}
	case socketmode.RequestTypeInteractive:
		ins, err := a.decodeActions(req.Payload)
		if err != nil {
			a.log.Warn("interactive payload unreadable", "envelope", req.EnvelopeID, "err", err)
			return
		}
		for _, in := range ins {
			a.handOver(ctx, in)
		}
	}
}

// handOver delivers a message from the socket loop, waiting for a handler
// slot: a full pipeline slows the loop rather than dropping messages.
func (a *Adapter) handOver(ctx context.Context, in inbound) {
	if err := a.deliver(ctx, in); err != nil {
		a.log.Warn("message not handled: adapter stopping", "event", in.msg.EventID)
	}
}
