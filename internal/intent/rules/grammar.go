package rules

// The grammar of requests, whatever the action: whether a verb is a
// command (imperative, polite, not a question or a condition), negated,
// taken back, or joined by a second request.

// imperative reports whether the verb at i opens its clause, allowing
// polite fillers, names and namespaces before it. A conditional ("restart
// checkout if the error rate is high") is not a command Parley can follow.
func (a *analysis) imperative(i int) bool {
	for j := range a.toks {
		if a.isWord(j, "if", "unless", "whether", "once") && !a.isWord(j+1, "possible", "you", "ok", "okay", "thats", "that") {
			return false
		}
		if a.isWord(j, "hypothetically", "suppose", "supposing", "imagine", "theoretically", "hypothetical") {
			return false
		}
	}
	start := i
	for start > 0 && !a.toks[start].sep {
		start--
	}
	if a.outcomeQuestion(start, i) {
		return false
	}
	for j := start; j < i; j++ {
		t := a.toks[j]
		switch {
		case t.kind == tWord && preverb[t.s]:
			if (t.s == "can" || t.s == "could" || t.s == "may") && a.isWord(j+1, "i") {
				return false // "can I restart ...?" asks, it does not command
			}
		case t.kind == tWord && a.info[j].has(wGreet):
		case t.kind == tWord && politeFiller[t.s] && a.politeWrapper(start, i):
			// "would you be so kind as to scale ...", "would it be possible
			// to restart ...", "do me a favour and bounce ..."
		case t.used && (t.kind == tWord || t.kind == tKV || t.kind == tFlag):
			// names, namespaces and flags: "prod checkout restart"
		case t.kind == tWord && a.nameWordOf(i, t.s):
			// the action's own name: "cdn purge shop", "queue drain emails"
		case a.isWord(i, "need", "needs", "use", "want", "wants") && (a.isWord(j, "in", "on") && j+1 < i && a.toks[j+1].used ||
			a.isWord(j, "the", "our", "my", "all", "pods", "pod", "replicas", "deployment", "service", "app") && a.usedBefore(start, i)):
			// a subject before a verb of need: "checkout in prod needs a
			// restart", "the checkout pods need 8 replicas"
		default:
			return false
		}
	}
	return true
}

// politeWrapper reports a polite request wrapper between start and the verb
// at i: the clause asks the bot ("you", "it be possible", "me a favour")
// rather than asking whether a change is wise ("would it be bad to ...").
func (a *analysis) politeWrapper(start, i int) bool {
	if a.isWord(start, "if") {
		return false // "if you'd be so kind as to restart x when ...": a condition
	}
	for j := start; j < i; j++ {
		switch a.word(j) {
		case "kind", "possible", "favor", "favour", "appreciate", "grateful", "glad", "happy", "you", "u":
			return true
		}
	}
	return false
}

// outcomeQuestion: the clause asks whether a change would help rather than
// asking for it: "would restart orders help?", "will a rollback of x fix
// it?" (not "would you restart x?").
func (a *analysis) outcomeQuestion(start, i int) bool {
	if !a.isWord(start, "would", "will", "could", "does", "did", "might", "should", "do", "can") ||
		a.isWord(start+1, "you", "u", "someone", "somebody", "anyone") {
		return false
	}
	for j := i + 1; j < len(a.toks) && !a.toks[j].sep; j++ {
		if a.isWord(j, "help", "helps", "work", "fix", "solve", "matter", "hurt", "break", "improve", "change") {
			return true
		}
	}
	return false
}

// usedBefore reports a name or flag among the tokens from..to-1.
func (a *analysis) usedBefore(from, to int) bool {
	for j := from; j < to; j++ {
		if a.toks[j].used {
			return true
		}
	}
	return false
}

// negated reports a negation before the word at i in its clause.
func (a *analysis) negated(i int) bool {
	for j := i - 1; j >= 0 && j >= i-6; j-- {
		if a.info[j].has(wNeg) && !a.toks[j].used {
			return true
		}
		// stop at the start of the clause ("..., then scale x" is not negated
		// by an earlier clause), though "no, restart x" still is
		if a.toks[j].sep && (j < i-1 || !a.toks[i].sep) {
			break
		}
	}
	return false
}

// withheldChange returns the index of a negation or withdrawal that keeps a
// change from happening, or -1: a negated change verb ("don't touch
// checkout", "never bump auth"), or a change taken back by "let's not",
// "never mind", "forget it" or "scratch that" (only when hasChange says a
// change was mentioned).
func (a *analysis) withheldChange(hasChange bool) int {
	for j := range a.toks {
		wi := a.info[j]
		if wi.has(wNeg) && !a.toks[j].used {
			if hasChange && (a.isWord(j-1, "lets", "let's", "better", "maybe", "rather") || a.isWord(j-1, "us", "is") && a.isWord(j-2, "let")) {
				return j // "... but let's not"
			}
			if hasChange && a.isWord(j-1, "do") && (j+1 == len(a.toks) || a.toks[j+1].sep) {
				return j // "restart checkout? on second thought, do not"
			}
			// only a negated command: "don't touch", "never bump" (not
			// "latency didn't change")
			if !(a.isWord(j, "not") && a.isWord(j-1, "do") && a.imperative(j-1) || a.isWord(j, "never") && a.imperative(j)) {
				continue
			}
			k := j + 1
			for k < len(a.toks) && k <= j+3 && a.isWord(k, "please", "pls", "you", "even", "ever", "yet", "just", "go", "dare", "to", "need") {
				k++
			}
			if k < len(a.toks) && !a.toks[k].used && !(k > j+1 && a.toks[k].sep) {
				if w := a.word(k); keepVerbs[w] || changeVerbs[w] {
					return j
				}
				countCtx := len(a.bound) > 0 || a.toNum.ok || a.relative
				if wi := a.info[k]; wi != nil && (len(wi.verbOf(formBase)) > 0 || wi.has(wSet|wDesire) && countCtx) || a.verbPhraseAt(k) {
					return j
				}
			}
		}
		if !hasChange {
			continue
		}
		switch a.word(j) {
		case "nevermind", "nvm":
			return j
		case "mind":
			if a.isWord(j-1, "never") {
				return j
			}
		case "forget", "scratch":
			if a.isWord(j+1, "it", "that", "this") {
				return j
			}
		case "thought":
			if a.isWord(j-1, "second") {
				return j
			}
		case "hold":
			if a.isWord(j+1, "off") {
				return j // "hold off on restarting cart"
			}
		}
	}
	return -1
}

// retracted spots a change taken back or corrected after it was asked:
// "restart checkout? no wait", "scale checkout to 5, no 6".
func (a *analysis) retracted(mi int) bool {
	for j := mi + 1; j < len(a.toks); j++ {
		if a.toks[j].sep && a.isWord(j, "no", "wait", "nevermind", "nvm", "cancel", "scratch", "actually", "sorry", "oops") {
			return true
		}
	}
	return false
}

// alsoRead spots a second, read command next to a change: "restart checkout
// and show me the logs".
func (a *analysis) alsoRead(mi int) bool {
	for j := range a.toks {
		if j == mi || !a.info[j].has(wRead) || a.toks[j].used {
			continue
		}
		if a.imperative(j) || a.isWord(j-1, "and", "then", "also") {
			return true
		}
	}
	return false
}

// unsupportedChange: an imperative change verb with nothing Parley can do
// about it ("update the checkout image", "deploy my branch to prod").
func (a *analysis) unsupportedChange() bool {
	i := a.firstContent()
	if i >= len(a.toks) || a.toks[i].used || !a.imperative(i) || a.nounCompound(i) {
		return false // "change log for prod": a noun
	}
	if a.info[i].has(wSet) && !a.isWord(i, "go", "get", "take") {
		return true
	}
	return changeVerbs[a.word(i)]
}

// readCue is the word's largest cue for a read action.
func readCue(wi *wordInfo) float32 {
	var m float32
	for _, c := range wi.cues {
		if !c.act.mutating {
			m = max(m, c.w)
		}
	}
	return m
}

// readAfter reports a read request after the word at i: "don't restart
// auth, just tell me if it's healthy". Words that only say what the change
// is about ("don't run the eval") are not one.
func (a *analysis) readAfter(i int, change *actInfo) bool {
	for j := i + 1; j < len(a.toks); j++ {
		if a.info[j].has(wRead) || a.isWord(j, "tell") {
			return true
		}
		if wi := a.info[j]; wi != nil && (len(wi.values) > 0 || readCue(wi) >= 2 && len(wi.verbs) == 0 && wi.cueFor(change) < 2) {
			return true
		}
	}
	return false
}

// nounVerb finds the verb of a change named as a noun: "checkout needs a
// restart", "give auth a quick bounce", "could use a rollback". It returns
// i when the change word is itself the verb.
func (a *analysis) nounVerb(i int) int {
	j := i - 1
	for j >= 0 && a.isWord(j, "quick", "rolling", "fresh", "full", "good", "clean") {
		j--
	}
	if !a.isWord(j, "a", "an", "another") {
		return i
	}
	if a.isWord(j-1, "needs", "need", "give", "use", "get", "make", "run", "execute", "start", "launch", "request",
		"like", "want", "wants", "love", "schedule", "initiate", "perform", "trigger", "issue", "do") {
		return j - 1 // "please make a restart of x", "I'd like a rollback of y"
	}
	if j >= 2 && a.toks[j-1].used && a.isWord(j-2, "give", "get") { // "give payments a restart"
		return j - 2
	}
	return i
}

// desireGap reports whether the replica count follows the verb of wanting
// at i with only names and linking words between: "need twelve checkout
// pods", "get checkout at 20", "take checkout prod up to 9", "needs to be
// at 4" (not "need the logs of the 3 checkout pods", "give me 5 pods").
func (a *analysis) desireGap(i int) bool {
	if a.countAt <= i {
		return false
	}
	for j := i + 1; j < a.countAt; j++ {
		if a.toks[j].sep {
			return false
		}
		if a.toks[j].used || a.isWord(j, "to", "be", "at", "up", "down", "it", "total", "least", "like", "about",
			"around", "roughly", "exactly", "running", "with", "on", "in") {
			continue
		}
		return false
	}
	return true
}

// desireRequest reports whether a verb of wanting ("need", "run", "give")
// asks for a change rather than asking about one: "we need 12 pods",
// "can we get x at 20 replicas?", but not "do we need 4 replicas?", "should
// we run 4?", "we run 4 replicas of x" or "why does x need 8 replicas?".
func (a *analysis) desireRequest(verb int) bool {
	if a.whQuestion() {
		return false
	}
	w := a.word(verb)
	for j := verb - 1; j >= 0 && j >= verb-4; j-- {
		switch a.word(j) {
		case "do", "does", "did", "would", "will", "should", "shall", "might", "must", "may", "is", "are":
			if !a.isWord(j+1, "you", "u") && !(a.isWord(j, "would") && a.isWord(j+1, "like", "love")) {
				return false
			}
		case "we", "i", "they":
			if (w == "run" || w == "have" || w == "get" || w == "keep") && !a.isWord(j-1, "can", "could", "let", "lets") {
				return false // "we run 4 replicas of x": a fact
			}
		}
		if a.toks[j+1].sep {
			break
		}
	}
	return true
}

// wantedDone returns the verb of wanting before a participle at i with
// only the target between ("I'd like worker restarted", "need x in prod
// bounced", "get cart rolled back", "I'd like the blog cdn cache purged"),
// or -1. Words of the changes acts (its cues and values) may stand there.
func (a *analysis) wantedDone(i int, acts []*actInfo) int {
	named := false
	for j := i - 1; j >= 0 && j >= i-6; j-- {
		if a.toks[j+1].sep {
			return -1
		}
		if a.toks[j].used {
			named = named || a.nameAt(j)
			continue
		}
		if a.wordOfActs(j, acts) {
			named = true
			continue
		}
		if a.isWord(j, "like", "want", "wants", "need", "needs", "get", "have", "love", "prefer") {
			if named {
				return j
			}
			return -1
		}
		if !a.isWord(j, "the", "in", "on", "deployment", "deploy", "service", "svc", "app", "pods", "pod", "of", "our", "my") {
			return -1
		}
	}
	return -1
}

// wordOfActs reports a cue of one of the actions at j, or a value of one
// of their parameters ("blog", "cdn" for a cdn purge).
func (a *analysis) wordOfActs(j int, acts []*actInfo) bool {
	wi := a.info[j]
	if wi == nil {
		return false
	}
	for _, act := range acts {
		if wi.cueFor(act) > 0 {
			return true
		}
		for _, v := range wi.values {
			if v.param.act == act {
				return true
			}
		}
	}
	return false
}

// terse reports a bare command without a verb: only names, namespaces,
// flags, one replica count, an arrow and replica words ("frontend staging
// -> 5 replicas", "orders@staging 4 pods"). A question, a window or any
// other word (a negation, a verb) makes it something else.
func (a *analysis) terse() bool {
	if a.question || a.window != "" || len(a.bareNums) > 0 || a.relative || a.filter != "" {
		return false
	}
	counts := 0
	for i, t := range a.toks {
		switch {
		case t.kind == tNum:
			counts++
		case t.kind == tWord && (t.s == arrow || len(a.intWords(i)) > 0 || terseFiller[t.s]):
		case t.used && t.kind != tQuote && t.kind != tCode:
		default:
			return false
		}
	}
	return counts == 1
}

var terseFiller = setOf(`please pls plz deployment deploy deployments in on to at ns namespace`)

// runIsNoun: an open verb used as a noun: "eval run 42", "the last run",
// "how did the run go".
func (a *analysis) runIsNoun(i int) bool {
	if i+1 < len(a.toks) && a.toks[i+1].kind == tNum {
		return true
	}
	if a.isWord(i+1, "go", "went", "going", "finish", "finished", "status", "results", "result", "done", "complete", "completed") {
		return true
	}
	for j := i - 1; j >= 0 && j >= i-3; j-- {
		if a.isWord(j, "the", "last", "latest", "previous", "recent", "this", "that", "my", "our", "which", "of", "did", "was", "is") {
			return true
		}
	}
	return false
}
