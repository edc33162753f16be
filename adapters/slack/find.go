package slack

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/slack-go/slack"

	"github.com/parley-chatops/parley/internal/chat"
)

// keyEventType is the metadata event type of a message posted with an
// idempotency key (chat.Reply.IdempotencyKey); the key is its payload's
// "key".
const keyEventType = "parley_message"

// maxFindPages bounds the history pages FindPosted reads (200 messages
// each).
const maxFindPages = 5

func keyMetadata(key string) slack.SlackMetadata {
	return slack.SlackMetadata{EventType: keyEventType, EventPayload: map[string]any{"key": key}}
}

// FindPosted looks in r's channel, among the messages posted at since or
// later, for the one Parley posted with r's idempotency key (kept in the
// message's metadata), and returns its ts; "" when there is none. The
// incident manager asks before it posts again a message whose post a
// crash interrupted, so Slack, which has no idempotent post, still shows
// it once. It reads conversations.history (channels:history, or
// groups:history in a private channel); an error unwraps to an action
// error kind (ErrForbidden without the scope, ErrUnavailable when Slack
// does not answer).
func (a *Adapter) FindPosted(ctx context.Context, r chat.Reply, since time.Time) (string, error) {
	if r.IdempotencyKey == "" || r.Channel == "" {
		return "", nil
	}
	cursor := ""
	for range maxFindPages {
		cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
		resp, err := a.api.GetConversationHistoryContext(cctx, &slack.GetConversationHistoryParameters{
			ChannelID: r.Channel, Oldest: strconv.FormatFloat(float64(since.UnixMilli())/1000, 'f', 6, 64),
			Limit: 200, Cursor: cursor, IncludeAllMetadata: true,
		})
		cancel()
		if err != nil {
			return "", a.wrap("conversations.history", err, kindOf(err))
		}
		for _, m := range resp.Messages {
			if m.Metadata.EventType == keyEventType && fmt.Sprint(m.Metadata.EventPayload["key"]) == r.IdempotencyKey {
				return m.Timestamp, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", nil
		}
		cursor = resp.ResponseMetaData.NextCursor
	}
	return "", nil
}
