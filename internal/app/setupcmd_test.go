package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSlackManifestCommand(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "slack", "manifest", "--mode", "events", "--url", "https://parley.example.com/")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var m map[string]any
	if err := yaml.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("stdout is not YAML: %v\n%s", err, out)
	}
	if !strings.Contains(out, "request_url: https://parley.example.com/slack/events") || !strings.Contains(errOut, "Signing Secret") || !strings.Contains(errOut, "/invite @parley") {
		t.Errorf("stdout:\n%s\nstderr: %s", out, errOut)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"slack", "manifest", "--mode", "rtm"}, `mode "rtm": want "socket" or "events"`},
		{[]string{"slack", "manifest", "--mode", "events", "--url", "http://parley.example.com"}, "Slack calls only https URLs"},
		{[]string{"slack", "manifest", "--mode", "events"}, "--mode events needs --url"},
		{[]string{"slack", "manifest"}, "a mode is required"},
		{[]string{"slack", "app"}, `want "parley slack manifest`},
	} {
		code, out, errOut := runCLI(t, nil, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

func TestDiscordInviteURLCommand(t *testing.T) {
	code, out, errOut := runCLI(t, nil, "discord", "invite-url", "--application-id", "1130000000000000009")
	if code != 0 || strings.TrimSpace(out) != "https://discord.com/oauth2/authorize?client_id=1130000000000000009&permissions=309237763072&scope=bot+applications.commands" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "Message Content intent") || !strings.Contains(errOut, "Create Public Threads") {
		t.Errorf("stderr: %s", errOut)
	}
	cfg := filepath.Join(t.TempDir(), "parley.yaml")
	if err := os.WriteFile(cfg, []byte("discord: {token: {env: T}, application_id: \"1130000000000000042\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, map[string]string{"T": "x"}, "discord", "invite-url", "--config", cfg, "--guild", "1130000000000000100")
	if code != 0 || !strings.Contains(out, "client_id=1130000000000000042") || !strings.Contains(out, "guild_id=1130000000000000100") {
		t.Errorf("from --config: exit %d, %q", code, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"discord", "invite-url"}, "--application-id is required"},
		{[]string{"discord", "invite-url", "--application-id", "parley"}, "is not a Discord id"},
		{[]string{"discord", "invite-url", "--application-id", "1130000000000000009", "--guild", "ops"}, `guild id "ops"`},
	} {
		code, out, errOut := runCLI(t, nil, tc.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}
