package action

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

var durationUnits = []struct {
	suffix string
	d      time.Duration
}{
	{"y", 365 * 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// ParseDuration parses a Prometheus-style duration: one or more
// number+unit pairs with units ms, s, m, h, d, w, y ("30m", "1h30m", "1d").
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i > 9 {
			return 0, fmt.Errorf("invalid duration %q: want forms like 30m, 1h, 1d", orig)
		}
		n, _ := strconv.Atoi(s[:i])
		s = s[i:]
		unit := time.Duration(0)
		switch {
		case strings.HasPrefix(s, "ms"):
			unit, s = time.Millisecond, s[2:]
		case s != "" && strings.ContainsRune("ywdhms", rune(s[0])):
			for _, u := range durationUnits {
				if u.suffix == s[:1] {
					unit = u.d
				}
			}
			s = s[1:]
		default:
			return 0, fmt.Errorf("invalid duration %q: want forms like 30m, 1h, 1d", orig)
		}
		total += time.Duration(n) * unit
		if total > 10*365*24*time.Hour {
			return 0, fmt.Errorf("duration %q is longer than ten years", orig)
		}
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", orig)
	}
	return total, nil
}

// FormatDuration writes d in the largest exact Prometheus units: 90m -> "1h30m",
// 24h -> "1d", 45m -> "45m".
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range durationUnits {
		if u.suffix == "y" { // years are ambiguous next to weeks; stop at weeks
			continue
		}
		if d >= u.d {
			n := d / u.d
			d -= n * u.d
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.suffix)
		}
	}
	return b.String()
}
