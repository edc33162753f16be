package console

import (
	"errors"
	"unicode"

	"github.com/parley-chatops/parley/internal/chat"
)

// Platform describes the terminal console to the rest of Parley: ids are
// free-form names without spaces or colons (console:alice), there are no
// platform groups, and event ids number the lines of one session, so they
// are not durable: the next session starts again at console-1.
func Platform() chat.Platform {
	return chat.Platform{
		Name: chat.Console, Title: "console", CheckID: checkID, IDExample: "alice",
	}
}

func checkID(id string) error {
	for _, r := range id {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) || r == ':' {
			return errors.New("console ids may not contain spaces, colons or control characters")
		}
	}
	return nil
}
