package discord

import (
	"errors"

	"github.com/parley-chatops/parley/internal/chat"
)

// rolePrefix marks Discord roles in chat.Message.Groups
// ("discord-role:80351110224678912"); policy groups may name them.
const rolePrefix = "discord-role"

// Platform describes Discord to the rest of Parley: ids are numeric
// snowflakes (users, channels, roles, guilds); roles arrive as
// discord-role:ID.
//
// Message.EventID is durable, so replicas share its de-duplication: a
// message's id for a message, an interaction's id for a slash command or
// a button click (snowflakes are unique across both).
func Platform() chat.Platform {
	return chat.Platform{
		Name: chat.Discord, Title: "Discord", GroupPrefix: rolePrefix, GroupNoun: "role",
		CheckID: checkID, IDExample: "80351110224678912", DurableEvents: true, Served: true,
		Limits: chat.Limits{Text: maxContent, Buttons: maxButtons, ButtonValue: maxStoredValue},
	}
}

func checkID(id string) error {
	if !snowflake(id) {
		return errors.New("discord ids are numeric snowflakes such as 80351110224678912, not user names")
	}
	return nil
}
