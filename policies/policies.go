// Package policies holds the policy files shipped with Parley: the default
// policy that `parley chat` uses on a fresh machine (embedded in the binary)
// and example policies for real deployments. The files are plain YAML in the
// format of internal/policy; this package only carries their bytes.
package policies

import (
	"embed"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed default.yaml examples/*.yaml
var files embed.FS

// DefaultName is the file name of the default policy, for error messages
// and explanations.
const DefaultName = "default.yaml"

// Default returns the embedded default policy: group sre (console:alice,
// console:bob) may change staging and prod after confirming, prod scaling
// outside 1..20 replicas needs a second sre, group ml (console:carol) may run
// evaluations, anyone may read, everything else is denied.
func Default() []byte {
	return mustRead(DefaultName)
}

// Examples returns the example policies by file name ("design.yaml", ...).
// The map is new on every call.
func Examples() map[string][]byte {
	entries, err := fs.ReadDir(files, "examples")
	if err != nil { // the directory is embedded; this cannot happen in a built binary
		panic("policies: " + err.Error())
	}
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".yaml") {
			out[e.Name()] = mustRead(path.Join("examples", e.Name()))
		}
	}
	return out
}

// ExampleNames returns the example file names, sorted.
func ExampleNames() []string {
	ex := Examples()
	names := make([]string, 0, len(ex))
	for n := range ex {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil { // embedded at build time; a miss is a build bug
		panic("policies: " + err.Error())
	}
	return b
}
