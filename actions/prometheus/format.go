package prometheus

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// unit formats a metric's values for people.
type unit int

const (
	unitNone unit = iota
	unitPercent
	unitSeconds
	unitPerSecond
	unitCores
	unitBytes
	unitCount
)

// format writes v with its unit: "2.3%", "475 ms", "12.5 req/s",
// "0.25 cores", "512 MiB", "3".
func (u unit) format(v float64) string {
	if math.IsNaN(v) {
		return "n/a"
	}
	if math.IsInf(v, 0) {
		if v > 0 {
			return "+Inf"
		}
		return "-Inf"
	}
	switch u {
	case unitPercent:
		p := v * 100
		if p != 0 && math.Abs(p) < 0.1 {
			return trim(strconv.FormatFloat(p, 'f', 2, 64)) + "%"
		}
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	case unitSeconds:
		ms := v * 1000
		switch a := math.Abs(ms); {
		case a >= 1000:
			return strconv.FormatFloat(v, 'f', 2, 64) + " s"
		case a >= 100 || a == 0:
			return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
		case a >= 10:
			return strconv.FormatFloat(ms, 'f', 1, 64) + " ms"
		default:
			return strconv.FormatFloat(ms, 'f', 2, 64) + " ms"
		}
	case unitPerSecond:
		return number(v) + " req/s"
	case unitCores:
		if math.Abs(v) >= 10 {
			return strconv.FormatFloat(v, 'f', 1, 64) + " cores"
		}
		return strconv.FormatFloat(v, 'f', 2, 64) + " cores"
	case unitBytes:
		return bytesIEC(v)
	case unitCount:
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	default:
		return number(v)
	}
}

// number writes v with about three significant digits, without an
// exponent for everyday magnitudes.
func number(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 1e15 || a < 1e-4:
		return strconv.FormatFloat(v, 'g', 4, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return trim(strconv.FormatFloat(v, 'f', 1, 64))
	case a >= 1:
		return trim(strconv.FormatFloat(v, 'f', 2, 64))
	default:
		return trim(strconv.FormatFloat(v, 'f', 3-int(math.Floor(math.Log10(a))), 64))
	}
}

func trim(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func bytesIEC(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f B", v)
	}
	if math.Abs(v) >= 100 {
		return fmt.Sprintf("%.0f %s", v, units[i])
	}
	return trim(strconv.FormatFloat(v, 'f', 1, 64)) + " " + units[i]
}
