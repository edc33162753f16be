package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/policy"
)

// confirmCommand is a typed "confirm CODE" / "cancel CODE".
type confirmCommand struct {
	cancel bool
	code   string // empty: the one pending request the sender may act on
}

var (
	mentionRE    = regexp.MustCompile(`<[@#!][^>]*>`)
	confirmCmdRE = regexp.MustCompile(`^(?i)(confirm|confirmed|approve|approved|cancel|abort|deny|reject)(?:\s+([a-z0-9]{4}))?[.!]?$`)
)

// parseConfirmCommand recognises a confirmation command, tolerating a
// leading mention and light markup ("<@U1> *confirm* `K7Q2`").
func parseConfirmCommand(text string) (confirmCommand, bool) {
	t := mentionRE.ReplaceAllString(text, " ")
	t = strings.NewReplacer("*", "", "`", "", "_", " ", "\"", "", "'", "").Replace(t)
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
func (p *Pipeline) decide(ctx context.Context, req *request, c confirm.Confirmation, cancel bool) {
	who := req.msg.Subject()
	req.msg.Thread = firstNonEmpty(c.Thread, req.msg.Thread)
	base := audit.Event{Action: c.Action, Params: c.Params, ConfirmationID: c.ID, Rule: c.Rule}
	now := p.cfg.Now()

	if c.State != confirm.Pending {
		ev := base
		ev.Type, ev.Error = audit.ConfirmationDenied, "already "+string(c.State)
		_, _ = p.record(ctx, req, ev)
		text := fmt.Sprintf("Request %s was already %s; a request runs at most once. Nothing was run.", c.Code, stateWords(c))
		if c.State == confirm.Expired {
			text = fmt.Sprintf("Request %s expired at %s without confirmation; nothing was changed. Ask again if it is still needed.", c.Code, c.ExpiresAt.UTC().Format("15:04:05 MST"))
		}
		p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: text, Visibility: chat.Private})
		return
	}
	if !now.Before(c.ExpiresAt) {
		p.sweep(ctx)
		p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: fmt.Sprintf("Request %s expired at %s; nothing was changed. Ask again if it is still needed.", c.Code, c.ExpiresAt.UTC().Format("15:04:05 MST")), Visibility: chat.Private})
		return
	}
	if cancel {
		if who != c.Requester && p.deps.Policy.CanApprove(decisionOf(c), c.Requester, who, req.msg.Groups) != nil {
			ev := base
			ev.Type, ev.Error = audit.ConfirmationDenied, "cancel by someone who is neither requester nor approver"
			_, _ = p.record(ctx, req, ev)
			p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: fmt.Sprintf("Only %s or an approver can cancel %s.", c.Requester, c.Code), Visibility: chat.Private})
			return
		}
		if _, err := p.deps.Confirmations.Cancel(ctx, c.ID, who); err != nil {
			p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: fmt.Sprintf("Could not cancel %s: %v.", c.Code, err), Visibility: chat.Private})
			return
		}
		ev := base
		ev.Type, ev.Outcome = audit.ConfirmationCancelled, "cancelled by "+who
		_, _ = p.record(ctx, req, ev)
		p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: fmt.Sprintf("Cancelled %s (%s). Nothing was changed.", c.Code, c.PlanSummary)})
		return
	}
	// deny refuses this confirmer, privately; void also ends the request
	// (the policy or the target changed), which the thread hears.
	refuse := func(why, text string, vis chat.Visibility) {
		p.cfg.Metrics.Confirmation("denied")
		ev := base
		ev.Type, ev.Error = audit.ConfirmationDenied, why
		_, _ = p.record(ctx, req, ev)
		p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: text, Visibility: vis})
	}
	deny := func(why, text string) { refuse(why, text, chat.Private) }
	void := func(why, text string) { refuse(why, text, chat.Public) }
	if err := p.deps.Policy.CanApprove(decisionOf(c), c.Requester, who, req.msg.Groups); err != nil {
		deny(err.Error(), fmt.Sprintf("You (%s) cannot confirm %s: %v. Nothing was run.", who, c.Code, err))
		return
	}
	act, ok := p.deps.Actions.Get(c.Action)
	if !ok {
		deny("action no longer registered", fmt.Sprintf("%s is no longer available, so %s cannot run.", c.Action, c.Code))
		return
	}
	spec := act.Spec()
	// Policy is re-checked for the requester just before running: a rule
	// changed since the request takes effect now.
	d := p.deps.Policy.Decide(policy.Input{Subject: c.Requester, Groups: c.RequesterGroups, Channel: c.Channel, Action: c.Action, Kind: spec.Kind, Params: c.Params})
	if d.Effect == policy.Deny {
		void("policy now denies: "+d.Reason, fmt.Sprintf("The policy no longer allows this (%s). Nothing was run.", d.Reason))
		_, _ = p.deps.Confirmations.Cancel(ctx, c.ID, "policy")
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
			void("re-plan failed: "+err.Error(), failureText(spec, err)+" Nothing was run.")
			_, _ = p.deps.Confirmations.Cancel(ctx, c.ID, "parley")
			return
		}
		if plan.State != c.PlanState {
			void("target changed since the request",
				fmt.Sprintf("The target changed since %s was requested (now: %s). Nothing was run; ask again to act on the current state.", c.Code, plan.Summary))
			_, _ = p.deps.Confirmations.Cancel(ctx, c.ID, "parley")
			return
		}
	}
	claimed, err := p.deps.Confirmations.Claim(ctx, c.ID, who, now)
	if err != nil {
		switch {
		case errors.Is(err, confirm.ErrExpired):
			p.sweep(ctx)
			p.reply(ctx, req, chat.Reply{Kind: chat.KindDenied, Text: fmt.Sprintf("Request %s has expired; nothing was changed.", c.Code), Visibility: chat.Private})
		case errors.Is(err, confirm.ErrAlreadyUsed):
			deny("already used", fmt.Sprintf("Request %s was already confirmed; it runs at most once. Nothing more was run.", c.Code))
		default:
			deny(err.Error(), fmt.Sprintf("Could not confirm %s: %v. Nothing was run.", c.Code, err))
		}
		return
	}
	p.cfg.Metrics.Confirmation("granted")
	ev := base
	ev.Type, ev.Decision, ev.Outcome = audit.ConfirmationGranted, string(policy.Confirm), "confirmed by "+who
	if _, err := p.record(ctx, req, ev); err != nil {
		_ = p.deps.Confirmations.Finish(ctx, claimed.ID, confirm.Failed, "not run: audit log unavailable")
		p.auditDown(ctx, req)
		return
	}
	// The requester is the one acting; the approver is recorded on the
	// confirmation. Actions that impersonate use the requester.
	runReq := &request{id: req.id, msg: req.msg}
	runReq.msg.User = strings.TrimPrefix(c.Requester, req.msg.Platform+":")
	runReq.msg.Groups = c.RequesterGroups
	res, err := p.execute(ctx, runReq, act, claimed.Params, claimed.ID)
	// The run's answer is this request's answer too: a clicked prompt is
	// settled with it.
	runReq.mu.Lock()
	last := runReq.lastReply
	runReq.mu.Unlock()
	req.mu.Lock()
	req.lastReply = last
	req.mu.Unlock()
	state, outcome := confirm.Done, outcomeText(res)
	if err != nil {
		state, outcome = confirm.Failed, err.Error()
	}
	if ferr := p.deps.Confirmations.Finish(ctx, claimed.ID, state, outcome); ferr != nil {
		p.log.Error("recording confirmation outcome failed", "confirmation", claimed.ID, "err", ferr)
	}
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

// sweep expires overdue confirmations, auditing and announcing each once.
func (p *Pipeline) sweep(ctx context.Context) {
	expired, err := p.deps.Confirmations.ExpireDue(ctx, p.cfg.Now())
	if err != nil {
		p.log.Warn("expiring confirmations failed", "err", err)
		return
	}
	for _, c := range expired {
		p.cfg.Metrics.Confirmation("expired")
		p.announce(ctx, c, audit.ConfirmationExpired, "",
			fmt.Sprintf("Request %s (%s) expired without confirmation; nothing was changed.", c.Code, c.PlanSummary))
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

// Recover marks confirmations that were executing when Parley stopped as
// interrupted (never run again: at most once), audits and announces them.
// Call it once at start-up, before handling messages.
func (p *Pipeline) Recover(ctx context.Context) error {
	lost, err := p.deps.Confirmations.RecoverInterrupted(ctx)
	if err != nil {
		return fmt.Errorf("recover interrupted confirmations: %w", err)
	}
	for _, c := range lost {
		p.announce(ctx, c, audit.ActionInterrupted, "Parley stopped while this action was running",
			fmt.Sprintf("Parley restarted while %s (%s) was running. It will not be run again automatically; check the target and ask again if needed.", c.Code, c.PlanSummary))
	}
	return nil
}

// announce audits a confirmation event that no message triggered and tells
// its channel.
func (p *Pipeline) announce(ctx context.Context, c confirm.Confirmation, typ audit.Type, errText, text string) {
	platform, channel, _ := strings.Cut(c.Channel, ":")
	req := &request{id: c.RequestID, msg: chat.Message{Platform: platform, Channel: channel, Thread: c.Thread, User: strings.TrimPrefix(c.Requester, platform+":")}}
	_, _ = p.record(ctx, req, audit.Event{Type: typ, Action: c.Action, Params: c.Params, ConfirmationID: c.ID, Rule: c.Rule, Error: errText, Subject: c.Requester})
	p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: text})
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

// EncodeSuggestion is the button value for a suggested action.
func EncodeSuggestion(s Suggestion) string {
	b, _ := json.Marshal(s)
	return string(b)
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
	ev, _ := p.record(ctx, req, audit.Event{Type: audit.ActionSucceeded, Action: action.EvaluationRun,
		Params: action.Params{"run": id}, Outcome: fmt.Sprintf("run %d cancelled by %s", id, subject)})
	p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: fmt.Sprintf("Cancelling evaluation run %d; cases already answered are kept.", id), Context: auditContext(ev)})
}
