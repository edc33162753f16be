//go:build race

package redact

// raceDetector is set when the tests run with -race, which makes the
// whole-text reference some fifteen times slower: the differential tests
// then check fewer texts (the fuzz step, without -race, checks many).
const raceDetector = true
