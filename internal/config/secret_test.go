package config

import (
	"strings"
	"testing"
)

// TestInlineSecretsAreNeverPrinted writes credentials straight into the
// configuration, where secrets are refused, and in fields that are not
// secrets at all (where the decoder quotes values it cannot use): the
// error names the line and says how to name a secret, and holds no part
// of the value (no run of 4 of its characters).
func TestInlineSecretsAreNeverPrinted(t *testing.T) {
	// Built from parts: no token-shaped literal in the repository.
	slackTok := "xoxb-" + "5566778899-1122334455-" + strings.Repeat("Hq3Zr9", 4)
	openAI := "sk-" + "proj-" + strings.Repeat("Mn4Bv7Cx", 5)
	pgDSN := "postgres://parley:" + "Pg-" + "Zq8Wm4Xt7" + "@db:5432/parley"
	for _, tc := range []struct {
		name, src, secret string
		hint              bool // the error must say how to name a secret
	}{
		{"slack bot token", "slack: {bot_token: " + slackTok + ", app_token: {env: T}}\n", slackTok, true},
		{"quoted", "slack:\n  bot_token: '" + slackTok + "'\n  app_token: {env: T}\n", slackTok, true},
		{"block scalar", "slack:\n  bot_token: |\n    " + slackTok + "\n  app_token: {env: T}\n", slackTok, true},
		{"llm key", "router: {mode: llm, llm: {provider: openai, model: m, api_key: " + openAI + "}}\n", openAI, true},
		{"dsn", "store: {driver: postgres, dsn: '" + pgDSN + "'}\n", pgDSN, true},
		{"list", "discord: {token: [" + slackTok + "], application_id: '1'}\n", slackTok, true},
		{"unknown key", "slack: {bot_token: {value: " + slackTok + "}, app_token: {env: T}}\n", slackTok, true},
		{"env as a list", "slack: {bot_token: {env: [" + slackTok + "]}, app_token: {env: T}}\n", slackTok, true},
		{"key pasted as a key", "slack: {bot_token: {" + slackTok + ": x}, app_token: {env: T}}\n", slackTok, true},
		{"token in a number field", "incidents: {max_body: " + slackTok + ", default_channel: 'slack:C1', auth: {bearer_token: {env: T}}}\n", slackTok, false},
		{"token in a bool field", "trail: " + openAI + "\n", openAI, false},
		{"token in a list field", "channels: " + openAI + "\n", openAI, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src), "parley.yaml", env(map[string]string{"T": tokenValue}))
			if err == nil {
				t.Fatalf("Parse accepted %q", tc.src)
			}
			msg := err.Error()
			for i := 0; i+4 <= len(tc.secret); i++ {
				if part := tc.secret[i : i+4]; strings.Contains(msg, part) && !harmless(part) {
					t.Fatalf("error shows %q of the secret: %v", part, msg)
				}
			}
			if !strings.HasPrefix(msg, "parley.yaml:") || !strings.Contains(msg, "line ") {
				t.Errorf("error does not name the file and line: %v", msg)
			}
			if tc.hint && !(strings.Contains(msg, "{env: VARIABLE}") && strings.Contains(msg, "{file: PATH}")) {
				t.Errorf("error does not say how to name a secret: %v", msg)
			}
		})
	}
}

// harmless are runs of characters a secret shares with the configuration's
// own words (a DSN's scheme, say); seeing them reveals nothing.
func harmless(part string) bool {
	for _, w := range []string{"postgres://", "parley", "xoxb-"} {
		if strings.Contains(w, part) {
			return true
		}
	}
	return false
}

// TestSecretForms: env and file are the only forms; both, neither or
// an empty name are refused with the same hint.
func TestSecretForms(t *testing.T) {
	for src, want := range map[string]string{
		"slack: {bot_token: {env: T}, app_token: {env: T}}\n":           "",
		"slack: {bot_token: {env: T, env: U}, app_token: {env: T}}\n":   "env given twice",
		"slack: {bot_token: {env: ''}, app_token: {env: T}}\n":          "env: want the name of a variable or a path",
		"slack: {bot_token: {}, app_token: {env: T}}\n":                 "slack.bot_token: required",
		"slack: {bot_token: {env: T, file: /x}, app_token: {env: T}}\n": "env or file, not both",
	} {
		_, err := Parse([]byte(src), "parley.yaml", env(map[string]string{"T": tokenValue}))
		switch {
		case want == "" && err != nil:
			t.Errorf("Parse(%q): %v", src, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("Parse(%q) = %v, want an error with %q", src, err, want)
		}
	}
}
