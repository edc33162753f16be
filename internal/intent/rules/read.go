package rules

import (
	"fmt"
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// read picks the best-supported read action. muts are change words that
// were not commands ("did the rollback finish?", "should I restart X?").
func (a *analysis) read(muts []mutCue) decision {
	if a.query != "" {
		return a.rawQuery()
	}
	var score [nActs]float64
	for i, wi := range a.info {
		if wi == nil || a.toks[i].used || a.logIn(i) {
			continue
		}
		if a.inSymptom(i) {
			score[aDiagnose] += float64(wi.cue[aDiagnose]) // the trouble described, not what is asked
			continue
		}
		for k, w := range wi.cue {
			score[k] += float64(w)
		}
	}
	if a.symStart >= 0 {
		score[aDiagnose] += 1.5
	}
	metric := a.metric()
	podCount := a.podCount()
	if podCount {
		// "how many checkout pods are up, any crashlooping?": pod counts
		// are status; restarts are a metric only when asked over time
		score[aStatus] += 2.5
		if metric == "restarts" && a.window == "" {
			metric = ""
		}
	}
	if metric == "" && a.isPhrase("kubectl", "top") || a.isPhrase("k", "top") {
		metric = "cpu"
	}
	if metric != "" {
		score[aProm] += 3
		if a.isPhrase("tail", "latency") {
			score[aLoki] -= 2.5
		}
	}
	a.phrases(&score)
	if metric != "" && a.logsNamed() {
		score[aLoki]++ // "memory errors in the orders logs": the logs are asked for
	}
	if a.filter != "" {
		score[aLoki]++
		if score[aLoki] >= 2 {
			score[aLoki] += 1.5
		}
	}
	if a.limit.ok {
		score[aLoki] += 1.5
	}
	if _, ok := a.kv["level"]; ok {
		score[aLoki] += 1.5 // "level:error" is a log search
	}
	if a.window != "" {
		score[aProm] += 0.3
		score[aLoki] += 0.3
		score[aDiagnose] += 0.3
	}
	hasDep, hasSvc := false, false
	for _, h := range a.targets() {
		hasDep = hasDep || h.e.kinds&kDeployment != 0
		hasSvc = hasSvc || h.e.kinds&kService != 0
	}
	if _, ok := a.kv["deployment"]; ok {
		hasDep = true
	}
	if _, ok := a.kv["service"]; ok {
		hasSvc = true
	}
	if hasDep || hasSvc {
		score[aProm] += 0.3
		score[aLoki] += 0.3
		score[aDiagnose] += 0.3
		score[aStatus] += 0.4
	}
	if hasDep || hasSvc {
		if a.rolloutProgress() && !a.evalWords() {
			score[aStatus] += 2.5 // "is frontend fully rolled out yet", "did the deploy of x finish"
		}
		if ns, _ := a.namespace(); ns != "" && metric == "" && a.deployNoun() && a.howDoing() {
			score[aStatus] += 2 // "how's the sandbox orders deployment doing"
		}
	}
	if len(muts) > 0 && (hasDep || hasSvc) {
		score[aStatus] += 1.5 // a question about a change: show the state instead
	}
	if a.evalWords() {
		score[aEvalStatus] += 2.5 + score[aStatus]
		for i, wi := range a.info {
			if wi != nil && wi.evalStatus && !a.toks[i].used {
				score[aEvalStatus]++
			}
		}
		if a.run.ok {
			score[aEvalStatus] += 2
		}
		if !hasDep {
			score[aStatus] = 0
		}
	}
	if hasDep || hasSvc || score[aProm] >= 2 || score[aLoki] >= 2 || score[aStatus] >= 2.5 || score[aDiagnose] >= 2 {
		score[aHelp] = 0
	}
	best, second := aNone, 0.0
	for k := aHelp; k < nActs; k++ {
		if k.mutating() {
			continue
		}
		if best == aNone || score[k] > score[best] {
			if best != aNone {
				second = max(second, score[best])
			}
			best = k
		} else {
			second = max(second, score[k])
		}
	}
	top := score[best]
	if !hasDep && !hasSvc && score[aHelp] < 3 && !a.evalWords() && a.generalQuestion() {
		return decision{act: aNone, conf: 0.6, notes: append(a.notes, "a general question, not a request")}
	}
	if a.gibberish() {
		return decision{act: aNone, conf: 0.7, notes: append(a.notes, "not understood")}
	}
	if top < 1 {
		if (hasDep || hasSvc) && a.unknownWords() == 0 {
			best, top, second = aStatus, 1, 0
		} else {
			note := "no action fits"
			if a.greeting() {
				note = "a greeting: say help to see what I can do"
			}
			return decision{act: aNone, conf: 0.6, notes: append(a.notes, note)}
		}
	}
	d := decision{act: best, params: action.Params{}, notes: a.notes, top: top}
	d.conf = 0.45 + 0.1*min(top-second, 4) + 0.05*min(top, 3) - 0.05*float64(min(a.typos, 3))
	a.fill(&d, metric)
	return d
}

// rawQuery routes a literal PromQL or LogQL expression.
func (a *analysis) rawQuery() decision {
	act := aProm
	if a.logQL {
		act = aLoki
	}
	d := decision{act: act, params: action.Params{"query": a.query}, conf: 0.9, notes: a.notes}
	if a.window != "" {
		d.params["window"] = a.window
	}
	if act == aLoki && a.limit.ok {
		d.params["limit"] = a.limit.n
	}
	d.notes = append(d.notes, "raw "+map[bool]string{true: "LogQL", false: "PromQL"}[a.logQL])
	return d
}

// fill sets the parameters of a read action.
func (a *analysis) fill(d *decision, metric string) {
	p := d.params
	switch d.act {
	case aProm, aLoki, aDiagnose:
		if svc, exact := a.service(); svc != "" {
			p["service"] = svc
			if !exact {
				d.conf = min(d.conf, 0.5)
				d.notes = append(d.notes, fmt.Sprintf("service %q is not in the inventory", svc))
			}
		}
		if a.window != "" {
			p["window"] = a.window
		}
	}
	switch d.act {
	case aProm:
		if metric != "" {
			p["metric"] = metric
		}
	case aLoki:
		if lv := a.level(); lv != "" {
			p["level"] = lv
		}
		if a.filter != "" {
			p["filter"] = a.filter
		}
		if a.limit.ok {
			p["limit"] = a.limit.n
		}
	case aStatus:
		if dep, exact, ok := a.deployment(-1); ok {
			p["deployment"] = dep
			if !exact {
				d.conf = min(d.conf, 0.5)
			}
		} else if len(a.targets()) > 1 {
			p["deployment"] = a.targets()[0].e.canon
			d.conf = min(d.conf, 0.5)
		}
		if ns, _ := a.namespace(); ns != "" {
			p["namespace"] = ns
		}
	case aEvalStatus:
		if a.run.ok {
			p["run"] = a.run.n
		}
		if s := a.suite(); s != "" {
			p["suite"] = s
		}
	}
}

// service is the service a read is about: the first deployment or
// service named, or an unknown word in a name slot ("logs for foo").
func (a *analysis) service() (string, bool) {
	for _, slot := range []string{"service", "deployment"} {
		if v, ok := a.kv[slot]; ok {
			if e, hit := a.ix.lookup(v); hit {
				return e.canon, true
			}
			return v, false
		}
	}
	if t := a.targets(); len(t) > 0 {
		return t[0].e.canon, true
	}
	for j := 1; j < len(a.toks); j++ {
		if a.isWord(j-1, "of", "for", "with") && a.unknownName(j) && !a.isWord(j+1, "of", "for") {
			return a.toks[j].s, false
		}
	}
	return "", false
}

// metric names the Prometheus metric asked for ("" when none).
func (a *analysis) metric() string {
	if v, ok := a.kv["metric"]; ok {
		// "metric:error_rate", "--metric=p99": an enum value or a word for one
		v = strings.ReplaceAll(v, "-", "_")
		for _, m := range []string{"error_rate", "latency_p99", "latency_p95", "latency_p50", "request_rate", "cpu", "memory", "restarts"} {
			if v == m {
				return m
			}
		}
		if wi := a.r.lex[v]; wi != nil && wi.metric != "" {
			if wi.metric == "latency" {
				return "latency_p99"
			}
			return wi.metric
		}
		switch v {
		case "errors", "error", "errorrate", "5xx_rate":
			return "error_rate"
		case "requests", "requestrate", "req_rate":
			return "request_rate"
		case "restart", "restart_count":
			return "restarts"
		}
	}
	latency := false
	for i, wi := range a.info {
		if a.toks[i].used {
			continue
		}
		w := a.word(i)
		switch {
		case w == "error" || w == "errors" || w == "failure" || w == "failures" || w == "fail" || w == "failed" || w == "5xx" || w == "err":
			if a.isWord(i+1, "rate", "ratio", "percentage", "percent", "%", "rates") ||
				a.isWord(i+1, "per") && a.isWord(i+2, "second", "sec", "minute") {
				return "error_rate"
			}
		case w == "request" || w == "requests" || w == "req" || w == "reqs":
			if a.isWord(i+1, "rate", "rates", "volume", "per", "count") || a.isWord(i-1, "many") {
				return "request_rate"
			}
		case (w == "many" || w == "percentage" || w == "percent" || w == "%" || w == "fraction" || w == "share") && a.isWord(i+1, "errors", "failures", "failed", "5xx", "500s", "errored", "failing", "of"):
			if w == "many" || a.isWord(i+1, "errors", "failures", "failed", "5xx", "500s", "errored", "failing") || a.isWord(i+2, "errors", "failures", "failed", "5xx", "500s", "errored", "failing") {
				return "error_rate"
			}
		case (w == "failed" || w == "failing" || w == "errored") && a.isWord(i+1, "requests", "calls", "responses") && !a.isWord(i-1, "are", "is", "why"):
			return "error_rate"
		case w == "success" && a.isWord(i+1, "rate"):
			return "error_rate"
		case w == "response" && a.isWord(i+1, "time", "times"):
			latency = true
		case w == "tail" && a.isWord(i+1, "latency", "latencies"):
			return "latency_p99"
		case w == "times" && a.isWord(i-1, "many"):
			for j := i + 1; j < len(a.toks) && j <= i+5; j++ {
				if a.isWord(j, "restart", "restarted", "crash", "crashed", "restarting") {
					return "restarts"
				}
			}
		case w == "restart" && a.isWord(i+1, "count", "counts"):
			return "restarts"
		case w == "crash" && a.isWord(i+1, "loop", "looping", "loops"):
			return "restarts"
		case w == "usage" && a.isWord(i-1, "memory", "mem"):
			return "memory"
		}
		if wi == nil || wi.metric == "" {
			continue
		}
		if wi.metric == "latency" {
			latency = true
			continue
		}
		return wi.metric
	}
	if latency {
		return "latency_p99"
	}
	return ""
}

// level is the log level asked for.
func (a *analysis) level() string {
	if v, ok := a.kv["level"]; ok {
		for _, l := range []string{"error", "warn", "info", "debug"} {
			if v == l || v == l+"s" || (l == "warn" && v == "warning") {
				return l
			}
		}
	}
	for i, wi := range a.info {
		if wi == nil || wi.level == "" || a.toks[i].used {
			continue
		}
		w := a.word(i)
		if w == "errors" || w == "warnings" || w == "warning" || w == "warn" || w == "warns" || strings.HasSuffix(w, "-level") || a.lineNoun(i+1) || a.lineNoun(i-1) || a.isWord(i-1, "level") || a.isWord(i+1, "level") || a.lineNoun(i+2) && a.isWord(i+1, "level") {
			if a.isWord(i+1, "rate") {
				continue
			}
			return wi.level
		}
	}
	return ""
}

// phrases adds evidence carried by word pairs.
func (a *analysis) phrases(score *[nActs]float64) {
	for i := range a.toks {
		switch a.word(i) {
		case "how":
			if a.isWord(i+1, "do", "can") && a.isWord(i+2, "i", "we") && a.isWord(i+3, "use") {
				score[aHelp] += 3
			} else if a.isWord(i+1, "do", "can", "should") && a.isWord(i+2, "i", "we") && a.aboutBot(i+4) {
				score[aHelp] += 3 // "how do I talk to you"
			}
			if a.isWord(i+1, "slow") {
				score[aDiagnose] += 1
			}
		case "which":
			if a.capabilityAsk(i) {
				score[aHelp] += 4
			}
		case "things", "stuff", "commands", "actions", "tasks", "operations", "features":
			if a.isWord(i+1, "you", "u") && a.isWord(i+2, "can", "could", "do", "support", "offer", "handle") {
				score[aHelp] += 4 // "list the things you can do"
			}
		case "what", "whats":
			if a.capabilityAsk(i) {
				score[aHelp] += 4 // "what kind of things you do?", "show me what you can"
			}
			if a.isWord(i+1, "can", "do") && a.isWord(i+2, "you", "u", "parley", "bot") && a.isWord(i+3, "do") {
				score[aHelp] += 4
			}
			if a.isWord(i+1, "can", "should") && a.isWord(i+2, "i", "we") && a.isWord(i+3, "ask", "do", "run", "say", "type", "use") {
				score[aHelp] += 4
			}
			if (a.isWord(i+1, "up") || a.isWord(i+1, "is") && a.isWord(i+2, "up")) && len(a.targets()) > 0 {
				score[aDiagnose] += 2.5
			}
			if a.isWord(i+1, "is", "are") && a.isWord(i+2, "you") {
				score[aHelp] += 2
			}
			// "what am I allowed to do", "what are we able to run here"
			if a.isWord(i+1, "am", "are", "is") && a.isWord(i+2, "i", "we") && a.isWord(i+3, "allowed", "permitted", "able", "supposed") {
				score[aHelp] += 4
			}
			// "what do you support", "what you can do"
			if a.isWord(i+1, "do", "can") && a.isWord(i+2, "you") && a.isWord(i+3, "support", "handle", "understand", "know", "offer") ||
				a.isWord(i+1, "you", "u") && a.isWord(i+2, "can") && a.isWord(i+3, "do") {
				score[aHelp] += 4
			}
			if a.isWord(i+1, "can", "may") && a.isWord(i+2, "i", "we") && a.isWord(i+3, "do") {
				score[aHelp] += 1
			}

			if a.isWord(i+1, "happened", "happening") || a.isWord(i+1, "is") && a.isWord(i+2, "happening") {
				score[aDiagnose] += 1.5
			}
		case "ok", "okay", "fine", "good", "alright", "right", "normal", "well":
			if a.wellQuestion(i) {
				score[aDiagnose] += 2.5 // "is storefront ok?", "are we good on pricing?"
			}
		case "kubectl", "k":
			if a.isWord(i+1, "get", "describe") || a.isWord(i+1, "rollout") && a.isWord(i+2, "status", "history") {
				score[aStatus] += 3
			}
			if a.isWord(i+1, "logs", "log") {
				score[aLoki] += 2
			}
			if a.isWord(i+1, "top") {
				score[aProm] += 3
			}
		case "going":
			if a.isWord(i+1, "on") {
				score[aDiagnose] += 3.5 // the question outweighs a metric quoted as context
			}
		case "look", "dig", "looking", "digging":
			if a.isWord(i+1, "into", "at") {
				score[aDiagnose] += 2.5
			}
		case "root":
			if a.isWord(i+1, "cause") {
				score[aDiagnose] += 3
			}
		case "up":
			if a.isWord(i+1, "with") && a.isWord(i-1, "is", "something", "whats") && len(a.targets()) > 0 {
				score[aDiagnose] += 2.5 // "something's up with identity"
			}
		case "acting":
			if a.isWord(i+1, "up", "weird", "strange") {
				score[aDiagnose] += 2.5
			}
		case "timing", "timed":
			if a.isWord(i+1, "out") {
				score[aDiagnose] += 2
			}
		case "who":
			if a.isWord(i+1, "are") && a.isWord(i+2, "you") {
				score[aHelp] += 3
			}
		}
	}
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

// wellQuestion: an ok-word asks whether a named service is well: "is
// storefront ok?", "are we good on pricing", "catalog alright?",
// "everything fine with cart?" (not "ok, restart cart" or "ok thanks").
func (a *analysis) wellQuestion(i int) bool {
	if len(a.targets()) == 0 || a.toks[i].sep || i == a.firstContent() {
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

// rolloutProgress: a question whether a rollout has finished: "rolled
// out", "done deploying", "did the deploy complete", "rollout finished".
func (a *analysis) rolloutProgress() bool {
	deploy, done := false, false
	for i := range a.toks {
		if a.toks[i].used {
			continue
		}
		switch a.word(i) {
		case "rolled", "rolling":
			if a.isWord(i+1, "out") {
				return true
			}
		case "deploy", "deploys", "deployment", "deploying", "deployed", "rollout", "release", "rollouts", "redeploy":
			deploy = true
		case "done", "finished", "finish", "complete", "completed", "through", "over", "landed", "succeeded", "succeed",
			"yet", "progress", "stuck", "progressing", "live", "successful", "fail", "failed", "go", "went":
			done = true
		}
	}
	return deploy && done
}

// howDoing: a "how is it doing" question, with no word of trouble
// (why, slow, wrong) that asks for a diagnosis.
func (a *analysis) howDoing() bool {
	how := false
	for i, wi := range a.info {
		if a.isWord(i, "how", "hows") {
			how = true
		}
		if wi != nil && wi.cue[aDiagnose] >= 2.5 && !a.toks[i].used {
			return false
		}
	}
	return how
}

// deployNoun reports a word for the deployment object: deployment,
// deploy, pods, replicas.
func (a *analysis) deployNoun() bool {
	for i := range a.toks {
		if !a.toks[i].used && a.isWord(i, "deployment", "deploy", "deployments", "pods", "pod", "replicas", "replica") {
			return true
		}
	}
	return false
}

// logsNamed reports the word logs (log, loki) in the message.
func (a *analysis) logsNamed() bool {
	for i, wi := range a.info {
		if wi != nil && wi.cue[aLoki] >= 3 && !a.toks[i].used && !a.logIn(i) {
			return true
		}
	}
	return false
}

// logIn: "log in", "logged into": signing in, not logs.
func (a *analysis) logIn(i int) bool {
	if !a.isWord(i, "log", "logged", "logging", "login", "logins") {
		return false
	}
	if a.isWord(i, "login", "logins") || a.isWord(i+1, "into") {
		return true
	}
	// "users can't log in", "log in to the app" (not "what did cart log in the last hour")
	return a.isWord(i+1, "in", "on") && (i+2 >= len(a.toks) || a.toks[i+2].sep || a.isWord(i+2, "to", "with", "again", "anymore", "via", "using", "at"))
}

// podCount: a question about how many pods run ("how many checkout pods
// are up", "pods ready in prod?").
func (a *analysis) podCount() bool {
	for i := range a.toks {
		if a.isWord(i, "many") && a.isWord(i-1, "how") {
			for j := i + 1; j < len(a.toks) && j <= i+3; j++ {
				if a.replicaNoun(j) {
					return true
				}
				if a.isWord(j, "times") {
					return false
				}
			}
		}
		if a.replicaNoun(i) && (a.isWord(i+1, "up", "ready", "available", "alive") ||
			a.isWord(i+1, "are", "is") && a.isWord(i+2, "up", "running", "ready", "available", "alive")) {
			return true
		}
	}
	return false
}

// generalQuestion: a how-to or what-is question about the tools rather
// than a request ("how do I write a helm chart?", "how do you configure
// prometheus alerts", "what is a deployment").
func (a *analysis) generalQuestion() bool {
	if a.query != "" || a.window != "" || len(a.kv) > 0 {
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
	latency crashloopbackoff oomkilled`)

// generalReadVerbs after "how do I" make a request for data, not a how-to:
// "how do I see the error rate".
var generalReadVerbs = setOf(`see check get view show find look query tail grep read search list fetch pull watch monitor`)

func (a *analysis) isPhrase(w1, w2 string) bool {
	for i := range a.toks {
		if a.isWord(i, w1) && a.isWord(i+1, w2) {
			return true
		}
	}
	return false
}

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
		if wi != nil && wi.greet {
			return true
		}
	}
	return false
}
