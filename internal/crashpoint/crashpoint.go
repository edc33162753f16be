// Package crashpoint marks the places on Parley's execution path where a
// crash between two writes matters, so that a test can stop the real
// binary at each of them and prove what a restart makes of it.
//
// The points are compiled in only with the build tag crashpoints
// (go build -tags crashpoints). In every other build, and so in every
// release build (scripts/build.sh does not set the tag), At is an empty
// function, Arm ignores its argument and Enabled is false: nothing reads
// PARLEY_CRASH_AT.
//
// With the tag, the process exits at once with status 137, as after
// kill -9 (no deferred function runs, no buffer is flushed, no transaction
// is rolled back or committed by Parley), when it reaches the point armed
// with Arm, which the command line calls with $PARLEY_CRASH_AT. The armed
// point is process-wide state by necessity: the points sit in several
// packages, and a crash stops the whole process anyway.
package crashpoint

// Point names one place on the path. Names are stable: tests and scripts
// arm them by name.
type Point string

// The points, in the order a confirmed change passes them.
const (
	// MessageTaken is after a message was taken, before it is routed: for
	// a platform whose events are claimed in the shared store (Slack,
	// Discord: acknowledged before they are handled), the claim and
	// message.received are committed together; for the others
	// message.received is only handed to the audit log, to be committed
	// with the request's first write that must be durable.
	MessageTaken Point = "message-taken"
	// ConfirmationStored is inside the transaction that stores a pending
	// confirmation together with its confirmation.requested event: after
	// the row is written, before the event is appended and committed.
	ConfirmationStored Point = "confirmation-stored"
	// ConfirmationRequested is after that transaction committed, before
	// the prompt is sent.
	ConfirmationRequested Point = "confirmation-requested"
	// PromptSent is after the prompt was sent, before it is recorded as
	// shown (only a shown confirmation can be claimed).
	PromptSent Point = "prompt-sent"
	// PromptRecorded is after the prompt was recorded as shown: the
	// request is complete and waits for its approver.
	PromptRecorded Point = "prompt-recorded"
	// ConfirmationClaimed is inside the transaction that claims a
	// confirmation together with its confirmation.granted event: after
	// the claim, before the event is appended and committed.
	ConfirmationClaimed Point = "confirmation-claimed"
	// ConfirmationGranted is after the claim and confirmation.granted
	// committed, before action.started is recorded.
	ConfirmationGranted Point = "confirmation-granted"
	// ActionStarted is after action.started was recorded, before the
	// action runs.
	ActionStarted Point = "action-started"
	// ActionReturned is after the action returned, before its outcome
	// (action.succeeded or action.failed) is recorded.
	ActionReturned Point = "action-returned"
	// ActionSucceeded is after action.succeeded was recorded, before the
	// reply is sent.
	ActionSucceeded Point = "action-succeeded"
	// ReplySent is after the outcome was sent to the chat, before the
	// confirmation row is finished.
	ReplySent Point = "reply-sent"
	// ConfirmationFinished is after the confirmation row was finished.
	ConfirmationFinished Point = "confirmation-finished"
	// RecoverAnnounced is during start-up recovery: after the channel was
	// told what became of an interrupted request, before that is recorded.
	RecoverAnnounced Point = "recover-announced"
)

// All returns every point, in path order.
func All() []Point {
	return []Point{
		MessageTaken, ConfirmationStored, ConfirmationRequested, PromptSent, PromptRecorded,
		ConfirmationClaimed, ConfirmationGranted, ActionStarted, ActionReturned,
		ActionSucceeded, ReplySent, ConfirmationFinished, RecoverAnnounced,
	}
}

// ExitCode is the status the process exits with at an armed point: 128+9,
// what a shell reports for a process killed with SIGKILL.
const ExitCode = 137

// ListName is the value of PARLEY_CRASH_AT that asks `parley version` to
// print every point instead of crashing anywhere.
const ListName = "list"
