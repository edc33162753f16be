package slack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/parley-chatops/parley/internal/chat"
)

// Diagnose checks a Slack configuration against Slack without starting
// the adapter: the bot token (auth.test), the scopes it was granted
// (auth.test's X-OAuth-Scopes) against Scopes, and in Socket Mode the
// app-level token (apps.connections.open). Nothing is posted. No check's
// text holds a token.
func Diagnose(ctx context.Context, o Options) []chat.Check {
	a, err := New(o)
	if err != nil {
		return []chat.Check{{Name: "slack configuration", Err: err, Fix: "set slack.bot_token (and app_token for Socket Mode, signing_secret for the Events API) from the app's settings"}}
	}
	var out []chat.Check
	cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	resp, err := a.api.AuthTestContext(cctx)
	if err != nil {
		c := chat.Check{Name: "slack token", Err: errors.New(a.redact(err.Error())),
			Fix: "the bot token is the app's Bot User OAuth Token (xoxb-…, OAuth & Permissions); reinstall the app if it was revoked"}
		var se slack.SlackErrorResponse
		if !errors.As(err, &se) {
			c.Fix = "Slack did not answer: check the network path to slack.com (egress, proxy) or slack.api_url"
		}
		out = append(out, c)
		skip := "cannot run: auth.test failed"
		out = append(out, chat.Check{Name: "slack scopes", Skipped: skip})
		if a.opts.Mode == ModeSocket {
			out = append(out, chat.Check{Name: "slack socket mode", Skipped: skip})
		}
		return out
	}
	out = append(out, chat.Check{Name: "slack token", Detail: fmt.Sprintf("bot user %s (%s) in team %s", resp.User, resp.UserID, resp.TeamID)})

	granted := resp.Header.Get("X-OAuth-Scopes")
	switch required, optional := MissingScopes(granted); {
	case granted == "":
		out = append(out, chat.Check{Name: "slack scopes", Skipped: "cannot run: auth.test sent no X-OAuth-Scopes header"})
	case len(required)+len(optional) > 0:
		missing := append(required, optional...)
		var why []string
		for _, s := range Scopes() {
			for _, m := range missing {
				if s.Name == m {
					why = append(why, m+" ("+s.Why+")")
				}
			}
		}
		out = append(out, chat.Check{Name: "slack scopes", Err: fmt.Errorf("the bot token lacks %s", strings.Join(missing, ", ")),
			Detail: "missing: " + strings.Join(why, "; "),
			Fix:    "add them under OAuth & Permissions → Bot Token Scopes (or update the app from parley slack manifest) and reinstall the app to the workspace"})
	default:
		out = append(out, chat.Check{Name: "slack scopes", Detail: fmt.Sprintf("all %d scopes granted", len(Scopes()))})
	}

	switch a.opts.Mode {
	case ModeSocket:
		if _, _, err := a.api.StartSocketModeContext(cctx); err != nil {
			out = append(out, chat.Check{Name: "slack socket mode", Err: errors.New(a.redact(err.Error())),
				Fix: "enable Socket Mode (Settings → Socket Mode) and give slack.app_token an app-level token (xapp-…) with connections:write (Basic Information → App-Level Tokens)"})
		} else {
			out = append(out, chat.Check{Name: "slack socket mode", Detail: "apps.connections.open gave a WebSocket URL"})
		}
	case ModeEvents:
		out = append(out, chat.Check{Name: "slack events api", Detail: "requests are verified with the signing secret; Slack must reach parley serve at " + EventsPath +
			" over https (Event Subscriptions shows Verified when it does)"})
	}
	return out
}
