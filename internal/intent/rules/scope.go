package rules

// offTopic reports, of a message read as no action, that nothing in it
// points at any action: no inventory name, key:value, code, window,
// quoted text, number bound to a parameter, enum value, cue, verb or
// phrase of an action. A greeting, thanks, chit-chat, noise or a question
// about the world. Intent.OutOfScope carries it, so that a model is not
// asked about such a message: offered the same actions, it could only
// answer none. Words that only introduce a value ("in", "for") are not
// evidence: the value itself is.
func (a *analysis) offTopic() bool {
	if len(a.names) > 0 || len(a.kvs) > 0 || a.code != "" || a.window != "" || a.filter != "" ||
		len(a.values) > 0 || len(a.bound) > 0 || len(a.phrases) > 0 {
		return false
	}
	for _, wi := range a.info {
		if wi != nil && (len(wi.cues) > 0 || len(wi.verbs) > 0 || len(wi.values) > 0) {
			return false
		}
	}
	return true
}
