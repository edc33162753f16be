package discord

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/parley-chatops/parley/internal/action"
)

// Start-up errors that need an operator's hand. Run wraps them, so test with
// errors.Is.
var (
	// ErrTokenRejected: Discord answered 401 or closed the gateway with 4004.
	ErrTokenRejected = errors.New("the bot token was rejected: copy a fresh one from the Developer Portal (Bot → Reset Token)")
	// ErrMessageContentIntent: the privileged intent is not enabled for the app,
	// so the bot would see mentions but not what people typed.
	ErrMessageContentIntent = errors.New("the Message Content intent is not enabled: enable the Message Content intent in the Developer Portal (Bot → Privileged Gateway Intents)")
)

// Discord JSON error codes the adapter acts on.
const (
	codeUnknownChannel     = 10003
	codeUnknownMessage     = 10008
	codeUnknownWebhook     = 10015
	codeUnknownInteraction = 10062
	codeInvalidWebhookTok  = 50027
	codeThreadAlreadyMade  = 160004
)

// Gateway close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
const (
	closeAuthenticationFailed = 4004
	closeInvalidIntents       = 4013
	closeDisallowedIntents    = 4014
)

// apiError is a Discord failure described without URLs, headers or tokens.
// It unwraps to an action error kind so callers can tell a retryable outage
// from a refusal.
type apiError struct {
	op     string
	status int // HTTP status, 0 when the request did not get an answer
	code   int // Discord JSON error code, 0 when none
	msg    string
	kind   error
}

func (e *apiError) Error() string { return "discord: " + e.op + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.kind }

// restCode returns the Discord JSON error code and HTTP status of err.
func restCode(err error) (code, status int) {
	var re *discordgo.RESTError
	if errors.As(err, &re) {
		if re.Message != nil {
			code = re.Message.Code
		}
		if re.Response != nil {
			status = re.Response.StatusCode
		}
	}
	return code, status
}

// describe turns an error from discordgo or net/http into an apiError whose
// text carries no secret: URLs (which hold interaction tokens) are dropped,
// and any known secret left in the text is masked.
func describe(op string, err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	e := &apiError{op: op, kind: action.ErrUnavailable}
	var re *discordgo.RESTError
	var rl *discordgo.RateLimitError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if re.Response != nil {
			e.status = re.Response.StatusCode
		}
		e.msg = fmt.Sprintf("HTTP %d", e.status)
		if re.Message != nil {
			e.code = re.Message.Code
			e.msg += fmt.Sprintf(": %s (code %d)", re.Message.Message, re.Message.Code)
		}
		e.kind = kindOf(e.status)
	case errors.As(err, &rl):
		e.status, e.msg = http.StatusTooManyRequests, "rate limited"
	case errors.Is(err, context.DeadlineExceeded):
		e.msg = "timed out"
	case errors.Is(err, context.Canceled):
		e.msg = "cancelled"
	case errors.As(err, &ue):
		e.msg = ue.Err.Error()
	default:
		e.msg = err.Error()
	}
	e.msg = mask(e.msg, secrets...)
	return e
}

func kindOf(status int) error {
	switch {
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge:
		return action.ErrInvalid
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return action.ErrForbidden
	case status == http.StatusNotFound:
		return action.ErrNotFound
	case status == http.StatusConflict:
		return action.ErrConflict
	default:
		return action.ErrUnavailable
	}
}

// startError explains a failure to connect. Only the kinds an operator can
// fix get their own sentinel.
func startError(step string, err error, secrets ...string) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		switch ce.Code {
		case closeAuthenticationFailed:
			return fmt.Errorf("discord: %s: %w", step, ErrTokenRejected)
		case closeDisallowedIntents:
			return fmt.Errorf("discord: %s: %w", step, ErrMessageContentIntent)
		case closeInvalidIntents:
			return fmt.Errorf("discord: %s: the gateway refused the requested intents (close %d)", step, ce.Code)
		}
		return fmt.Errorf("discord: %s: gateway closed the connection (%d %s)", step, ce.Code, mask(ce.Text, secrets...))
	}
	if _, status := restCode(err); status == http.StatusUnauthorized {
		return fmt.Errorf("discord: %s: %w (HTTP 401)", step, ErrTokenRejected)
	}
	return describe(step, err, secrets...)
}

func mask(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) >= 6 {
			s = strings.ReplaceAll(s, sec, "<secret>")
		}
	}
	return redactURL(s)
}

var tokenInPath = regexp.MustCompile(`(/(?:webhooks|interactions)/\d+/)[^/?\s"]+`)

// redactURL masks the interaction or webhook token in a Discord URL or path,
// so rate-limit and error logs can name the route.
func redactURL(s string) string { return tokenInPath.ReplaceAllString(s, "${1}<token>") }
