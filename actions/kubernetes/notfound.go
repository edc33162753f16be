package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/kube"
)

// notFoundError is a deployment that does not exist, said the way a person
// would ("no deployment "chekout" in prod (did you mean "checkout"?)"). It
// is an action.ErrNotFound without repeating the kind in its text.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == action.ErrNotFound }

// maxNamesShown bounds the names a not-found message lists when none is
// close to what was asked.
const maxNamesShown = 8

// deploymentNotFound says that ns has no deployment name, with the close
// matches among the names it has, or (when none is close) what it has.
func deploymentNotFound(ctx context.Context, c kube.Interface, ns, name string) error {
	list, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil { // the hint is a courtesy; the answer stays "not found"
		return &notFoundError{fmt.Sprintf("no deployment %q in %s", name, ns)}
	}
	names := make([]string, 0, len(list.Items))
	for _, d := range list.Items {
		names = append(names, d.Name)
	}
	return &notFoundError{notFoundText(name, "in "+ns, names)}
}

// notFoundText is "no deployment "foo" WHERE", then the close matches
// among names, or a short list of what there is.
func notFoundText(name, where string, names []string) string {
	msg := fmt.Sprintf("no deployment %q %s", name, where)
	if close := closeMatches(name, names); len(close) > 0 {
		return msg + " (did you mean " + orList(close) + "?)"
	}
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	switch n := len(names); {
	case n == 0:
		return msg + "; there are no deployments there"
	case n <= maxNamesShown:
		return msg + "; nothing with a similar name (there: " + strings.Join(names, ", ") + ")"
	default:
		return fmt.Sprintf("%s; nothing with a similar name among %d deployments", msg, n)
	}
}

// orList quotes names and joins them: "a", "a" or "b", "a", "b" or "c".
func orList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// closeMatches returns up to three names close to name, closest first: an
// edit distance (with transpositions) within a third of the name's
// length, at least 1, or one name containing the other ("pay" and
// "payments").
func closeMatches(name string, names []string) []string {
	name = strings.ToLower(name)
	limit := max(1, len([]rune(name))/3)
	type scored struct {
		n    string
		dist int
	}
	var hits []scored
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		ln := strings.ToLower(n)
		d := editDistance(name, ln)
		switch {
		case d <= limit:
		case len(name) >= 3 && (strings.Contains(ln, name) || (len(ln) >= 3 && strings.Contains(name, ln))):
			d = limit + 1 // a containment ranks after every typo
		default:
			continue
		}
		hits = append(hits, scored{n, d})
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].dist != hits[j].dist {
			return hits[i].dist < hits[j].dist
		}
		return hits[i].n < hits[j].n
	})
	var out []string
	for i := 0; i < len(hits) && i < 3; i++ {
		out = append(out, hits[i].n)
	}
	return out
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
