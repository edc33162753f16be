package rules

import (
	"strings"
	"time"
)

// The router's own lexicon: how requests are phrased, what a command looks
// like, what is never done. It knows no action: what each action is called
// and asked with comes from the specs (see catalog.go).

// wordClass are the grammar and safety roles of a word.
type wordClass uint32

const (
	wGreet    wordClass = 1 << iota // hi, thanks
	wNeg                            // not, never, no
	wDanger                         // delete, drop, exec: never done (unless an action declares the verb and the request fits it)
	wRel                            // more, fewer, add, double: a relative change of a count
	wDesire                         // need, want, give: "we need 5 pods"
	wSet                            // set, bump, increase: sets a number ("set x to 5", "bump x to 6 pods")
	wReturn                         // return, put, take: moves a thing back ("return x to rev 3", "put x back to the prior release")
	wOpen                           // run, start, test: a verb of many things, an action's only with its context
	wWeakOpen                       // test, compare: an open verb that counts only as a command
	wRead                           // show, get, check: a read request
	wKnown                          // a word of the language: never a name, never typo-corrected
)

// generic word lists, one class a line: "words: classes".
const grammar = `
hi hello hey hiya yo howdy sup thanks thank thx ty cheers morning afternoon evening bye goodbye ok okay cool great nice awesome lol yes yeah yep sure welcome gm hallo: greet
not never no without cancel abort avoid refrain: neg
kubeconfig kubeconfigs reveal delete del deleting drop destroy wipe truncate purge terminate kill shutdown drain cordon uncordon exec ssh edit patch apply create erase nuke reset rm rmdir sudo chmod chown grant revoke admin disable deactivate uninstall evict taint annotate port-forward attach install upgrade stop pause suspend expose migrate rotate flush su shell bash curl wget password passwords secret secrets credentials creds privileges permissions privilege superuser sql exfiltrate bypass override hack format overwrite open merge commit push translate email buy: danger
more fewer less extra additional another: rel
add remove double halve triple: rel set
need needs want wants give keep have: desire
get run take: desire
set bump increase decrease reduce raise lower grow shrink change adjust update make bring put spin: set
return move set put switch change bring take get send downgrade reset restore go: return
run start launch trigger execute rerun re-run begin kickoff queue kick: open
test compare: open weakopen
show get check display list tail grep describe fetch pull investigate diagnose: read
sale sales stale cycles cycled cycling the a an of for in on at to from with by me my our us i we you your it its this that these those please pls plz kindly just quickly now asap right real quick some any all is are was were be been being do does did have has had what which who whom whose how when where there here so and or but then also too out about into over under since ago last past previous recent latest current currently service services svc app apps application namespace namespaces ns cluster env environment let lets need needs want wants like tell give gimme lemme find look using via per vs versus against compared than as if should shall must may might go going gonna wanna can could would will am got u ur parley bot guys team folks someone anyone again one new old same other back times time many much long often every each both between after before during while until till high low value values number count total percent percentage rate ratio request requests response responses req failure fail failed success successful usage used memory-usage nodes node level variant variants baseline prod production staging stage dev today yesterday tonight night week month half quarter whole entire being its it's im id youre thats whats hows wheres lines again also actually currently anything something everything nothing thing things ones ago kubectl k8s kube kubernetes deploy/ rolling cause root happen happens sec safe idea good fine ok okay worth whether recommend hold off on onto across around near top first bottom least most few several sure done yet still really very quite pretty super bit little lot lots way exactly only even already soon later then than though although because since stuff data info information summary summarize summarise give us them they he she his her him their theirs ours mine yours hers what's who's there's let's isn't aren't can't won't don't doesn't didn't shouldn't wouldn't couldn't haven't hasn't wasn't weren't access allowed permission work works working worked doing done make makes made take takes taken happen alright people person says say said saying asking asked customers customer users user execs exec-team support per_second persecond/ second's minute's hour's day's: known
`

// units are the words of durations.
var units = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 168 * time.Hour, "wk": 168 * time.Hour, "wks": 168 * time.Hour, "week": 168 * time.Hour, "weeks": 168 * time.Hour,
	"month": 720 * time.Hour, "months": 720 * time.Hour,
}

// grammarWords parses the grammar lists.
func grammarWords() map[string]wordClass {
	out := map[string]wordClass{}
	names := map[string]wordClass{"greet": wGreet, "neg": wNeg, "danger": wDanger, "rel": wRel, "desire": wDesire,
		"set": wSet, "return": wReturn, "open": wOpen, "weakopen": wWeakOpen, "read": wRead, "known": wKnown}
	for _, line := range strings.Split(grammar, "\n") {
		words, classes, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var c wordClass
		for _, name := range strings.Fields(classes) {
			c |= names[name]
		}
		for _, w := range strings.Fields(words) {
			out[w] |= c
		}
	}
	for u := range units {
		out[u] |= wKnown
	}
	return out
}

// verbGroups are verbs that ask for the same kind of operation. An action
// whose vocabulary is derived from its examples is asked for by every verb
// of a group one of its verbs is in, in its context ("kick off a build of
// mobile" for an action whose examples say "trigger a build"); a word for
// true or false of its booleans brings its group too ("activate" as
// "enable").
var verbGroups = [][]string{
	{"trigger", "start", "run", "launch", "begin", "execute", "kick off", "kickoff", "fire off"},
	{"purge", "flush", "clear", "invalidate"},
	{"drain", "empty"},
	{"renew", "refresh", "reissue", "rotate"},
	{"enable", "activate", "turn on", "switch on"},
	{"disable", "deactivate", "turn off", "switch off"},
	{"toggle", "flip", "switch"},
	{"restart", "bounce", "reboot", "recycle"},
	{"backup", "back up", "snapshot"},
	{"stop", "halt", "pause", "suspend"},
	{"resume", "unpause", "continue"},
	{"silence", "mute", "snooze"},
	{"scale", "resize"},
	{"create", "open", "file", "raise"},
	{"delete", "remove", "drop", "destroy"},
	{"send", "fire"},
	{"page", "notify"},
}

// synonymsOf are the other verbs of w's groups.
func synonymsOf(w string) []string {
	var out []string
	for _, g := range verbGroups {
		for _, v := range g {
			if v != w {
				continue
			}
			for _, o := range g {
				if o != w {
					out = append(out, o)
				}
			}
		}
	}
	return out
}

// preverb lists words that may stand before an imperative verb in its
// clause: "please", "can you", "I need you to", "kubectl rollout".
var preverb = setOf(`please pls plz kindly can could would will you u just now go and then also lets let us we i
	want wanna need like to hey hi hello yo ok okay so quickly asap immediately parley bot eval evals evaluation
	kubectl k8s kube k do a an perform trigger issue initiate rollout rolling yes yeah yep sure alright someone
	somebody anyone folks team guys d gonna going quick real right force`)

// dangerFlags are kubectl flags that skip Kubernetes' own safety.
var dangerFlags = setOf(`force grace-period cascade all all-namespaces a overwrite now prune`)

// nounFollowers make a change verb a noun: "restart count", "rollback plan".
var nounFollowers = setOf(`count counts history status loop loops plan plans strategy procedure policy script
	playbook runbook button docs command commands permission permissions log logs`)

// targetFiller are words between a verb and its object: "restart the pods of X".
var targetFiller = setOf(`the deployment deploy deployments service svc app pods pod of for on all my our this that it
	please now a an replicas replica instances`)

// changeVerbs change things: when no action of the catalog declares one as
// its verb, asking for it is an unsupported change ("deploy my branch to
// prod", "silence the billing alerts" without a silence action).
var changeVerbs = setOf(`deploy ship promote release install rename move copy enable configure roll silence mute snooze
	unmute acknowledge ack`)

// keepVerbs are verbs of change that a negation turns into "leave it
// alone": "don't touch checkout", "please don't mess with prod".
var keepVerbs = setOf(`touch mess modify alter fiddle tinker interfere change`)

// politeFiller are the words of polite wrappers around a command: "be so
// kind as to", "be kind enough to", "would it be possible to", "do me a
// favour and", "I'd appreciate it if you could".
var politeFiller = setOf(`be so kind enough as it possible favor favour favour me appreciate grateful glad happy
	mind maybe perhaps possibly pretty dear sir madam mate friend buddy if kind`)

// askingWords ask about a thing rather than for a change: "how did the
// eval go", "status of the last run".
var askingWords = setOf(`status results result how did progress report went go done finished pass passed failed
	complete completed last latest previous`)

// pronoun are words that are never a value.
var pronoun = setOf(`me us it them him her you this that these those i we`)

func setOf(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}
