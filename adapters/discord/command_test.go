package discord

import (
	"encoding/json"
	"testing"

	"github.com/bwmarrin/discordgo"
)

func TestCommandText(t *testing.T) {
	for _, tc := range []struct {
		data string // the interaction's data.options, as Discord sends them
		want string
	}{
		{`[{"name":"ask","type":1,"options":[{"name":"text","type":3,"value":"status of checkout in prod"}]}]`, "status of checkout in prod"},
		{`[{"name":"help","type":1}]`, "help"},
		{`[{"name":"eval","type":2,"options":[{"name":"run","type":1,"options":[{"name":"suite","type":3,"value":"intent-routing"},{"name":"variant","type":3,"value":"prompt-v2"}]}]}]`,
			"eval run intent-routing variant:prompt-v2"},
		{`[{"name":"eval","type":2,"options":[{"name":"run","type":1,"options":[{"name":"baseline","type":3,"value":"baseline"},{"name":"suite","type":3,"value":"intent-routing"},{"name":"variant","type":3,"value":"prompt v2"}]}]}]`,
			"eval run intent-routing variant:prompt-v2 baseline:baseline"},
		{`[{"name":"eval","type":2,"options":[{"name":"status","type":1,"options":[{"name":"run","type":4,"value":7},{"name":"suite","type":3,"value":"intent-routing"}]}]}]`,
			"eval status run:7 suite:intent-routing"},
		{`[{"name":"eval","type":2,"options":[{"name":"status","type":1}]}]`, "eval status"},
	} {
		var data discordgo.ApplicationCommandInteractionData
		if err := json.Unmarshal([]byte(`{"name":"parley","type":1,"options":`+tc.data+`}`), &data); err != nil {
			t.Fatal(err)
		}
		got, err := commandText(data)
		if err != nil || got != tc.want {
			t.Errorf("commandText(%s) = %q, %v; want %q", tc.data, got, err, tc.want)
		}
	}
	for _, bad := range []string{`[]`, `[{"name":"eval","type":2,"options":[{"name":"run","type":1}]}]`, `[{"name":"deploy","type":1}]`} {
		var data discordgo.ApplicationCommandInteractionData
		_ = json.Unmarshal([]byte(`{"name":"parley","type":1,"options":`+bad+`}`), &data)
		if got, err := commandText(data); err == nil {
			t.Errorf("commandText(%s) = %q, want an error", bad, got)
		}
	}
}
