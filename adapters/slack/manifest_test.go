package slack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestManifestGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ManifestOptions
	}{
		{"manifest-socket.yaml", ManifestOptions{Mode: ModeSocket}},
		{"manifest-events.yaml", ManifestOptions{Mode: ModeEvents, URL: "https://parley.example.com"}},
	} {
		got, err := Manifest(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", tc.name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to write it)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", tc.name, got)
		}
	}
}

// TestManifestMatchesTheAdapter: the manifest asks for exactly the scopes
// the adapter checks and subscribes to the events it reads, with the
// request URLs where parley serve takes them.
func TestManifestMatchesTheAdapter(t *testing.T) {
	out, err := Manifest(ManifestOptions{Mode: ModeEvents, URL: "https://ops.example.com/parley/"})
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.OAuth.Scopes.Bot, scopeNames(false)) {
		t.Errorf("scopes %v", m.OAuth.Scopes.Bot)
	}
	for _, s := range Scopes() {
		if s.Why == "" {
			t.Errorf("scope %s does not say why", s.Name)
		}
	}
	const want = "https://ops.example.com/parley/slack/events"
	if m.Settings.Events.RequestURL != want || m.Settings.Interactivity.RequestURL != want || m.Features.SlashCommands[0].URL != want || m.Settings.SocketMode {
		t.Errorf("request URLs %q %q %q, socket mode %v", m.Settings.Events.RequestURL, m.Settings.Interactivity.RequestURL, m.Features.SlashCommands[0].URL, m.Settings.SocketMode)
	}
	if !m.Features.AppHome.MessagesTab || m.Features.AppHome.MessagesRead || !m.Settings.Interactivity.Enabled || m.Features.SlashCommands[0].Command != CommandName {
		t.Errorf("features %+v interactivity %+v", m.Features, m.Settings.Interactivity)
	}
	for _, ev := range []string{"app_mention", "message.channels", "message.groups", "message.im", "message.mpim"} {
		if !slices.Contains(m.Settings.Events.BotEvents, ev) {
			t.Errorf("bot event %s missing", ev)
		}
	}
	socket, err := Manifest(ManifestOptions{Mode: ModeSocket})
	if err != nil || !strings.Contains(string(socket), "socket_mode_enabled: true") || strings.Contains(string(socket), "request_url") || strings.Contains(string(socket), "url:") {
		t.Errorf("socket manifest: %v\n%s", err, socket)
	}
}

func TestManifestBadInput(t *testing.T) {
	for _, tc := range []struct {
		o    ManifestOptions
		want string
	}{
		{ManifestOptions{Mode: "rtm"}, `mode "rtm": want "socket" or "events"`},
		{ManifestOptions{}, "a mode is required"},
		{ManifestOptions{Mode: ModeEvents}, "needs --url"},
		{ManifestOptions{Mode: ModeEvents, URL: "http://parley.example.com"}, "only https"},
		{ManifestOptions{Mode: ModeEvents, URL: "parley.example.com"}, "only https"},
		{ManifestOptions{Mode: ModeEvents, URL: "https://"}, "no host"},
		{ManifestOptions{Mode: ModeEvents, URL: "https://u:p@parley.example.com"}, "credentials"},
		{ManifestOptions{Mode: ModeEvents, URL: "https://parley.example.com/?x=1"}, "no query"},
		{ManifestOptions{Mode: ModeSocket, URL: "https://parley.example.com"}, "--url is for --mode events"},
		{ManifestOptions{Mode: ModeSocket, Name: strings.Repeat("p", 36)}, "at most 35"},
	} {
		if _, err := Manifest(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Manifest(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
}
