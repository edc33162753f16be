package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/crashpoint"
	"github.com/parley-chatops/parley/internal/intent"
	"github.com/parley-chatops/parley/internal/llmcost"
	"github.com/parley-chatops/parley/internal/policy"
	"github.com/parley-chatops/parley/internal/store"
)

// handleRequest routes a text request and takes it through validation,
// policy, and either execution (reads) or a confirmation prompt (changes).
func (p *Pipeline) handleRequest(ctx context.Context, req *request) {
	msg := req.msg
	var inv intent.Inventory
	if p.deps.Inventory != nil {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		i, err := p.deps.Inventory.Inventory(ictx)
		cancel()
		if err != nil {
			p.log.Warn("inventory unavailable; routing without it", "err", err)
		}
		inv = i
	}
	catalog := p.catalog
	if p.cfg.FilterCatalog {
		catalog = append(p.permitted(msg), p.helpSpecs()...)
	}
	routeStart := time.Now()
	in, err := p.deps.Router.Route(ctx, intent.Query{
		Text: msg.Text, Catalog: catalog, Inventory: inv, History: p.turns(msg),
		RequestID: req.id, Subject: msg.Subject(), Channel: msg.ChannelRef(),
	})
	p.cfg.Metrics.Routed(in.Source, in.Action, time.Since(routeStart))
	if err != nil {
		text := "I could not work out what you meant, so nothing was run: " + err.Error() + "."
		failed := audit.Event{Type: audit.IntentRouted, Action: action.None, Error: err.Error(), Details: map[string]string{}}
		if ce := (*llmcost.CallError)(nil); errors.As(err, &ce) { // what the failed model call spent
			modelDetails(failed.Details, &ce.Usage, nil)
		}
		if _, aerr := p.record(ctx, req, failed); aerr != nil {
			text += auditNote(aerr)
		}
		p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: text, Visibility: chat.Private})
		return
	}
	if in.Source == "" {
		in.Source = p.cfg.RouterName
	}
	routed := audit.Event{Type: audit.IntentRouted, Action: in.Action, Params: in.Params, Router: in.Source, Confidence: in.Confidence,
		Details: map[string]string{}}
	if in.Note != "" {
		routed.Details["note"] = in.Note
	}
	if in.Variant != "" {
		routed.Details["variant"] = in.Variant
	}
	modelDetails(routed.Details, in.Usage, in.Proposal)
	p.remember(msg, intent.Turn{Text: msg.Text, Action: in.Action, Params: in.Params})
	p.note(ctx, req, routed)
	if in.Notice != "" { // how the message was read, e.g. without the model: the asker hears it
		p.reply(ctx, req, chat.Reply{Kind: chat.KindInfo, Text: in.Notice, Visibility: chat.Private})
	}
	p.proceed(ctx, req, in, inv)
}

// modelDetails records on an audit event what a model call spent and
// what the model proposed, as it proposed it (redacted by the audit log),
// accepted or refused.
func modelDetails(d map[string]string, u *llmcost.Usage, pr *intent.Proposal) {
	if u != nil {
		d["llm_model"] = u.Model
		if u.Variant != "" {
			d["variant"] = u.Variant
		}
		if u.Prompt != "" {
			d["llm_prompt"] = u.Prompt
			d["llm_prompt_version"] = u.PromptVersion
		}
		d["llm_tokens"] = fmt.Sprintf("%d+%d", u.PromptTokens, u.CompletionTokens)
		if u.Estimated { // the provider reported no usage: counted from the sizes sent and received
			d["llm_tokens_estimated"] = "true"
		}
		d["llm_cost_usd"] = fmt.Sprintf("%.6f", u.Cost)
		d["llm_cached"] = fmt.Sprint(u.Cached)
		d["llm_latency_ms"] = fmt.Sprint(u.Latency.Milliseconds())
		if !u.Cached {
			d["llm_attempts"] = fmt.Sprint(u.Attempts)
		}
	}
	if pr != nil {
		d["llm_proposed"] = pr.Tool
		if pr.Tool == "" {
			d["llm_proposed"] = "(no tool call)"
		}
		if pr.Arguments != "" {
			d["llm_arguments"] = pr.Arguments
		}
		if pr.Text != "" {
			d["llm_text"] = pr.Text
		}
		d["llm_proposal"] = "refused"
		if pr.Accepted {
			d["llm_proposal"] = "accepted"
		}
	}
}

// proceed takes a routed intent (typed, from a model, or from a suggested
// action's button) through validation, policy, and execution or a
// confirmation prompt. Every source gets exactly the same checks.
func (p *Pipeline) proceed(ctx context.Context, req *request, in intent.Intent, inv intent.Inventory) {
	msg := req.msg
	if in.Action == "" || in.Action == action.None {
		p.replyNone(ctx, req, in)
		return
	}
	act, ok := p.deps.Actions.Get(in.Action)
	spec, _ := p.deps.Actions.Spec(in.Action)
	if !ok {
		p.replyNone(ctx, req, in)
		return
	}
	if b, ok := p.cfg.Bindings[msg.ChannelRef()]; ok && len(b.Actions) > 0 && !slices.Contains(b.Actions, spec.Name) && spec.Name != action.Help {
		p.rejectInput(ctx, req, fmt.Sprintf("%s is not offered in this channel. Here you can use: %s.", spec.Name, strings.Join(b.Actions, ", ")))
		return
	}
	raw := map[string]any{}
	for k, v := range in.Params {
		raw[k] = v
	}
	if _, ok := spec.Param("namespace"); ok && raw["namespace"] == nil {
		if b, ok := p.cfg.Bindings[msg.ChannelRef()]; ok && b.Namespace != "" {
			raw["namespace"] = b.Namespace
		}
	}
	params, err := spec.Validate(raw)
	if err != nil {
		p.askForMissing(ctx, req, spec, params, err, inv)
		return
	}
	if spec.Kind == action.Mutating && in.Confidence < p.cfg.MinConfidence {
		p.rejectInput(ctx, req, fmt.Sprintf("I am not sure I read that right (it looks like %s %s). Nothing was run; please say it plainly, for example: %q.",
			spec.Name, describeParams(params), exampleOf(spec)))
		return
	}

	d := p.deps.Policy.Decide(policy.Input{
		Subject: msg.Subject(), Groups: msg.Groups, Channel: msg.ChannelRef(),
		Action: spec.Name, Kind: spec.Kind, Params: params,
	})
	p.cfg.Metrics.PolicyDecided(spec.Name, string(d.Effect))
	// Noted, not waited for: a denial is stored before it is answered, a
	// read before its outcome is, a change before its confirmation is
	// stored (reply, record and recordWith wait for it).
	p.note(ctx, req, audit.Event{
		Type: audit.PolicyDecided, Action: spec.Name, Params: params,
		Decision: string(d.Effect), Rule: d.Rule, Outcome: d.Reason,
	})
	switch {
	case d.Effect == policy.Deny:
		p.replyDenied(ctx, req, spec, d)
	case d.Effect == policy.Allow && spec.Kind == action.Read:
		p.execute(ctx, req, act, spec, params, "") // the reply told the user everything, failures included
	default: // confirm; an allow of a mutating action is a confirm too (policy guarantees it)
		p.requestConfirmation(ctx, req, act, spec, params, d)
	}
}

func (p *Pipeline) auditDown(ctx context.Context, req *request) {
	p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: "I cannot write the audit log right now, so I am not acting on this. Nothing was run.", Visibility: chat.Private})
}

// execute runs an action that needs no (further) confirmation and reports
// its outcome to the user, audit failures included. confirmationID is set
// when it runs after a confirmation; the caller then finishes the
// confirmation. ran is false when the action was not started because
// action.started could not be recorded (err says why); otherwise err is
// the action's own failure.
func (p *Pipeline) execute(ctx context.Context, req *request, act action.Action, spec action.Spec, params action.Params, confirmationID string) (res action.Result, ran bool, err error) {
	started := audit.Event{Type: audit.ActionStarted, Action: spec.Name, Params: params, ConfirmationID: confirmationID}
	if spec.Kind == action.Read {
		// A read changes nothing: it need not wait for its start to be
		// stored, which then shares the commit of its outcome.
		p.note(ctx, req, started)
	} else if _, err := p.record(ctx, req, started); err != nil {
		// A change runs only once its start is durable.
		p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: fmt.Sprintf(
			"I cannot write the audit log right now (%v), so I did not run %s. Nothing was changed.", err, spec.Name), Visibility: privateUnless(confirmationID != "")})
		return action.Result{}, false, err
	}
	crashpoint.At(crashpoint.ActionStarted)
	rctx, cancel := context.WithTimeout(ctx, action.RunTimeout(act, p.cfg.ActionTimeout))
	start := p.cfg.Now()
	res, err = runSafely(rctx, act, spec.Name, action.Request{
		Action: spec.Name, Params: params, Subject: req.msg.Subject(), Groups: req.msg.Groups,
		Channel: req.msg.ChannelRef(), RequestID: req.id, Progress: &progress{p: p, req: req},
	})
	cancel()
	crashpoint.At(crashpoint.ActionReturned)
	took := p.cfg.Now().Sub(start)
	outcome := "succeeded"
	if err != nil {
		outcome = "failed"
	}
	p.cfg.Metrics.ActionFinished(spec.Name, outcome, took)
	if err != nil {
		text := failureText(spec, err)
		ev, aerr := p.record(ctx, req, audit.Event{Type: audit.ActionFailed, Action: spec.Name, Params: params, ConfirmationID: confirmationID, Error: err.Error(), Duration: took})
		if aerr != nil {
			text += fmt.Sprintf("\nIts audit record failed too: %v. Tell whoever runs Parley.", aerr)
		}
		// A confirmed change's failure is its result: the thread hears it.
		p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: text, Context: auditContext(ev), Visibility: privateUnless(confirmationID != "")})
		crashpoint.At(crashpoint.ReplySent)
		return res, true, err
	}
	ev, aerr := p.record(ctx, req, audit.Event{Type: audit.ActionSucceeded, Action: spec.Name, Params: params, ConfirmationID: confirmationID, Outcome: outcomeText(res), Duration: took})
	crashpoint.At(crashpoint.ActionSucceeded)
	text := strings.TrimRight(res.Text, "\n")
	kind := chat.KindSuccess
	switch res.Kind {
	case chat.KindAttention, chat.KindProgress, chat.KindInfo:
		kind = res.Kind
	}
	switch {
	case aerr != nil && spec.Kind == action.Mutating:
		// The change happened; the user must know its record did not.
		kind = chat.KindError
		text += fmt.Sprintf("\nThe change ran, but its audit record failed: %v. Tell whoever runs Parley; the audit log shows it as started only.", aerr)
	case aerr != nil:
		text += auditNote(aerr)
	default:
		text += fmt.Sprintf(" [audit #%d]", ev.Seq)
	}
	p.reply(ctx, req, chat.Reply{
		Kind: kind, Text: text, Fields: res.Fields, Table: res.Table,
		Code: res.Code, Images: res.Images, Visibility: privateUnless(spec.Name != action.Help),
	})
	crashpoint.At(crashpoint.ReplySent)
	return res, true, nil
}

// privateUnless is Public when public holds, else Private.
func privateUnless(public bool) chat.Visibility {
	if public {
		return chat.Public
	}
	return chat.Private
}

// runSafely runs an action, turning a panic into an error.
func runSafely(ctx context.Context, act action.Action, name string, r action.Request) (res action.Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%s panicked: %v", name, v)
		}
	}()
	return act.Run(ctx, r)
}

func outcomeText(res action.Result) string {
	if len(res.Outcome) > 0 {
		keys := make([]string, 0, len(res.Outcome))
		for k := range res.Outcome {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+res.Outcome[k])
		}
		return strings.Join(parts, " ")
	}
	first, _, _ := strings.Cut(res.Text, "\n")
	return preview(first, 200)
}

func auditContext(ev audit.Event) []string {
	if ev.Seq == 0 {
		return nil
	}
	return []string{fmt.Sprintf("[audit #%d]", ev.Seq)}
}

// failureText words an action error for the chat.
func failureText(spec action.Spec, err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, action.ErrNotConfigured):
		return fmt.Sprintf("%s is not available: %s", spec.Name, msg)
	case errors.Is(err, action.ErrNotFound):
		return "Not found: " + msg
	case errors.Is(err, action.ErrForbidden):
		return "The backend refused: " + msg
	case errors.Is(err, action.ErrConflict):
		return "The target changed while I was acting, so I stopped: " + msg + ". Nothing else was changed; ask again to retry."
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, action.ErrUnavailable):
		return fmt.Sprintf("%s did not finish: %s", spec.Name, msg)
	case errors.Is(err, action.ErrInvalid):
		return "That request is not valid: " + msg
	default:
		return fmt.Sprintf("%s failed: %s", spec.Name, msg)
	}
}

// requestConfirmation plans a change, stores a pending confirmation and
// asks for it. The confirmation and its confirmation.requested event are
// committed together; it becomes claimable only once its prompt was
// delivered and that is recorded, so nobody can confirm a change nobody
// was shown.
func (p *Pipeline) requestConfirmation(ctx context.Context, req *request, act action.Action, spec action.Spec, params action.Params, d policy.Decision) {
	var plan action.Plan
	if pl, ok := act.(action.Planner); ok {
		pctx, cancel := context.WithTimeout(ctx, p.cfg.ActionTimeout)
		var err error
		plan, err = pl.Plan(pctx, action.Request{Action: spec.Name, Params: params, Subject: req.msg.Subject(), Groups: req.msg.Groups, Channel: req.msg.ChannelRef(), RequestID: req.id})
		cancel()
		if err != nil {
			text := failureText(spec, err)
			ev, aerr := p.record(ctx, req, audit.Event{Type: audit.ActionFailed, Action: spec.Name, Params: params, Error: "plan: " + err.Error()})
			if aerr != nil {
				text += auditNote(aerr)
			}
			p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: text, Context: auditContext(ev), Visibility: chat.Private})
			return
		}
	}
	if plan.Summary == "" {
		plan.Summary = spec.Name + " " + describeParams(params)
	}
	ttl := d.TTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	now := p.cfg.Now()
	var c confirm.Confirmation
	_, err := p.recordWith(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
		var err error
		c, err = p.deps.Confirmations.CreateTx(ctx, tx, confirm.Confirmation{
			RequestID: req.id, Action: spec.Name, Params: params, Requester: req.msg.Subject(), RequesterGroups: req.msg.Groups,
			Channel: req.msg.ChannelRef(), Thread: req.msg.Thread, Approvers: d.Approvers,
			DistinctApprover: d.DistinctApprover, Rule: d.Rule, PlanSummary: plan.Summary,
			PlanState: plan.State, CreatedAt: now, ExpiresAt: now.Add(ttl),
		})
		if err != nil {
			return nil, err
		}
		crashpoint.At(crashpoint.ConfirmationStored)
		return []audit.Event{{
			Type: audit.ConfirmationRequested, Action: spec.Name, Params: params,
			Decision: string(d.Effect), Rule: d.Rule, ConfirmationID: c.ID,
			Details: map[string]string{"plan": plan.Summary, "code": c.Code, "expires": c.ExpiresAt.UTC().Format(time.RFC3339)},
		}}, nil
	})
	if err != nil {
		p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: fmt.Sprintf(
			"I could not store and record the confirmation for this change (%v), so I am not asking for it. Nothing was run.", err), Visibility: chat.Private})
		return
	}
	crashpoint.At(crashpoint.ConfirmationRequested)
	p.cfg.Metrics.Confirmation("requested")
	if _, err := p.replyChecked(ctx, req, chat.Reply{
		Kind: chat.KindConfirm,
		Text: confirmPrompt(spec, params, plan, c, d, ttl),
		Buttons: []chat.Button{
			{Label: "Confirm", Style: "primary", Action: "confirm", Value: c.ID},
			{Label: "Cancel", Style: "danger", Action: "cancel", Value: c.ID},
		},
	}); err != nil {
		// Nobody saw the prompt: it must not stay open to a bare "confirm".
		p.withdraw(ctx, req, c, "its prompt could not be delivered: "+err.Error(),
			fmt.Sprintf("I could not show the confirmation prompt for %s (%v), so I cancelled it. Nothing was run; ask again in a moment.", c.Code, err))
		return
	}
	crashpoint.At(crashpoint.PromptSent)
	if err := p.deps.Confirmations.MarkShown(ctx, c.ID); err != nil {
		p.log.Error("recording a shown confirmation prompt failed", "request", req.id, "confirmation", c.ID, "err", err)
		p.withdraw(ctx, req, c, "recording that its prompt was shown failed: "+err.Error(),
			fmt.Sprintf("I could not record that I asked you to confirm %s (%v), so it cannot be confirmed and I cancelled it. Nothing was run; ask again in a moment.", c.Code, err))
		return
	}
	crashpoint.At(crashpoint.PromptRecorded)
}

// withdraw cancels a confirmation whose prompt is not known to have been
// shown, with its confirmation.cancelled event, and tells the channel.
// Should the cancellation fail too, the confirmation stays unshown, which
// no approver can claim, and the next start cancels it.
func (p *Pipeline) withdraw(ctx context.Context, req *request, c confirm.Confirmation, why, text string) {
	_, err := p.recordWith(ctx, req, func(tx *store.Tx) ([]audit.Event, error) {
		if _, err := p.deps.Confirmations.CancelTx(ctx, tx, c.ID, "parley"); err != nil {
			return nil, err
		}
		return []audit.Event{{Type: audit.ConfirmationCancelled, Action: c.Action, Params: c.Params,
			ConfirmationID: c.ID, Rule: c.Rule, Outcome: "cancelled by parley", Error: why}}, nil
	})
	if err != nil {
		p.log.Error("withdrawing an unshown confirmation failed", "confirmation", c.ID, "err", err)
		text += fmt.Sprintf(" (Cancelling it failed too: %v. It cannot be confirmed, and Parley cancels it at its next start.)", err)
	}
	p.reply(ctx, req, chat.Reply{Kind: chat.KindError, Text: text})
}

func confirmPrompt(spec action.Spec, params action.Params, plan action.Plan, c confirm.Confirmation, d policy.Decision, ttl time.Duration) string {
	where := params.String("namespace")
	var b strings.Builder
	if where != "" {
		fmt.Fprintf(&b, "This changes %s: %s.", where, strings.TrimSuffix(plan.Summary, "."))
	} else {
		fmt.Fprintf(&b, "This will %s.", strings.TrimSuffix(plan.Summary, "."))
	}
	who := "Reply"
	if d.DistinctApprover || !onlyRequester(d.Approvers) {
		who = fmt.Sprintf("%s must reply", approverText(d))
	}
	fmt.Fprintf(&b, " %s \"confirm %s\" within %s, or \"cancel\".", who, c.Code, action.FormatDuration(ttl))
	return b.String()
}

func onlyRequester(approvers []string) bool {
	return len(approvers) == 0 || (len(approvers) == 1 && approvers[0] == "requester")
}

func approverText(d policy.Decision) string {
	var names []string
	for _, a := range d.Approvers {
		switch {
		case a == "requester":
			names = append(names, "you")
		case strings.HasPrefix(a, "group:"):
			names = append(names, "a member of "+strings.TrimPrefix(a, "group:"))
		default:
			names = append(names, a)
		}
	}
	s := strings.Join(names, " or ")
	if d.DistinctApprover {
		s += " other than you"
	}
	if s == "" {
		s = "an approver"
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func describeParams(params action.Params) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+params.String(k))
	}
	return strings.Join(parts, " ")
}

func exampleOf(spec action.Spec) string {
	if len(spec.Examples) > 0 {
		return spec.Examples[0].Text
	}
	return spec.Name
}

// progress keeps one message per running action updated in place.
type progress struct {
	p   *Pipeline
	req *request

	mu sync.Mutex
	id string // the progress message, once posted
}

// Update implements action.Progress.
func (pr *progress) Update(ctx context.Context, text string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	r := chat.Reply{Kind: chat.KindInfo, Text: text, UpdateOf: pr.id}
	id, err := pr.p.send(ctx, pr.req, r)
	if err != nil {
		pr.p.log.Warn("progress update failed", "request", pr.req.id, "err", err)
		return
	}
	if pr.id == "" {
		pr.id = id
	}
}
