package rules

import (
	"strconv"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// act is a candidate action while routing.
type act uint8

const (
	aNone act = iota
	aHelp
	aProm
	aLoki
	aStatus
	aScale
	aRollback
	aRestart
	aEvalRun
	aEvalStatus
	aDiagnose
	nActs
)

var actNames = [nActs]string{
	action.None, action.Help, action.PrometheusQuery, action.LokiQuery, action.KubernetesStatus,
	action.KubernetesScale, action.KubernetesRollback, action.KubernetesRestart, action.EvaluationRun,
	action.EvaluationStatus, action.IncidentDiagnose,
}

func (a act) mutating() bool {
	return a == aScale || a == aRollback || a == aRestart || a == aEvalRun
}

// wordInfo is what the lexicon knows about one word.
type wordInfo struct {
	cue         [nActs]float32 // evidence for read actions
	mut         act            // an imperative verb of a mutating action
	weakScale   bool           // set, bump, increase: scale only with replica context
	rel         bool           // add, remove, double: a relative change
	evalCtx     bool           // eval, evaluation, benchmark
	evalRun     bool           // run, start, launch
	evalRunWeak bool           // test, compare
	evalStatus  bool           // results, score, progress
	danger      bool           // delete, drop, exec ...
	neg         bool           // not, never, no
	greet       bool           // hi, thanks
	replicaNoun bool           // replicas, pods, instances
	desire      bool           // need, want, run, give: scale with a replica count
	lineNoun    bool           // lines, entries, logs
	metric      string
	level       string
	unit        time.Duration
	filterVerb  bool // grep, containing, matching
}

// lexiconSpec is the vocabulary, one group a line: "words: tags". Tags are
// act=weight (help prom loki status diag evalstatus), mut=scale|restart|
// rollback, metric=, level=, unit=, and flags. Words not listed here are
// unknown: candidates for names and typo correction.
const lexiconSpec = `
help halp: help=3
commands command usage capabilities capability abilities: help=2.5
features actions manual menu: help=1
options choices: help=2.5
sale sales stale cycles cycled cycling: 
hi hello hey hiya yo howdy sup thanks thank thx ty cheers morning afternoon evening bye goodbye ok okay cool great nice awesome lol yes yeah yep sure welcome gm hallo: greet
metrics metric graph graphs chart charts plot prom stats statistics numbers: prom=2
prometheus promql: prom=3
dashboard dashboards grafana: prom=1.5
p99 p99.9 99th 99p tail-latency latency_p99: metric=latency_p99
p95 95th 95p latency_p95: metric=latency_p95
p50 50th 50p median latency_p50: metric=latency_p50
latency latencies response-time: metric=latency
error_rate error-rate errorrate 5xx 5xxs 500s 5xx's err-rate: metric=error_rate
rps qps tps throughput traffic request_rate request-rate: metric=request_rate
cpu cpus processor: metric=cpu
memory mem ram rss heap: metric=memory
restarts crashloop crashlooping crashloopbackoff crashloops crash-looping oomkills: metric=restarts
logs log logging logged loki logql logz lgos: loki=3
grep: loki=3 filterverb
tail tailing: loki=2.5
lines line entries messages output: loki=1 linenoun
events event: status=2
stacktrace stacktraces stack-trace exceptions exception traceback tracebacks panics: loki=2
warnings warning warn warns: loki=1.5 level=warn
errors: loki=1.2 diag=0.5 level=error
error: level=error
info: level=info status=0.5
debug: level=debug diag=2
info-level: level=info loki=1
debug-level: level=debug loki=1
error-level: level=error loki=1
warn-level warning-level: level=warn loki=1
containing contains matching match mentioning mention including: filterverb
status: status=3
state health: status=2.5
healthy: status=2.5
unhealthy: status=1.5 diag=1.5
describe: status=3
rollout: status=1.5
version versions image images tag: status=2
replicas replica pods pod instances instance copies containers: status=1.5 replicanoun
running ready available deployed alive: status=1.5
up: status=0.5
doing: diag=2
looking: status=0
details detail overview: status=1.5
get show check display see list fetch pull chk: status=0.5
revision: status=1
down: status=1 diag=2
deploying: status=0.5
scaled scaling restarted restarting rolled reverted bounced recycled rollbacks rollouts deploys deployed: status=0.5
why: diag=3.5
wrong: diag=3
investigate investigation diagnose diagnosis diag troubleshoot rca analyze analyse: diag=3.5
slow slowness sluggish laggy lagging slower: diag=2.5
broken broke failing fails erroring crashing flaky flapping unstable degraded struggling weird strange throwing fire burning firing alert alerting alerts paging: diag=2
triage: diag=3.5
complaining complain complains complained complaints funky wonky odd funny glitchy glitching: diag=2
look: diag=1
off: diag=1
issue issues problem problems incident outage outages happening happened: diag=2
spiking spike spikes: diag=1.5
scale rescale resize upscale downscale: mut=scale
restart re-start bounce recycle reboot respawn redeploy kick cycle: mut=restart
rollback roll-back revert undo downgrade restore rb: mut=rollback
need needs want wants get run give take have keep: desire
set bump increase decrease reduce raise lower grow shrink change adjust update make bring put spin: weakscale
add remove double halve triple: weakscale rel
more fewer less extra additional another: rel
eval evals evaluation evaluations benchmark benchmarks suite suites: evalctx
evaluate: evalctx evalrun
run start launch trigger execute rerun re-run begin kickoff queue benchmark: evalrun
test compare: evalrunweak
results result score scores report progress finished done complete completed outcome accuracy went: evalstatus
kubeconfig kubeconfigs reveal delete del deleting drop destroy wipe truncate purge terminate kill shutdown drain cordon uncordon exec ssh edit patch apply create erase nuke reset rm rmdir sudo chmod chown grant revoke admin disable deactivate uninstall evict taint annotate port-forward attach install upgrade stop pause suspend expose migrate rotate flush su shell bash curl wget password passwords secret secrets credentials creds privileges permissions privilege superuser sql exfiltrate bypass override hack format overwrite open merge commit push translate email buy mute silence snooze unmute: danger
not never no without cancel abort avoid refrain: neg
s sec secs second seconds: unit=1s
m min mins minute minutes: unit=1m
h hr hrs hour hours: unit=1h
d day days: unit=24h
w wk wks week weeks: unit=168h
month months: unit=720h
deployment deploy deployments: status=1
the a an of for in on at to from with by me my our us i we you your it its this that these those please pls plz kindly just quickly now asap right real quick some any all is are was were be been being do does did have has had what which who whom whose how when where there here so and or but then also too out about into over under since ago last past previous recent latest current currently service services svc app apps application namespace namespaces ns cluster env environment let lets need needs want wants like tell give gimme lemme find look using via per vs versus against compared than as if should shall must may might go going gonna wanna can could would will am got u ur parley bot guys team folks someone anyone again one new old same other back times time many much long often every each both between after before during while until till high low value values number count total percent percentage rate ratio request requests response responses req failure fail failed success successful usage used memory-usage nodes node level variant variants baseline prod production staging stage dev today yesterday tonight night week month half quarter whole entire being its it's im id youre thats whats hows wheres lines again also actually currently anything something everything nothing thing things ones ago kubectl k8s kube kubernetes deploy/ rolling cause root happen happens sec safe idea good fine ok okay worth whether recommend hold off on onto across around near top first bottom least most few several sure done yet still really very quite pretty super bit little lot lots way exactly only even already soon later then than though although because since stuff data info information summary summarize summarise give us them they he she his her him their theirs ours mine yours hers what's who's there's let's isn't aren't can't won't don't doesn't didn't shouldn't wouldn't couldn't haven't hasn't wasn't weren't access allowed permission work works working worked doing done make makes made take takes taken happen alright people person says say said saying asking asked customers customer users user execs exec-team support per_second persecond/ second's minute's hour's day's
`

// buildLexicon parses lexiconSpec.
func buildLexicon() map[string]*wordInfo {
	lex := make(map[string]*wordInfo, 1024)
	for _, line := range strings.Split(lexiconSpec, "\n") {
		words, tags, ok := strings.Cut(line, ":")
		if !ok {
			words, tags = line, ""
		}
		for _, w := range strings.Fields(words) {
			wi := lex[w]
			if wi == nil {
				wi = &wordInfo{}
				lex[w] = wi
			}
			for _, tag := range strings.Fields(tags) {
				applyTag(wi, tag)
			}
		}
	}
	return lex
}

func applyTag(wi *wordInfo, tag string) {
	k, v, _ := strings.Cut(tag, "=")
	weight := func() float32 {
		f, _ := strconv.ParseFloat(v, 32)
		return float32(f)
	}
	switch k {
	case "help":
		wi.cue[aHelp] = weight()
	case "prom":
		wi.cue[aProm] = weight()
	case "loki":
		wi.cue[aLoki] = weight()
	case "status":
		wi.cue[aStatus] = weight()
	case "diag":
		wi.cue[aDiagnose] = weight()
	case "mut":
		switch v {
		case "scale":
			wi.mut = aScale
		case "restart":
			wi.mut = aRestart
		case "rollback":
			wi.mut = aRollback
		}
	case "metric":
		wi.metric = v
	case "level":
		wi.level = v
	case "unit":
		d, _ := time.ParseDuration(v)
		wi.unit = d
	case "weakscale":
		wi.weakScale = true
	case "rel":
		wi.rel = true
	case "evalctx":
		wi.evalCtx = true
	case "evalrun":
		wi.evalRun = true
	case "evalrunweak":
		wi.evalRunWeak = true
	case "evalstatus":
		wi.evalStatus = true
	case "danger":
		wi.danger = true
	case "neg":
		wi.neg = true
	case "greet":
		wi.greet = true
	case "desire":
		wi.desire = true
	case "replicanoun":
		wi.replicaNoun = true
	case "linenoun":
		wi.lineNoun = true
	case "filterverb":
		wi.filterVerb = true
	}
}
