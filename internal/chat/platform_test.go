package chat

import (
	"errors"
	"strings"
	"testing"
)

func TestPlatformsParseRef(t *testing.T) {
	digits := func(id string) error {
		for _, r := range id {
			if r < '0' || r > '9' {
				return errors.New("ids are digits")
			}
		}
		return nil
	}
	ps := Platforms{{Name: "slack"}, {Name: "discord", GroupPrefix: "discord-role", CheckID: digits}}
	for ref, want := range map[string]string{
		"discord:123":                       "",
		"slack:C1":                          "",
		"discord:abc":                       `"discord:abc": ids are digits`,
		"teams:1":                           `unknown platform "teams" (platforms: slack, discord)`,
		"C1":                                `"C1" is not platform:id`,
		"slack:":                            `empty id after "slack:"`,
		"slack:" + strings.Repeat("A", 129): "longer than 128",
		"discord-role:1":                    `unknown platform "discord-role"`, // a group is not a user or channel
	} {
		_, _, err := ps.ParseRef(ref)
		switch {
		case want == "" && err != nil:
			t.Errorf("ParseRef(%q) = %v", ref, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("ParseRef(%q) = %v, want %q", ref, err, want)
		}
	}
	if !ps.IsGroup("discord-role:1") || ps.IsGroup("discord:1") || ps.IsGroup("group:sre") {
		t.Error("IsGroup tells platform groups wrong")
	}
	if got := strings.Join(ps.Names(), ","); got != "slack,discord,discord-role" {
		t.Errorf("Names = %s", got)
	}
}
