package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/crashpoint"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/internal/store"
)

// confirmCommand is a typed "confirm CODE" / "cancel CODE".
type confirmCommand struct {
	cancel bool
	code   string // empty: the one pending request the sender may act on
}

var (
	// markupStripper takes light chat markup out of a command.
	markupStripper = strings.NewReplacer("*", "", "`", "", "_", " ", "\"", "", "'", "")
	mentionRE      = regexp.MustCompile(`<[@#!][^>]*>`)
	confirmCmdRE   = regexp.MustCompile(`^(?i)(confirm|confirmed|approve|approved|cancel|abort|deny|reject)(?:\s+([a-z0-9]{4}))?[.!]?$`)
)

// parseConfirmCommand recognises a confirmation command, tolerating a
// leading mention and light markup ("<@U1> *confirm* `K7Q2`").
func parseConfirmCommand(text string) (confirmCommand, bool) {
	t := mentionRE.ReplaceAllString(text, " ")
	t = markupStripper.Replace(t)
	t = strings.Join(strings.Fields(t), " ")
	m := confirmCmdRE.FindStringSubmatch(t)
	if m == nil {
		return confirmCommand{}, false
	}
	verb := strings.ToLower(m[1])
	return confirmCommand{
		cancel: verb == "cancel" || verb == "abort" || verb == "deny" || verb == "reject",
		code:   strings.ToUpper(m[2]),
	}, true
}

func (p *Pipeline) handleClick(ctx context.Context, req *request) {
	click := req.msg.Action
	switch click.Action {
	case "confirm", "cancel":
		c, err := p.deps.Confirmations.Get(ctx, click.Value)
		if err != nil || c.Channel != req.msg.ChannelRef() {
			p.rejectInput(ctx, req, "That button belongs to a request I no longer know here; nothing was run.")
			return
		}
		p.decide(ctx, req, c, click.Action == "cancel")
		// Only the click that settled the request rewrites the prompt: a
		// refused click (someone who may not approve) leaves the buttons
		// for those who may, and a late second click must not hide the
		// outcome already shown there.
		if after, err := p.deps.Confirmations.Get(ctx, c.ID); c.State == confirm.Pending && err == nil && after.State != confirm.Pending {
			p.settlePrompt(ctx, req, after)
		}
	case "run":
		p.handleSuggestion(ctx, req, click.Value)
	default:
		p.rejectInput(ctx, req, fmt.Sprintf("Unknown button %q; nothing was run.", click.Action))
	}
}

func (p *Pipeline) handleConfirmCommand(ctx context.Context, req *request, cmd confirmCommand) {
	channel := req.msg.ChannelRef()
	if cmd.code != "" {
		c, err := p.deps.Confirmations.FindByCode(ctx, channel, cmd.code)
		if err != nil {
			// Not pending: say what became of it, if it ever existed here.
			c, err = p.deps.Confirmations.LatestByCode(ctx, channel, cmd.code)
		}
		if err != nil {
			p.rejectInput(ctx, req, fmt.Sprintf("There is no pending request %s in this channel (it may have expired, been used, or been cancelled). Nothing was run.", cmd.code))
			return
		}
		p.decide(ctx, req, c, cmd.cancel)
		return
	}
	pending, err := p.deps.Confirmations.PendingIn(ctx, channel)
	if err != nil {
		p.rejectInput(ctx, req, "I cannot read the pending requests right now; nothing was run.")
		return
	}
	var mine []confirm.Confirmation
	for _, c := range pending {
		if cmd.cancel && c.Requester == req.msg.Subject() {
			mine = append(mine, c)
			continue
		}
		if !cmd.cancel && p.deps.Policy.CanApprove(decisionOf(c), c.Requester, req.msg.Subject(), req.msg.Groups) == nil {
			mine = append(mine, c)
		}
	}
	switch len(mine) {
	case 0:
		p.rejectInput(ctx, req, "There is no pending request here that you can "+verb(cmd.cancel)+". Nothing was run.")
	case 1:
		p.decide(ctx, req, mine[0], cmd.cancel)
	default:
		var codes []string
		for _, c := range mine {
			codes = append(codes, fmt.Sprintf("%s (%s)", c.Code, c.PlanSummary))
		}
		p.rejectInput(ctx, req, fmt.Sprintf("Several requests are pending: %s. Say \"%s CODE\" to pick one.", strings.Join(codes, "; "), verb(cmd.cancel)))
	}
}

func verb(cancel bool) string {
	if cancel {
		return "cancel"
	}
	return "confirm"
}

func decisionOf(c confirm.Confirmation) policy.Decision {
	return policy.Decision{Effect: policy.Confirm, Rule: c.Rule, Approvers: c.Approvers, DistinctApprover: c.DistinctApprover}
}

// decide applies a confirm or cancel from the sender to a confirmation.
// Every answer it gives is audited under the sender's request; a failure
// to write the audit log or the store is told to the sender in plain words.
func (p *Pipeline) decide(ctx context.Context, req *request, c confirm.Confirmation, cancel bool) {
	who := req.msg.Subject()
	req.msg.Thread = firstNonEmpty(c.Thread, req.msg.Thread)
	base := audit.Event{Action: c.Action, Params: c.Params, ConfirmationID: c.ID, Rule: c.Rule}
	now := p.cfg.Now()
	// refuse records a refusal and answers it, to the confirmer only: the
	// request itself stands (see denyAndCancel for one that ends it).
	refuse := func(kind chat.ReplyKind, why, text string) {
		ev := base
		ev.Type, ev.Error = audit.ConfirmationDenied, why
		if _, err := p.record(ctx, req, ev); err != nil {
			text += auditNote(err)
		}
		p.reply(ctx, req, chat.Reply{Kind: kind, Text: text, Visibility: chat.Private})
	}

	if c.State != confirm.Pending {
		text := fmt.Sprintf("Request %s was already %s; a request runs at most once. Nothing was run.", c.Code, stateWords(c))
		if c.State == confirm.Expired {
			text = fmt.Sprintf("Request %s expired at %s without confirmation; nothing was changed. Ask again if it is still needed.", c.Code, c.ExpiresAt.UTC().Format("15:04:05 MST"))
		}
		refuse(chat.KindDenied, "already "+string(c.State), text)
		return
	}
	expired := func() {
		p.sweep(ctx)
		refuse(chat.KindDenied, "expired", fmt.Sprintf("Request %s expired at %s; nothing was changed. Ask again if it is still needed.", c.Code, c.ExpiresAt.UTC().Format("15:04:05 MST")))
	}
	if !now.Before(c.ExpiresAt) {
		expired()
		return
	}
	if cancel {
		if who != c.Requester && p.deps.Policy.CanApprove(decisionOf(c), c.Requester, who, req.msg.Groups) != nil {
			refuse(chat.KindDenied, "cancel by someone who is neither requester nor approver",
				fmt.Sprintf("Only %s or an approver can cancel %s.", c.Requester, c.Code))
			return
		}
		_, err := p.recordWith(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
			if _, err := p.deps.Confirmations.CancelTx(ctx, tx, c.ID, who); err != nil {
				return nil, err
			}
			ev := base
			ev.Type, ev.Outcome = audit.ConfirmationCancelled, "cancelled by "+who
			return []audit.Event{ev}, nil
		})
		switch {
		case err == nil:
			p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: fmt.Sprintf("Cancelled %s (%s). Nothing was changed.", c.Code, c.PlanSummary)})
		case refusedByStore(err):
			refuse(chat.KindDenied, err.Error(), fmt.Sprintf("Could not cancel %s: %v.", c.Code, err))
		default:
			p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: fmt.Sprintf(
				"I could not cancel %s: recording it failed (%v). It is still pending; try again in a moment.", c.Code, err), Visibility: chat.Private})
		}
		return
	}
	deny := func(why, text string) {
		p.cfg.Metrics.Confirmation("denied")
		refuse(chat.KindDenied, why, text)
	}
	// denyAndCancel refuses and withdraws the confirmation, both recorded
	// in one transaction: it can never run after this answer. It ends the
	// request (the policy or the target changed), so the thread hears it.
	denyAndCancel := func(why, text string) {
		p.cfg.Metrics.Confirmation("denied")
		_, err := p.recordWith(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
			if _, err := p.deps.Confirmations.CancelTx(ctx, tx, c.ID, "parley"); err != nil {
				return nil, err
			}
			denied, cancelled := base, base
			denied.Type, denied.Error = audit.ConfirmationDenied, why
			cancelled.Type, cancelled.Outcome = audit.ConfirmationCancelled, "cancelled by parley: "+why
			return []audit.Event{denied, cancelled}, nil
		})
		if err != nil {
			// The refusal stands: nothing runs now, and the same checks
			// refuse it again at the next confirmation.
			text += fmt.Sprintf(" (I could not record this refusal or cancel %s: %v. It stays pending until it expires, and is checked again if confirmed.)", c.Code, err)
		}
		p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: text})
	}
	if err := p.deps.Policy.CanApprove(decisionOf(c), c.Requester, who, req.msg.Groups); err != nil {
		deny(err.Error(), fmt.Sprintf("You (%s) cannot confirm %s: %v. Nothing was run.", who, c.Code, err))
		return
	}
	act, ok := p.deps.Actions.Get(c.Action)
	spec, _ := p.deps.Actions.Spec(c.Action)
	if !ok {
		deny("action no longer registered", fmt.Sprintf("%s is no longer available, so %s cannot run.", c.Action, c.Code))
		return
	}
	// Policy is re-checked for the requester just before running: a rule
	// changed since the request takes effect now.
	d := p.deps.Policy.Decide(policy.Input{Subject: c.Requester, Groups: c.RequesterGroups, Channel: c.Channel, Action: c.Action, Kind: spec.Kind, Params: c.Params})
	if d.Effect == policy.Deny {
		denyAndCancel("policy now denies: "+d.Reason, fmt.Sprintf("The policy no longer allows this (%s). Nothing was run.", d.Reason))
		return
	}
	// If the policy now demands more (another approver), the approver must
	// satisfy the current rule too, not only the one in force at request time.
	if err := p.deps.Policy.CanApprove(d, c.Requester, who, req.msg.Groups); err != nil {
		deny("policy now requires: "+err.Error(), fmt.Sprintf("You (%s) cannot confirm %s under the current policy: %v. Nothing was run.", who, c.Code, err))
		return
	}
	// The target is re-checked too: if it moved since the prompt, the user
	// confirmed something that is no longer what would happen.
	if pl, ok := act.(action.Planner); ok {
		pctx, cancelPlan := context.WithTimeout(ctx, p.cfg.ActionTimeout)
		plan, err := pl.Plan(pctx, action.Request{Action: c.Action, Params: c.Params, Subject: c.Requester, Groups: c.RequesterGroups, Channel: c.Channel, RequestID: c.RequestID})
		cancelPlan()
		if err != nil {
			denyAndCancel("re-plan failed: "+err.Error(), failureText(spec, err)+" Nothing was run.")
			return
		}
		if plan.State != c.PlanState {
			denyAndCancel("target changed since the request",
				fmt.Sprintf("The target changed since %s was requested (now: %s). Nothing was run; ask again to act on the current state.", c.Code, plan.Summary))
			return
		}
	}
	// The claim and confirmation.granted are committed together: a claim
	// is never without its record, nor a record without its claim.
	var claimed confirm.Confirmation
	_, err := p.recordWith(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
		var err error
		if claimed, err = p.deps.Confirmations.ClaimTx(ctx, tx, c.ID, who, now); err != nil {
			return nil, err
		}
		crashpoint.At(crashpoint.ConfirmationClaimed)
		ev := base
		ev.Type, ev.Decision, ev.Outcome = audit.ConfirmationGranted, string(policy.Confirm), "confirmed by "+who
		return []audit.Event{ev}, nil
	})
	if err != nil {
		switch {
		case errors.Is(err, confirm.ErrExpired):
			expired()
		case errors.Is(err, confirm.ErrAlreadyUsed):
			deny("already used", fmt.Sprintf("Request %s was already confirmed; it runs at most once. Nothing more was run.", c.Code))
		case errors.Is(err, confirm.ErrNotShown):
			deny("prompt never shown", fmt.Sprintf("Request %s cannot be confirmed: I have no record that its prompt was shown. Nothing was run; ask again.", c.Code))
		case refusedByStore(err):
			deny(err.Error(), fmt.Sprintf("Could not confirm %s: %v. Nothing was run.", c.Code, err))
		default:
			p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: fmt.Sprintf(
				"I could not record your confirmation of %s (%v), so nothing was run. It is still pending; confirm again in a moment.", c.Code, err), Visibility: chat.Private})
		}
		return
	}
	crashpoint.At(crashpoint.ConfirmationGranted)
	p.cfg.Metrics.Confirmation("granted")
	// The requester is the one acting; the approver is recorded on the
	// confirmation. Actions that impersonate use the requester.
	runReq := &request{id: req.id, msg: req.msg}
	runReq.msg.User = strings.TrimPrefix(c.Requester, req.msg.Platform+":")
	runReq.msg.Groups = c.RequesterGroups
	res, ran, err := p.execute(ctx, runReq, act, spec, claimed.Params, claimed.ID)
	// The run's answer is this request's answer too: a clicked prompt is
	// settled with it.
	runReq.mu.Lock()
	last := runReq.lastReply
	runReq.mu.Unlock()
	req.mu.Lock()
	req.lastReply = last
	req.mu.Unlock()
	state, outcome := confirm.Done, outcomeText(res)
	switch {
	case !ran:
		state, outcome = confirm.Failed, "not run: "+err.Error()
	case err != nil:
		state, outcome = confirm.Failed, err.Error()
	}
	if ferr := p.deps.Confirmations.Finish(ctx, claimed.ID, state, outcome); ferr != nil {
		p.log.Error("recording confirmation outcome failed", "confirmation", claimed.ID, "err", ferr)
		what := "ran"
		if !ran {
			what = "did not run"
		}
		p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: fmt.Sprintf(
			"%s %s, but saving its final state failed: %v. It is shown as still running until Parley's next start, which settles it from the audit log.",
			c.Code, what, ferr)})
		return
	}
	crashpoint.At(crashpoint.ConfirmationFinished)
}

// refusedByStore reports whether err is the confirmation store refusing a
// transition (expired, used, cancelled, ...) rather than failing to write.
func refusedByStore(err error) bool {
	for _, kind := range []error{confirm.ErrNotFound, confirm.ErrAlreadyUsed, confirm.ErrExpired, confirm.ErrCancelled,
		confirm.ErrSameApprover, confirm.ErrNotExecuting, confirm.ErrInvalid, confirm.ErrNotShown, confirm.ErrTaken} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

func stateWords(c confirm.Confirmation) string {
	switch c.State {
	case confirm.Executing, confirm.Done, confirm.Failed:
		s := "confirmed"
		if c.DecidedBy != "" {
			s += " by " + c.DecidedBy
		}
		return s + " (" + string(c.State) + ")"
	default:
		return string(c.State)
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// sweep expires overdue confirmations, each with its confirmation.expired
// event in the same transaction, and tells their channels.
func (p *Pipeline) sweep(ctx context.Context) {
	var expired []confirm.Confirmation
	_, err := p.recordEvents(ctx, &request{id: "sweep"}, func(tx *store.Tx) ([]audit.Event, error) {
		var err error
		if expired, err = p.deps.Confirmations.ExpireDueTx(ctx, tx, p.cfg.Now()); err != nil {
			return nil, err
		}
		events := make([]audit.Event, 0, len(expired))
		for _, c := range expired {
			events = append(events, confirmationEvent(c, audit.ConfirmationExpired))
		}
		return events, nil
	})
	if err != nil {
		// Nothing expired: the next sweep tries again, and an expired
		// confirmation cannot be claimed meanwhile (Claim checks the time).
		p.log.Warn("expiring confirmations failed", "err", err)
		return
	}
	for _, c := range expired {
		p.cfg.Metrics.Confirmation("expired")
		p.reply(ctx, requestOf(c), chat.Reply{Kind: chat.KindInfo,
			Text: fmt.Sprintf("Request %s (%s) expired without confirmation; nothing was changed.", c.Code, c.PlanSummary)})
	}
}

// Sweep is called periodically by the app to expire confirmations and to
// purge old keys from the shared de-duplication.
func (p *Pipeline) Sweep(ctx context.Context) {
	p.sweep(ctx)
	if p.deps.SeenEvents != nil {
		if _, err := p.deps.SeenEvents.Purge(ctx, p.cfg.Now()); err != nil {
			p.log.Warn("purging seen events failed", "err", err)
		}
	}
}

// confirmationEvent is an event about c that no message triggered,
// carrying the identity of the request that asked for it.
func confirmationEvent(c confirm.Confirmation, typ audit.Type) audit.Event {
	platform, _, _ := strings.Cut(c.Channel, ":")
	return audit.Event{Type: typ, RequestID: c.RequestID, Platform: platform, Channel: c.Channel, Thread: c.Thread,
		Subject: c.Requester, Action: c.Action, Params: c.Params, ConfirmationID: c.ID, Rule: c.Rule}
}

// requestOf is the request that asked for c, for telling its thread.
func requestOf(c confirm.Confirmation) *request {
	platform, channel, _ := strings.Cut(c.Channel, ":")
	return &request{id: c.RequestID, msg: chat.Message{Platform: platform, Channel: channel, Thread: c.Thread,
		User: strings.TrimPrefix(c.Requester, platform+":")}}
}

// Recover settles what a stopped Parley left unfinished, and tells the
// channels about each (at least once: the channel is told before the
// settlement is recorded, so a crash in between tells it again):
//
//   - a confirmation whose prompt is not known to have been shown is
//     cancelled: nothing runs that nobody was asked about;
//   - a confirmation that was executing is settled from the audit log:
//     done or failed when its outcome was recorded, interrupted otherwise
//     (never run again: at most once), saying whether it had started;
//   - a request that got no answer (stopped before its confirmation was
//     stored, or while a read ran) is marked interrupted.
//
// Call it once at start-up, before handling messages, with the chat
// adapters able to send; on a shared database call it periodically too, so
// that a replica that died and never came back is cleaned up by the others.
func (p *Pipeline) Recover(ctx context.Context) error {
	abandoned, err := p.deps.Confirmations.Abandoned(ctx)
	if err != nil {
		return fmt.Errorf("recover interrupted confirmations: %w", err)
	}
	var errs []error
	for _, c := range abandoned {
		c, err := p.deps.Confirmations.Adopt(ctx, c)
		if errors.Is(err, confirm.ErrTaken) {
			continue // another replica recovers it
		}
		if err == nil {
			err = p.recoverConfirmation(ctx, c)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("recover confirmation %s (%s): %w", c.Code, c.PlanSummary, err))
		}
	}
	if err := p.recoverRequests(ctx); err != nil {
		// Nothing runs for an unanswered request, so this does not stop
		// a start; the next Recover looks again.
		p.log.Warn("could not tell unanswered requests apart; their threads are not told this time", "err", err)
	}
	return errors.Join(errs...)
}

// recoverConfirmation settles one adopted confirmation.
func (p *Pipeline) recoverConfirmation(ctx context.Context, c confirm.Confirmation) error {
	req := requestOf(c)
	var (
		to      confirm.State
		outcome string
		event   *audit.Event // recorded with the settlement
		text    string
	)
	if c.State == confirm.Pending {
		to, outcome = confirm.Cancelled, "cancelled by parley: its prompt is not known to have been shown"
		ev := confirmationEvent(c, audit.ConfirmationCancelled)
		ev.Outcome, ev.Error = "cancelled by parley", "Parley stopped before recording that the prompt was shown"
		event = &ev
		text = fmt.Sprintf("Parley restarted without knowing whether it showed you the confirmation prompt for %s (%s), so that request is cancelled. Nothing was run; ask again if it is still needed.",
			c.Code, c.PlanSummary)
	} else {
		evs, err := p.deps.Audit.List(ctx, audit.Filter{ConfirmationID: c.ID,
			Types: []audit.Type{audit.ActionStarted, audit.ActionSucceeded, audit.ActionFailed}})
		var started, succeeded, failed *audit.Event
		if err != nil {
			// Without the log, whether it ran is unknown: settle it as
			// interrupted, never to run again.
			p.log.Error("reading an interrupted confirmation's audit events failed", "confirmation", c.ID, "err", err)
			started = &audit.Event{}
		}
		for i := range evs {
			switch e := &evs[i]; e.Type {
			case audit.ActionStarted:
				started = e
			case audit.ActionSucceeded:
				succeeded = e
			case audit.ActionFailed:
				failed = e
			}
		}
		switch {
		case succeeded != nil:
			to, outcome = confirm.Done, succeeded.Outcome
			text = fmt.Sprintf("Before Parley restarted, %s (%s) ran and succeeded: %s [audit #%d]", c.Code, c.PlanSummary, succeeded.Outcome, succeeded.Seq)
		case failed != nil:
			to, outcome = confirm.Failed, failed.Error
			text = fmt.Sprintf("Before Parley restarted, %s (%s) ran and failed: %s [audit #%d]", c.Code, c.PlanSummary, failed.Error, failed.Seq)
		case started != nil:
			to, outcome = confirm.Interrupted, "interrupted: Parley stopped while the action was running; it was not retried, check the target"
			ev := confirmationEvent(c, audit.ActionInterrupted)
			ev.Error = "Parley stopped while this action was running"
			event = &ev
			text = fmt.Sprintf("Parley restarted while %s (%s) was running, so whether it took effect is unknown. It will not be run again automatically; check the target and ask again if needed.", c.Code, c.PlanSummary)
		default:
			to, outcome = confirm.Interrupted, "interrupted: Parley stopped after the confirmation, before the action started; nothing was run"
			ev := confirmationEvent(c, audit.ActionInterrupted)
			ev.Error = "Parley stopped before the action started; nothing was run"
			event = &ev
			text = fmt.Sprintf("Parley restarted after %s (%s) was confirmed but before it started, so nothing was changed. It will not be run again automatically; ask again if it is still needed.", c.Code, c.PlanSummary)
		}
	}
	p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: text}) // an undelivered one is audited inside
	crashpoint.At(crashpoint.RecoverAnnounced)
	_, err := p.recordEvents(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
		if err := p.deps.Confirmations.SettleTx(ctx, tx, c, to, outcome); err != nil {
			return nil, err
		}
		if event == nil {
			return nil, nil
		}
		return []audit.Event{*event}, nil
	})
	if err != nil {
		return fmt.Errorf("settle it as %s: %w", to, err)
	}
	return nil
}

// requestWindow is how far back recovery looks for requests that got no
// answer; older ones are left alone.
const requestWindow = 24 * time.Hour

// answered are the event types that mean a request was answered (or is a
// confirmation's, which recoverConfirmation handles).
var answered = map[audit.Type]bool{
	audit.ActionSucceeded: true, audit.ActionFailed: true, audit.InputRejected: true,
	audit.ConfirmationRequested: true, audit.ConfirmationDenied: true, audit.ConfirmationCancelled: true,
	audit.ConfirmationGranted: true, audit.ActionInterrupted: true, audit.RequestInterrupted: true,
	audit.ReplyFailed: true,
}

// takenBy is the message.received detail naming the process that took
// the request (Confirmations.Self).
const takenBy = "taken_by"

// recoverRequests finds requests that a stopped process took
// (message.received) but never answered, tells their threads and records
// request.interrupted for each, so that each is told once.
func (p *Pipeline) recoverRequests(ctx context.Context) error {
	now := p.cfg.Now()
	since := now.Add(-requestWindow)
	p.mu.Lock()
	if p.requestsScanned.After(since) {
		since = p.requestsScanned.Add(-time.Minute) // overlap: a request's events span a moment
	}
	p.mu.Unlock()
	// Two passes over the log, holding a few fields per request, not the
	// events: the requests taken since the last look, then what followed.
	type taken struct {
		seq                                int64
		id, owner, text                    string
		platform, channel, thread, subject string
		at                                 time.Time
	}
	type state struct {
		answered, changes bool
		started           string // an action started for it
	}
	var reqs []taken
	states := map[string]*state{}
	err := p.deps.Audit.Each(ctx, audit.Filter{Since: since, Types: []audit.Type{audit.MessageReceived}}, func(e audit.Event) error {
		if e.RequestID == "" || states[e.RequestID] != nil {
			return nil
		}
		states[e.RequestID] = &state{}
		reqs = append(reqs, taken{seq: e.Seq, id: e.RequestID, owner: e.Details[takenBy], text: preview(e.Text, 80),
			platform: e.Platform, channel: e.Channel, thread: e.Thread, subject: e.Subject, at: e.Time})
		return nil
	})
	if err != nil {
		return fmt.Errorf("recover unanswered requests: %w", err)
	}
	if len(reqs) == 0 {
		p.markScanned(now)
		return nil
	}
	err = p.deps.Audit.Each(ctx, audit.Filter{AfterSeq: reqs[0].seq}, func(e audit.Event) error {
		st := states[e.RequestID]
		if st == nil {
			return nil
		}
		switch {
		case answered[e.Type], e.ConfirmationID != "":
			st.answered = true
		case e.Type == audit.PolicyDecided && e.Decision == audit.Deny:
			st.answered = true
		case e.Type == audit.IntentRouted && (e.Action == action.None || e.Error != ""):
			st.answered = true
		case e.Type == audit.ActionStarted:
			st.started = e.Action
			if s, ok := p.deps.Actions.Spec(e.Action); !ok || s.Kind != action.Read {
				st.changes = true
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recover unanswered requests: %w", err)
	}
	scanned := now // requests before it need no further look
	var errs []error
	for _, m := range reqs {
		st := states[m.id]
		if st.answered {
			continue
		}
		if !p.deps.Confirmations.IsAbandoned(m.owner, m.at) {
			// A live process is still on it: look again next time.
			if m.at.Before(scanned) {
				scanned = m.at
			}
			continue
		}
		_, channel, _ := strings.Cut(m.channel, ":")
		req := &request{id: m.id, msg: chat.Message{Platform: m.platform, Channel: channel, Thread: m.thread,
			User: strings.TrimPrefix(m.subject, m.platform+":")}}
		text := fmt.Sprintf("Parley restarted before it answered your request %q. It was not finished and nothing was run for it; ask again if you still need it.", m.text)
		if st.changes {
			text = fmt.Sprintf("Parley restarted before it answered your request %q, while %s was running; check its target. It will not be resumed; ask again if you still need it.", m.text, st.started)
		}
		p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: text})
		crashpoint.At(crashpoint.RecoverAnnounced)
		if _, err := p.recordEvents(ctx, req, func(*store.Tx) ([]audit.Event, error) {
			return []audit.Event{{Type: audit.RequestInterrupted, RequestID: m.id, Platform: m.platform,
				Channel: m.channel, Thread: m.thread, Subject: m.subject, Action: st.started,
				Error: "Parley stopped before answering"}}, nil
		}); err != nil {
			errs = append(errs, fmt.Errorf("record request %s as interrupted: %w", m.id, err))
		}
	}
	if len(errs) == 0 {
		p.markScanned(scanned)
	}
	return errors.Join(errs...)
}

// markScanned notes that requests taken before t were looked at.
func (p *Pipeline) markScanned(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t.After(p.requestsScanned) {
		p.requestsScanned = t
	}
}

// settlePrompt updates the clicked confirmation prompt in place: buttons
// removed, the outcome shown, so nobody clicks a settled request again.
func (p *Pipeline) settlePrompt(ctx context.Context, req *request, c confirm.Confirmation) {
	click := req.msg.Action
	if click == nil || click.MessageID == "" {
		return
	}
	req.mu.Lock()
	last := req.lastReply
	req.mu.Unlock()
	outcome, _, _ := strings.Cut(last.Text, "\n")
	kind := last.Kind
	if kind == "" || kind == chat.KindAudit {
		kind = chat.KindInfo
	}
	p.reply(ctx, req, chat.Reply{
		UpdateOf: click.MessageID,
		Kind:     kind,
		Text:     fmt.Sprintf("Request %s: %s\n%s (%s %s)", c.Code, c.PlanSummary, outcome, verbPast(click.Action), req.msg.Subject()),
	})
}

func verbPast(a string) string {
	if a == "cancel" {
		return "cancel clicked by"
	}
	return "confirm clicked by"
}

// Suggestion is what a "run" button carries: an action and its parameters,
// suggested by Parley (an incident summary's next steps). Clicking it is a
// request by the clicker, with the same validation, policy, confirmation
// and audit as typing it; a forged value gains nothing over typing.
type Suggestion struct {
	Action string         `json:"action"`
	Params map[string]any `json:"params,omitempty"`
}

// EncodeSuggestion is the button value for a suggested action. A value
// that JSON cannot hold (not a parameter type) is an error: no button.
func EncodeSuggestion(s Suggestion) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("suggested %s: %w", s.Action, err)
	}
	return string(b), nil
}

func (p *Pipeline) handleSuggestion(ctx context.Context, req *request, value string) {
	var s Suggestion
	if len(value) > 2000 || json.Unmarshal([]byte(value), &s) != nil || s.Action == "" {
		p.rejectInput(ctx, req, "That button does not carry a request I can read; nothing was run.")
		return
	}
	params := action.Params{}
	for k, v := range s.Params {
		params[k] = v
	}
	in := intent.Intent{Action: s.Action, Params: params, Confidence: 1, Source: "button", Note: "suggested action clicked"}
	if _, err := p.record(ctx, req, audit.Event{Type: audit.IntentRouted, Action: in.Action, Params: in.Params,
		Router: in.Source, Confidence: 1, Details: map[string]string{"note": in.Note}}); err != nil {
		p.auditDown(ctx, req)
		return
	}
	p.proceed(ctx, req, in, intent.Inventory{})
}

var cancelEvalRE = regexp.MustCompile(`^(?i)(?:please\s+)?(?:cancel|stop|abort|kill)\s+(?:the\s+)?eval(?:uation)?(?:\s+run)?\s+#?(\d{1,9})[.!]?$`)

// parseCancelEval recognises "cancel eval 42" (also "stop evaluation run #42").
func parseCancelEval(text string) (int, bool) {
	t := strings.Join(strings.Fields(mentionRE.ReplaceAllString(text, " ")), " ")
	m := cancelEvalRE.FindStringSubmatch(t)
	if m == nil {
		return 0, false
	}
	id, err := strconv.Atoi(m[1])
	return id, err == nil && id > 0
}

// handleCancelEval stops a running evaluation. Whoever may start
// evaluations here may stop one; the cancellation is audited.
func (p *Pipeline) handleCancelEval(ctx context.Context, req *request, id int) {
	subject, channel := req.msg.Subject(), req.msg.ChannelRef()
	if !p.deps.Policy.Permitted(subject, req.msg.Groups, channel, action.EvaluationRun) {
		p.rejectInput(ctx, req, fmt.Sprintf("You (%s) may not run evaluations here, so you cannot cancel one either.", subject))
		return
	}
	if !p.deps.CancelEval(id) {
		p.rejectInput(ctx, req, fmt.Sprintf("Evaluation run %d is not running here (it may have finished already). Nothing was cancelled.", id))
		return
	}
	text := fmt.Sprintf("Cancelling evaluation run %d; cases already answered are kept.", id)
	ev, err := p.record(ctx, req, audit.Event{Type: audit.ActionSucceeded, Action: action.EvaluationRun,
		Params: action.Params{"run": id}, Outcome: fmt.Sprintf("run %d cancelled by %s", id, subject)})
	if err != nil {
		text += auditNote(err)
	}
	p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: text, Context: auditContext(ev)})
}
