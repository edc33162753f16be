package discord

import (
	"net/url"
	"strings"
	"testing"
)

// TestPermissionBits checks the integer against the bit positions Discord
// documents for each named permission
// (https://discord.com/developers/docs/topics/permissions).
func TestPermissionBits(t *testing.T) {
	documented := map[string]uint{
		"View Channels": 10, "Send Messages": 11, "Embed Links": 14, "Attach Files": 15,
		"Read Message History": 16, "Create Public Threads": 35, "Send Messages in Threads": 38,
	}
	var want int64
	for _, p := range Permissions() {
		bit, ok := documented[p.Name]
		if !ok {
			t.Errorf("permission %q is not documented here", p.Name)
			continue
		}
		if p.Bit != 1<<bit {
			t.Errorf("%s = %d, want 1<<%d", p.Name, p.Bit, bit)
		}
		if p.Needs == "" {
			t.Errorf("%s does not say why Parley needs it", p.Name)
		}
		want |= 1 << bit
	}
	if len(Permissions()) != len(documented) {
		t.Errorf("%d permissions, want %d", len(Permissions()), len(documented))
	}
	if got := PermissionBits(); got != want || got != 309237763072 {
		t.Errorf("PermissionBits = %d, want %d", got, want)
	}
	const administrator = 1 << 3
	if PermissionBits()&administrator != 0 {
		t.Error("the bot asks for Administrator")
	}
}

func TestInviteURL(t *testing.T) {
	got, err := InviteURL("1130000000000000009", "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(got)
	if err != nil || u.Scheme != "https" || u.Host != "discord.com" || u.Path != "/oauth2/authorize" {
		t.Fatalf("InviteURL = %s", got)
	}
	q := u.Query()
	if q.Get("client_id") != "1130000000000000009" || q.Get("scope") != "bot applications.commands" || q.Get("permissions") != "309237763072" || q.Has("guild_id") {
		t.Errorf("query = %v", q)
	}
	got, err = InviteURL("1130000000000000009", "1130000000000000100")
	if err != nil || !strings.Contains(got, "guild_id=1130000000000000100") || !strings.Contains(got, "disable_guild_select=true") {
		t.Errorf("with a guild: %s, %v", got, err)
	}
	for _, bad := range [][2]string{{"", ""}, {"parley", ""}, {"1130000000000000009", "ops"}} {
		if _, err := InviteURL(bad[0], bad[1]); err == nil {
			t.Errorf("InviteURL(%q, %q) accepted", bad[0], bad[1])
		}
	}
}
