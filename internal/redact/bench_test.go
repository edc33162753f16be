package redact

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/chat"
)

// authLogs is a kubernetes.logs code block as the sandbox's auth service
// writes it: a header, then logfmt request lines of which about a third
// are POST /oauth/token, until it holds size bytes.
func authLogs(size int) string {
	routes := []string{"POST /oauth/token", "GET /session", "POST /session/refresh"}
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var b strings.Builder
	b.WriteString("==> auth-7f9c6d5b8-x2k4q <==\n")
	for i := 0; b.Len() < size; i++ {
		method, path, _ := strings.Cut(routes[(i*7+i/3)%len(routes)], " ")
		at = at.Add(7*time.Second + time.Duration(i*37%900)*time.Millisecond)
		fmt.Fprintf(&b, "ts=%s level=info msg=%q method=%s path=%s status=200 duration_ms=%d\n",
			at.Format("2006-01-02T15:04:05.000Z"), "request", method, path, 4+i*13%60)
	}
	return b.String()
}

// logsReply is the reply kubernetes.logs gives for a 10 KiB tail.
func logsReply() chat.Reply {
	return chat.Reply{
		Kind: chat.KindInfo,
		Text: "Last 100 lines of auth (prod), container auth, 1 pod:\n_Long output: each pod shows its newest lines that fit in 10 KiB._",
		Code: authLogs(10 << 10),
	}
}

// BenchmarkRedactLogsReply redacts a kubernetes.logs reply: a 10 KiB code
// block in which every third line holds "token" (path=/oauth/token).
func BenchmarkRedactLogsReply(b *testing.B) {
	r := logsReply()
	b.SetBytes(int64(len(r.Text) + len(r.Code)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Reply(r)
	}
}

// BenchmarkRedactLogLines redacts the same log line by line, as
// kubernetes.logs does before it renders the code block.
func BenchmarkRedactLogLines(b *testing.B) {
	code := authLogs(10 << 10)
	lines := strings.Split(strings.TrimSuffix(code, "\n"), "\n")
	b.SetBytes(int64(len(code)))
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			_ = Redact(l)
		}
	}
}

// BenchmarkRedactChatReply redacts a short confirmation reply, the most
// common reply there is.
func BenchmarkRedactChatReply(b *testing.B) {
	r := chat.Reply{
		Kind: chat.KindSuccess,
		Text: "Scaled deployment checkout (prod) from 2 to 3 replicas; 3 of 3 are ready.",
		Fields: []chat.Field{
			{Label: "Requested by", Value: "@alice"},
			{Label: "Confirmed by", Value: "@bob"},
		},
		Context: []string{"audit #4812 · request 3b1f6a0c9e2d4c8a"},
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = Reply(r)
	}
}

// BenchmarkRedactAuditEvent redacts an audit event's text that holds a
// credential someone pasted into chat.
func BenchmarkRedactAuditEvent(b *testing.B) {
	text := "@alice: restart deployment payments in prod, the new DB_PASSWORD=" + "Xk9" + "fQ2pL7zR is in the secret now"
	want := "@alice: restart deployment payments in prod, the new DB_PASSWORD=[REDACTED] is in the secret now"
	if got := Redact(text); got != want {
		b.Fatalf("Redact(%q) = %q, want %q", text, got, want)
	}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Redact(text)
	}
}

// BenchmarkRedactDense redacts text where gate words are everywhere on
// long lines: a 10 KiB one-line JSON array of credential-like objects and
// a 10 KiB line of "token key secret". Windows buy nothing here; they must
// not cost much either.
func BenchmarkRedactDense(b *testing.B) {
	var j strings.Builder
	j.WriteString("[")
	for i := 0; j.Len() < 10<<10; i++ {
		fmt.Fprintf(&j, `{"key":"k%d","token_type":"bearer","secret_name":"db-%d","passwords":%d,"api_key_id":"id-%d"},`, i, i, i, i)
	}
	j.WriteString("{}]")
	words := strings.Repeat("token key secret Bearer password: ", 10<<10/34)
	for name, s := range map[string]string{"json": j.String(), "words": words} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(s)))
			b.ReportAllocs()
			for b.Loop() {
				_ = Redact(s)
			}
		})
	}
}
