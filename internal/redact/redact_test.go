package redact

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// Test secrets are assembled from parts so that no scanner mistakes this
// file for a leak; none of them is a real credential.
var (
	ghToken    = "ghp_" + strings.Repeat("aB3dE6gH9j", 4)
	ghPAT      = "github_pat_11ABCDEFG0" + strings.Repeat("xY7_", 10)
	slackBot   = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
	slackApp   = "xapp-" + "1-A0123456789-1234567890123-abcdef0123456789"
	awsKeyID   = "AKIA" + "IOSFODNN7EXAMPLE"
	jwt        = "eyJhbGciOiJIUzI1NiJ9" + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0" + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
	randomish  = "9fQ2xL7pZk3Rv8Wm1Ty6Hb4N"
	openAIKey  = "sk-" + "proj-" + strings.Repeat("Ab3dEf6h", 6)
	openAIOld  = "sk-" + strings.Repeat("x9Yz", 12)
	anthropic  = "sk-" + "ant-api03-" + strings.Repeat("Qw3rTy_-", 8)
	stripeKey  = "sk_" + "live_" + strings.Repeat("4eC39HqLyjWDarjt", 2)
	gitlabPAT  = "glpat-" + "xYz12AbC34dEf56GhI78"
	googleKey  = "AIza" + "SyA1bC2dE3fG4hI5jK6lM7nO8pQ9rS0tU1v"
	slackUser  = "xoxp-" + "1234567890-0987654321-AbCdEf123456"
	privateKey = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nabcDEF123=\n-----END RSA " + "PRIVATE KEY-----"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		// Authorization headers.
		{"bearer header", "Authorization: Bearer abc.def-123", "Authorization: Bearer [REDACTED]"},
		{"placeholder kept", "Authorization: Bearer <secret>, body {}", "Authorization: Bearer <secret>, body {}"},
		{"basic header", "authorization=Basic dXNlcjpwYXNz", "authorization=Basic [REDACTED]"},
		{"header without scheme", "Authorization: s3cr3t-value other", "Authorization: [REDACTED] other"},
		{"go header map", "headers=map[Accept:[*/*] Authorization:[Bearer abc123def456]]", "headers=map[Accept:[*/*] Authorization:[Bearer [REDACTED]]]"},
		{"json header", `{"Authorization":"Bearer abc123def456","Accept":"json"}`, `{"Authorization":"Bearer [REDACTED]","Accept":"json"}`},
		{"proxy authorization", "Proxy-Authorization: Basic Zm9vOmJhcg==", "Proxy-Authorization: Basic [REDACTED]"},
		{"bare bearer token", "calling api with bearer Zm9vYmFyMTIz", "calling api with bearer [REDACTED]"},

		// key=value, key: value, JSON.
		{"password kv", "login user=bob password=hunter2 ok", "login user=bob password=[REDACTED] ok"},
		{"password colon", "password: hunter2", "password: [REDACTED]"},
		{"passwd", "passwd=letmein", "passwd=[REDACTED]"},
		{"db password prefix", "DB_PASSWORD=s3cret!", "DB_PASSWORD=[REDACTED]"},
		{"password quoted", `password="correct horse battery"`, `password="[REDACTED]"`},
		{"password single quoted", `password='a b c'`, `password='[REDACTED]'`},
		{"json password", `{"user":"bob","password":"hunter2","id":7}`, `{"user":"bob","password":"[REDACTED]","id":7}`},
		{"json password spaced", `{"password" : "hu\"nter2"}`, `{"password" : "[REDACTED]"}`},
		{"json token number", `{"token": 123456789}`, `{"token": [REDACTED]}`},
		{"secret kv", "client_secret=abc123&grant_type=client_credentials", "client_secret=[REDACTED]&grant_type=client_credentials"},
		{"token in query", "GET /cb?code=x&token=abcd1234&state=y", "GET /cb?code=x&token=[REDACTED]&state=y"},
		{"api_key", "api_key=AbC123", "api_key=[REDACTED]"},
		{"apikey", "apikey: AbC123", "apikey: [REDACTED]"},
		{"x-api-key header", "X-Api-Key: 0123456789abcdef", "X-Api-Key: [REDACTED]"},
		{"access_key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key = [REDACTED]"},
		{"go struct", "{User:bob Password:hunter2}", "{User:bob Password:[REDACTED]}"},
		{"yaml", "  token: abc.def\n  user: bob", "  token: [REDACTED]\n  user: bob"},
		{"logfmt", `level=info msg="login" password=p4ss user=42`, `level=info msg="login" password=[REDACTED] user=42`},

		// Vendor tokens.
		{"aws key id", "using " + awsKeyID + " for s3", "using [REDACTED] for s3"},
		{"github token", "cloning with " + ghToken, "cloning with [REDACTED]"},
		{"github pat", "GH=" + ghPAT + " done", "GH=[REDACTED] done"},
		{"slack bot token", "slack token " + slackBot, "slack token [REDACTED]"},
		{"slack app token", "app-level " + slackApp + ".", "app-level [REDACTED]."},
		{"slack user token", "as user " + slackUser, "as user [REDACTED]"},
		{"openai project key", "OPENAI_API_KEY " + openAIKey + " set", "OPENAI_API_KEY [REDACTED] set"},
		{"openai key", "using " + openAIOld, "using [REDACTED]"},
		{"anthropic key", "x-api-key " + anthropic, "x-api-key [REDACTED]"},
		{"stripe key", "charge with " + stripeKey + ".", "charge with [REDACTED]."},
		{"gitlab token", "clone with " + gitlabPAT, "clone with [REDACTED]"},
		{"google api key", "maps key=" + googleKey, "maps key=[REDACTED]"},
		{"google api key bare", "calling " + googleKey + " now", "calling [REDACTED] now"},
		{"slack webhook", "posting to https://hooks.slack.com/services/T000/B000/XXXXXXXX", "posting to https://[REDACTED]"},
		{"jwt", "id_token " + jwt + " expired", "id_token [REDACTED] expired"},
		{"private key", "key follows " + privateKey + " end", "key follows [REDACTED] end"},
		{"private key cut", "-----BEGIN " + "PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "[REDACTED]"},
		{"openssh key", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH " + "PRIVATE KEY-----", "[REDACTED]"},

		// URLs with userinfo.
		{"url password", "connecting to postgres://app:s3cr3t@db:5432/orders", "connecting to postgres://app:[REDACTED]@db:5432/orders"},
		{"https password", "fetch https://user:pa55@example.com/x", "fetch https://user:[REDACTED]@example.com/x"},

		// Long random strings after credential words.
		{"token with space", "refreshed token " + randomish, "refreshed token [REDACTED]"},
		{"secret is", "the secret is " + randomish, "the secret is [REDACTED]"},
		{"key for", "signing key for " + randomish, "signing key for [REDACTED]"},

		// Several in one line.
		{"several", "password=a token=b " + ghToken, "password=[REDACTED] token=[REDACTED] [REDACTED]"},

		// Already redacted text stays as it is.
		{"marker", "password=[REDACTED] Authorization: Bearer [REDACTED]", "password=[REDACTED] Authorization: Bearer [REDACTED]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestNoFalsePositives keeps ordinary log lines as they are.
func TestNoFalsePositives(t *testing.T) {
	for _, line := range []string{
		"token bucket refilled",
		"password reset email sent to user 42",
		"level=info msg=\"rate limiter: token bucket has 12 tokens\"",
		"prompt_tokens=1234 completion_tokens=56 total_tokens=1290",
		"token_type=bearer expires_in=3600",
		"max_tokens=4096",
		"secret_name=payments-db mounted",
		"the bearer of bad news",
		"invalid bearer authentication header",
		"GET /api/v1/orders/123 200 12ms",
		"ERROR checkout-7f9c payment declined for order 8812: card_declined",
		"{\"level\":\"error\",\"msg\":\"upstream timeout\",\"service\":\"payments\"}",
		"connecting to https://example.com:8443/path@v2",
		"ssh://git@github.com/org/repo.git",
		"user bob@example.com logged in",
		"key rotation scheduled for 2026-12-01",
		"cache key checkout/cart/summary refreshed",
		"request id 3b1f6a0c9e2d4c8a",
		"secret rotation completed",
		"api key validation failed for tenant acme",
		"AKIA is a prefix, not a key",
		"eyJ is how JSON looks in base64",
		"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
		"pip install sk-learn-pipeline-stage-runner-helper",
		// a key's prefix inside a longer word is no key (built from parts,
		// so that secret scanners do not take the literal for one)
		"ta" + "sk-" + "0123456789" + "abcdefghijklmnop finished",
		"di" + "sk-" + "0123456789" + "abcdefghijklmnop attached",
		"",
	} {
		if got := Redact(line); got != line {
			t.Errorf("Redact(%q) = %q, want it unchanged", line, got)
		}
	}
}

func TestIdempotent(t *testing.T) {
	for _, s := range []string{
		"Authorization: Bearer abc.def-123 password=x",
		"headers=map[Authorization:[Bearer abc123def456]]",
		"postgres://app:[REDACTED]@db",
		`{"password":"[REDACTED]"}`,
		"token " + randomish + " " + jwt,
		privateKey + privateKey,
	} {
		once := Redact(s)
		if twice := Redact(once); twice != once {
			t.Errorf("not idempotent for %q:\n once %q\ntwice %q", s, once, twice)
		}
	}
}

func TestLooksRandom(t *testing.T) {
	for s, want := range map[string]bool{
		randomish:                    true,
		"aaaaaaaaaaaaaaaaaaaaaaaa1":  false, // low entropy
		"checkout-service-frontend":  false, // no digit
		"12345678901234567890":       false, // no letter
		"short1A":                    false,
		"v2.3.1-rc1+build.20261201z": true, // a version can look random; it follows a credential word only rarely
	} {
		if got := looksRandom(s); got != want {
			t.Errorf("looksRandom(%q) = %v, want %v", s, got, want)
		}
	}
}

// checkProperties asserts what must hold for any input: the result is
// stable under a second Redact, and everything in it but markers comes from
// the input, in order (Redact adds nothing else).
func checkProperties(t *testing.T, in string) {
	t.Helper()
	out := Redact(in)
	if again := Redact(out); again != out {
		t.Fatalf("not idempotent for %q:\n once %q\ntwice %q", in, out, again)
	}
	n := strings.Count(out, Marker)
	if len(out) > len(in)+n*len(Marker) {
		t.Fatalf("output of %q is longer than its markers explain: %q", in, out)
	}
	if rest := strings.ReplaceAll(out, Marker, ""); !isSubsequence(rest, in) {
		t.Fatalf("output of %q holds text that is not from the input: %q", in, out)
	}
	if utf8.ValidString(in) && !utf8.ValidString(out) {
		t.Fatalf("valid UTF-8 input %q gave invalid output %q", in, out)
	}
}

func isSubsequence(sub, s string) bool {
	i := 0
	for j := 0; j < len(s) && i < len(sub); j++ {
		if s[j] == sub[i] {
			i++
		}
	}
	return i == len(sub)
}

func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"Authorization: Bearer abc.def-123",
		"password=hunter2 token=abc",
		`{"password":"a\"b","api_key":"x"}`,
		"postgres://u:p@h/db",
		"https://user:pa@ss@host",
		awsKeyID, ghToken, ghPAT, slackBot, jwt, privateKey, openAIKey, anthropic, stripeKey, gitlabPAT, googleKey,
		"token " + randomish,
		"token bucket refilled",
		"password=[REDACTED]x",
		"Authorization:[Bearer [REDACTED]]",
		"-----BEGIN " + "PRIVATE KEY-----",
		"secret: password: token=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkProperties(t, s)
	})
}

func BenchmarkRedact(b *testing.B) {
	lines := []string{
		`level=error ts=2026-11-27T10:00:00Z caller=pay.go:88 msg="upstream timeout" service=payments order=8812 duration=5.001s`,
		`{"level":"info","msg":"login ok","user":"bob","password":"hunter2","ip":"10.1.2.3"}`,
		`GET /api/v1/orders?token=abcd1234&page=2 200 12ms Authorization: Bearer ` + jwt,
	}
	var total int
	for _, l := range lines {
		total += len(l)
	}
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			_ = Redact(l)
		}
	}
}
