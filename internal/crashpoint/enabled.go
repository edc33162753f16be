//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// Enabled reports whether this binary was built with the crashpoints tag.
const Enabled = true

// armed is the point the process stops at ("" for none).
var armed atomic.Pointer[Point]

// Arm makes the process exit at the point named name; "" and ListName arm
// nothing. An unknown name is an error, so a typo in a test cannot pass
// as a point that was never reached.
func Arm(name string) error {
	if err := check(name); err != nil {
		return err
	}
	p := Point(name)
	if name == ListName {
		p = ""
	}
	armed.Store(&p)
	return nil
}

// At exits the process with ExitCode when p is the armed point.
func At(p Point) {
	if a := armed.Load(); a != nil && *a == p {
		os.Exit(ExitCode)
	}
}

// check returns an error unless name is empty, ListName or a point.
func check(name string) error {
	if name == "" || name == ListName || slices.Contains(All(), Point(name)) {
		return nil
	}
	var names []string
	for _, p := range All() {
		names = append(names, string(p))
	}
	return fmt.Errorf("unknown crash point %q; the points are: %s", name, strings.Join(names, ", "))
}
