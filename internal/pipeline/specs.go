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
		Vocabulary: action.Vocabulary{Cues: map[string]float64{
			"help": 3, "halp": 3,
			"commands": 2.5, "command": 2.5, "usage": 2.5, "capabilities": 2.5, "capability": 2.5, "abilities": 2.5,
			"options": 2.5, "choices": 2.5,
			"features": 1.5, "actions": 1.5, "manual": 1.5, "menu": 1.5,
			action.CueCapability:      4, // "what can you do?", "which things you can make for me?"
			"how (do|can) (i|we) use": 3,
			"how (do|can|should) (i|we) ... (you|u|parley|bot|this)": 3,
			"what (is|are) you":        2,
			"who are you":              3,
			"what (can|may) (i|we) do": 1.5,
		}},
	}
}
