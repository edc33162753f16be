package rules

// Situations the router recognises in any message, whatever the catalog:
// a question about what the bot can do, a question whether a named thing is
// well, a general how-to question, a greeting, noise. Actions name the
// situations they answer in their cues (action.CueCapability...).

// capabilityQuestion: the message asks what the bot can do, in plain or
// non-native grammar: "what can you do", "which things you can make for
// me", "list the things you can do", "what am I allowed to do".
func (a *analysis) capabilityQuestion() bool {
	for i := range a.toks {
		switch a.word(i) {
		case "which":
			if a.capabilityAsk(i) {
				return true
			}
		case "things", "stuff", "commands", "actions", "tasks", "operations", "features":
			if a.isWord(i+1, "you", "u") && a.isWord(i+2, "can", "could", "do", "support", "offer", "handle") {
				return true // "list the things you can do"
			}
		case "what", "whats":
			if a.capabilityAsk(i) {
				return true // "what kind of things you do?", "show me what you can"
			}
			if a.isWord(i+1, "can", "do") && a.isWord(i+2, "you", "u", "parley", "bot") && a.isWord(i+3, "do") {
				return true
			}
			if a.isWord(i+1, "can", "should") && a.isWord(i+2, "i", "we") && a.isWord(i+3, "ask", "do", "run", "say", "type", "use") {
				return true
			}
			// "what am I allowed to do", "what are we able to run here"
			if a.isWord(i+1, "am", "are", "is") && a.isWord(i+2, "i", "we") && a.isWord(i+3, "allowed", "permitted", "able", "supposed") {
				return true
			}
			// "what do you support", "what you can do"
			if a.isWord(i+1, "do", "can") && a.isWord(i+2, "you") && a.isWord(i+3, "support", "handle", "understand", "know", "offer") ||
				a.isWord(i+1, "you", "u") && a.isWord(i+2, "can") && a.isWord(i+3, "do") {
				return true
			}
		}
	}
	return false
}

// capabilityAsk reads a question about what the bot can do at the "what"
// or "which" at i, in plain or non-native grammar: "what can you do",
// "which things you can make for me", "what kind of things you do", "show
// me what you can", "what are you able to do".
func (a *analysis) capabilityAsk(i int) bool {
	k := i + 1
	for k < len(a.toks) && !a.toks[k].sep && a.isWord(k, "kind", "kinds", "sort", "sorts", "type", "types", "of", "all", "other", "else", "exactly") {
		k++
	}
	if a.isWord(k, "things", "thing", "stuff", "commands", "command", "actions", "tasks", "operations", "features", "requests", "jobs", "options", "work") {
		k++
		// "which operations exist", "what commands are there", "what actions are available"
		if a.isWord(k, "exist", "exists", "available", "supported") || a.isWord(k, "are", "is") && a.isWord(k+1, "there", "available", "supported") {
			return true
		}
	}
	if a.isWord(k, "can", "could", "do", "are", "will", "would") {
		k++
	}
	if !a.isWord(k, "you", "u", "parley") || k+1 < len(a.toks) && a.toks[k+1].sep {
		return a.isWord(k, "you", "u", "parley") // "what can you?"
	}
	k++
	for k < len(a.toks) && !a.toks[k].sep && a.isWord(k, "can", "could", "are", "able", "to", "be", "do", "really", "actually", "also", "capable", "of") {
		k++
	}
	if k >= len(a.toks) || a.toks[k].sep {
		return a.isWord(k-1, "can", "could", "do", "of", "able", "to") // "show me what you can", "what are you capable of"
	}
	return a.isWord(k, "do", "make", "help", "offer", "handle", "support", "run", "perform", "manage", "execute", "answer", "for", "understand")
}

// wellnessQuestion: the message asks whether a named thing is well: "is
// storefront ok?", "are we good on pricing", "catalog alright?", "what's
// up with checkout", "something's up with identity".
func (a *analysis) wellnessQuestion() bool {
	if len(a.targets()) == 0 {
		return false
	}
	for i := range a.toks {
		switch a.word(i) {
		case "ok", "okay", "fine", "good", "alright", "right", "normal", "well":
			if a.wellQuestion(i) {
				return true
			}
		case "what", "whats":
			if a.isWord(i+1, "up") || a.isWord(i+1, "is") && a.isWord(i+2, "up") {
				return true
			}
		case "up":
			if a.isWord(i+1, "with") && a.isWord(i-1, "is", "something", "whats") {
				return true
			}
		}
	}
	return false
}

// wellQuestion: an ok-word asks whether a named service is well: "is
// storefront ok?", "are we good on pricing", "catalog alright?",
// "everything fine with cart?" (not "ok, restart cart" or "ok thanks").
func (a *analysis) wellQuestion(i int) bool {
	if a.toks[i].sep || i == a.firstContent() {
		return false
	}
	if a.isWord(i, "right") && !a.isWord(i-1, "all") || a.isWord(i, "well") && !a.isWord(i-1, "doing", "going", "running", "working", "is", "all") {
		return false // "right now"
	}
	if a.isWord(i, "normal") && a.isWord(i-1, "than") {
		return false
	}
	if a.isWord(i-1, "is", "are", "all", "everything", "things", "look", "looks", "looking", "seem", "seems", "still",
		"we", "it", "running", "doing", "working", "be", "stuff", "behaving") {
		return true
	}
	return a.nameAt(i - 1)
}

// generalQuestion: a how-to or what-is question about the tools rather
// than a request ("how do I write a helm chart?", "how do you configure
// prometheus alerts", "what is a deployment").
func (a *analysis) generalQuestion() bool {
	if a.code != "" || a.window != "" || len(a.kvs) > 0 {
		return false
	}
	for i := range a.toks {
		switch a.word(i) {
		case "how":
			j := i + 1
			if a.isWord(j, "do", "does", "can", "could", "should", "would", "to") {
				if !a.isWord(j, "to") {
					if !a.isWord(j+1, "i", "we", "you", "u", "one", "people", "someone") {
						continue
					}
					j++
				}
				if v := a.word(j + 1); v != "" && !generalReadVerbs[v] && !a.aboutBot(j+2) {
					return true
				}
			}
		case "what", "whats":
			j := i + 1
			if a.isWord(j, "is", "are") {
				j++
			}
			if a.isWord(j, "a", "an") || a.isWord(j, "the") && a.isWord(j+1, "difference", "point", "purpose", "meaning", "best") {
				return true
			}
			if j > i+1 && j == len(a.toks)-1 && concepts[a.word(j)] { // "what is loki"
				return true
			}
			if a.isWord(i+1, "does") && a.isWord(len(a.toks)-1, "mean", "stand") {
				return true
			}
		case "explain", "define", "definition", "difference", "tutorial", "guide":
			return true
		}
	}
	return false
}

// aboutBot reports the bot named from token i to the end of its clause:
// "how do I talk to you", "how can we use parley".
func (a *analysis) aboutBot(i int) bool {
	for j := i; j < len(a.toks) && !(j > i && a.toks[j].sep); j++ {
		if a.isWord(j, "you", "u", "parley", "bot", "this") {
			return true
		}
	}
	return false
}

// concepts are tools and ideas a "what is X" question asks to define.
var concepts = setOf(`loki prometheus promql logql grafana kubernetes k8s kubectl helm deployment deployments pod pods
	replica replicas replicaset namespace namespaces rollback rollout rollouts canary ingress sli slo slos p99 p95 p50
	latency crashloopbackoff oomkilled alertmanager silence silences`)

// generalReadVerbs after "how do I" make a request for data, not a how-to:
// "how do I see the error rate".
var generalReadVerbs = setOf(`see check get view show find look query tail grep read search list fetch pull watch monitor`)

// unknownWords counts words neither in the lexicon nor the inventory.
func (a *analysis) unknownWords() int {
	n := 0
	for i, t := range a.toks {
		if t.kind == tWord && !t.used && a.info[i] == nil {
			n++
		}
	}
	return n
}

// gibberish: mostly unknown words (another language, noise).
func (a *analysis) gibberish() bool {
	words := 0
	for _, t := range a.toks {
		if t.kind == tWord {
			words++
		}
	}
	u := a.unknownWords()
	return u >= 3 && 2*u > words || words == 0 && len(a.names) == 0
}

func (a *analysis) greeting() bool {
	for _, wi := range a.info {
		if wi.has(wGreet) {
			return true
		}
	}
	return false
}

// whQuestion: the message asks why, what, how... ("checkout needs a
// restart every hour, why?").
func (a *analysis) whQuestion() bool {
	for j := range a.toks {
		if a.isWord(j, "why", "what", "how", "when", "where", "which", "who", "whether", "if") {
			return true
		}
	}
	return false
}
