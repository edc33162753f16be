package pipeline

import "github.com/parley-chatops/parley/internal/action"

// Specs is the help action's public contract: how people ask for it (the
// offline router reads its Vocabulary and Examples) and what the LLM tools
// show. Help takes no parameters: it lists what the asker may do here.
func Specs() []action.Spec { return []action.Spec{helpSpec()} }

func helpSpec() action.Spec {
	return action.Spec{
		Name: action.Help, Kind: action.Read,
		Description: "List what the asking user may do here, with examples.",
		Examples:    []action.Example{{Text: "help"}, {Text: "what can you do?"}},
	}
}
