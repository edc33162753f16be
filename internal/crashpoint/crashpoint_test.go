package crashpoint

import (
	"regexp"
	"testing"
)

// The names are the interface to tests and scripts: unique, kebab-case.
func TestPointNames(t *testing.T) {
	name := regexp.MustCompile(`^[a-z]+(-[a-z]+)*$`)
	seen := map[Point]bool{}
	for _, p := range All() {
		if !name.MatchString(string(p)) || p == ListName {
			t.Errorf("bad point name %q", p)
		}
		if seen[p] {
			t.Errorf("point %q listed twice", p)
		}
		seen[p] = true
	}
}

// Without the tag nothing is armed, whatever the name, and At returns.
// (With the tag, cmd/parley's tests run the binary at every point.)
func TestReleaseBuildIgnoresCrashAt(t *testing.T) {
	if Enabled {
		t.Skip("built with -tags crashpoints")
	}
	for _, name := range []string{"", ListName, string(ConfirmationStored), "no-such-point"} {
		if err := Arm(name); err != nil {
			t.Errorf("Arm(%q) = %v", name, err)
		}
	}
	for _, p := range All() {
		At(p) // returns: this test goes on
	}
}
