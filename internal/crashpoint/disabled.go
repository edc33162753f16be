//go:build !crashpoints

package crashpoint

// Enabled reports whether this binary was built with the crashpoints tag.
const Enabled = false

// Arm does nothing without the crashpoints tag: a release binary never
// reads PARLEY_CRASH_AT.
func Arm(string) error { return nil }

// At does nothing without the crashpoints tag.
func At(Point) {}
