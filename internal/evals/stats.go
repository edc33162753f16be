package evals

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Statistics of paired comparisons. Both tests look at the same cases
// answered by the baseline and the variant, so case difficulty cancels
// out: far fewer cases are needed than for comparing two independent
// means.

// BootstrapResamples and BootstrapSeed fix the bootstrap, so the same
// results always give the same interval.
const (
	BootstrapResamples = 2000
	BootstrapSeed      = 20240917
)

// Alpha is the significance level: "better" and "worse" need p < 0.05 or
// a 95% interval that excludes 0.
const Alpha = 0.05

// PairedBootstrap returns the mean of d (variant − baseline per case) and
// the percentile 95% confidence interval of that mean from resamples of
// the cases drawn with replacement, with a fixed seed.
func PairedBootstrap(d []float64, resamples int, seed uint64) (mean, low, high float64) {
	n := len(d)
	if n == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	mean = meanOf(d)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	means := make([]float64, resamples)
	for i := range means {
		sum := 0.0
		for range n {
			sum += d[rng.IntN(n)]
		}
		means[i] = sum / float64(n)
	}
	sort.Float64s(means)
	return mean, quantile(means, Alpha/2), quantile(means, 1-Alpha/2)
}

// quantile of sorted xs by linear interpolation.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 1 {
		return xs[0]
	}
	pos := q * float64(len(xs)-1)
	i := int(math.Floor(pos))
	if i >= len(xs)-1 {
		return xs[len(xs)-1]
	}
	f := pos - float64(i)
	return xs[i]*(1-f) + xs[i+1]*f
}

// McNemarExact is the two-sided exact McNemar test: b cases passed only
// on the baseline, c only on the variant; under "no difference" each
// discordant case is a fair coin, so p = 2·P(X <= min(b,c)) for
// X ~ Binomial(b+c, 1/2), capped at 1. No discordant cases gives p = 1.
func McNemarExact(b, c int) float64 {
	n := b + c
	if n == 0 {
		return 1
	}
	k := min(b, c)
	// sum of C(n,i)/2^n for i <= k, in logs to stay finite for large n
	p := 0.0
	for i := 0; i <= k; i++ {
		p += math.Exp(logChoose(n, i) - float64(n)*math.Ln2)
	}
	return math.Min(1, 2*p)
}

func logChoose(n, k int) float64 {
	a, _ := math.Lgamma(float64(n + 1))
	b, _ := math.Lgamma(float64(k + 1))
	c, _ := math.Lgamma(float64(n - k + 1))
	return a - b - c
}

func meanOf(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
