package slack

import (
	"errors"

	"github.com/parley-chatops/parley/internal/chat"
)

// groupPrefix marks Slack user groups in chat.Message.Groups
// ("slack-group:S0614TZR7"); policy groups may name them.
const groupPrefix = "slack-group"

// Platform describes Slack to the rest of Parley: ids are upper-case
// letters and digits (U024BE7LH, C0OPS, S0614TZR7); user groups arrive as
// slack-group:ID.
//
// Message.EventID is durable, so replicas share its de-duplication:
//
//	msg:CHANNEL:TS                  a message (mention, DM, bound channel or
//	                                thread reply; app_mention and message
//	                                events of one message share it)
//	action:CHANNEL:TS:ACTION_TS:…   a button click
//	cmd:TRIGGER_ID                  a /parley slash command
func Platform() chat.Platform {
	return chat.Platform{
		Name: chat.Slack, Title: "Slack", GroupPrefix: groupPrefix, GroupNoun: "user group",
		CheckID: checkID, IDExample: "U024BE7LH", DurableEvents: true, Served: true,
		Limits: chat.Limits{Text: maxMessageText, Buttons: maxButtonsPerBlock, ButtonValue: maxButtonValue},
	}
}

func checkID(id string) error {
	for _, r := range id {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return errors.New("slack ids are upper-case letters and digits such as U024BE7LH, not display names")
		}
	}
	return nil
}
