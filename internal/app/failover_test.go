package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/parley-chatops/parley/internal/audit"
	"github.com/parley-chatops/parley/internal/chat"
	"github.com/parley-chatops/parley/internal/config"
	"github.com/parley-chatops/parley/internal/confirm"
	"github.com/parley-chatops/parley/internal/leader"
	"github.com/parley-chatops/parley/internal/telemetry"
	"github.com/parley-chatops/parley/internal/testenv/kubetest"
	"github.com/parley-chatops/parley/internal/testenv/pgtest"
	"github.com/parley-chatops/parley/policies"
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m)
	if err := kubetest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stop shared cluster:", err)
	}
	os.Exit(code)
}

// failoverWait bounds each wait in the failover tests: far above the few
// seconds a takeover takes, so only a broken failover reaches it.
const failoverWait = 30 * time.Second

// platform models a chat platform with a socket connection (Slack Socket
// Mode, the Discord gateway): it delivers each message to the connection
// open at the time, which acknowledges it once handled, and delivers again
// what a connection that went away never acknowledged. Replies are
// accepted from any replica (they go over the platform's HTTP API).
type platform struct {
	mu       sync.Mutex
	queue    []chat.Message // waiting for a connection, redeliveries first
	conn     *platformConn  // the open connection
	overlap  bool           // two connections were open at once
	acked    map[string]bool
	handled  []chat.Message // every delivery that a replica handled (possibly unacknowledged)
	replies  []chat.Reply
	wake     chan struct{} // closed when the queue or connection changes
	received int
}

func newPlatform() *platform {
	return &platform{acked: map[string]bool{}, wake: make(chan struct{})}
}

// changed wakes waiting connections; call with mu held.
func (p *platform) changed() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// post is a user sending a message.
func (p *platform) post(m chat.Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.received++
	p.queue = append(p.queue, m)
	p.changed()
}

func (p *platform) isAcked(eventID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked[eventID]
}

func (p *platform) replyTexts() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, r := range p.replies {
		if r.Kind != chat.KindAudit {
			b.WriteString(r.Text + "\n")
		}
	}
	return b.String()
}

// platformConn is one replica's chat adapter: a connection to platform
// while the replica leads.
type platformConn struct {
	p       *platform
	replica string
	// crash, when it returns true for a delivered message, stops the
	// replica as a crash would at that point: before handling the message
	// (before=true) or after handling it but before acknowledging it.
	crash func(m chat.Message, before bool) bool
}

// Name is Slack's: the shared de-duplication trusts the event ids of
// platforms that keep them unique (the console numbers lines per session).
func (c *platformConn) Name() string { return chat.Slack }

func (c *platformConn) Send(_ context.Context, r chat.Reply) (string, error) {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	c.p.replies = append(c.p.replies, r)
	return fmt.Sprintf("%s-%d", c.replica, len(c.p.replies)), nil
}

// Run holds the connection until ctx ends or the replica crashes.
func (c *platformConn) Run(ctx context.Context, h chat.Handler) error {
	p := c.p
	p.mu.Lock()
	if p.conn != nil {
		p.overlap = true
	}
	p.conn = c
	p.mu.Unlock()
	var inflight *chat.Message
	defer func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if inflight != nil { // never acknowledged: the platform delivers it again
			p.queue = append([]chat.Message{*inflight}, p.queue...)
		}
		if p.conn == c {
			p.conn = nil
		}
		p.changed()
	}()
	for {
		p.mu.Lock()
		for len(p.queue) == 0 {
			wake := p.wake
			p.mu.Unlock()
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			}
			p.mu.Lock()
		}
		m := p.queue[0]
		p.queue = p.queue[1:]
		inflight = &m
		p.mu.Unlock()

		if c.crash != nil && c.crash(m, true) {
			return nil
		}
		h.Handle(ctx, m)
		p.mu.Lock()
		p.handled = append(p.handled, m)
		p.mu.Unlock()
		if c.crash != nil && c.crash(m, false) {
			return nil
		}
		p.mu.Lock()
		p.acked[m.EventID] = true
		inflight = nil
		p.mu.Unlock()
	}
}

// replica is one Parley process: its own pipeline, sandbox cluster and
// metrics, sharing the PostgreSQL store and the Lease with the others.
type replica struct {
	name     string
	p        *Parley
	conn     *platformConn
	el       *leader.Elector
	metrics  *telemetry.Metrics
	cancel   context.CancelFunc
	done     chan struct{}
	ledAt    atomic.Int64 // UnixNano when it last started leading
	crashed  atomic.Int64 // UnixNano of the simulated crash
	runError atomic.Value
}

// failoverConfig is a replica's configuration file: the shared PostgreSQL
// store, the sandbox cluster for actions, the default policy with its
// console users as Slack users, and leader election on the test cluster's
// Lease with short timings (production defaults are 15s/10s/2s).
func failoverConfig(t *testing.T, name, dsn, kubeconfig, ns string) *config.Config {
	t.Helper()
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	users := strings.NewReplacer("console:alice", "slack:"+failoverUser, "console:bob", "slack:UBOB", "console:carol", "slack:UCAROL")
	if err := os.WriteFile(pol, []byte(users.Replace(string(policies.Default()))), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := fmt.Sprintf(`
store: {driver: postgres, dsn: {env: PARLEY_TEST_DSN}}
policy: %q
evals: {reports_dir: %q}
leader_election:
  lease_name: parley
  lease_namespace: %s
  identity: %s
  lease_duration: 2s
  renew_deadline: 1500ms
  retry_period: 300ms
  kubeconfig: %q
`, pol, t.TempDir(), ns, name, kubeconfig)
	cfg, err := config.Parse([]byte(yml), name+".yaml", func(k string) string {
		if k == "PARLEY_TEST_DSN" {
			return dsn
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startReplica builds a Parley instance as serve does and makes it stand
// in the election; its chat connection runs while it leads.
func startReplica(t *testing.T, name string, cfg *config.Config, pf *platform, crash func(chat.Message, bool) bool) *replica {
	t.Helper()
	r := &replica{name: name, metrics: telemetry.New(telemetry.Options{}), done: make(chan struct{})}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", name)
	}
	r.conn = &platformConn{p: pf, replica: name, crash: crash}
	p, err := Build(context.Background(), Options{Config: cfg, Logger: log, Metrics: r.metrics}, r.conn)
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if err := p.Pipeline.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.p = p

	client, err := leaderClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	status := newAdapterStatus(nil, r.metrics)
	status.add(r.conn, true)
	chats := &chatRunner{adapters: []chat.Adapter{r.conn}, handler: p.Pipeline, status: status, errc: errc, log: log}
	o := leaderOptions(cfg.LeaderElection, client, chats.lead, r.metrics, log)
	// A crash keeps the Lease: the other replica must wait for it to expire.
	o.KeepLeaseOnStop = true
	onChange := o.OnChange
	o.OnChange = func(leading bool) {
		if leading {
			r.ledAt.Store(time.Now().UnixNano())
		}
		onChange(leading)
	}
	if r.el, err = leader.New(o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if err := r.el.Run(ctx); err != nil {
			r.runError.Store(err)
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// stop ends the replica (as a crash: the Lease is kept) and waits for it.
func (r *replica) stop() {
	r.crashed.CompareAndSwap(0, time.Now().UnixNano())
	r.cancel()
	<-r.done
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(failoverWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %s", what, failoverWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var promptCodeRE = regexp.MustCompile(`"confirm ([A-Z0-9]{4})"`)

func TestFailoverRunsAConfirmedActionExactlyOnce(t *testing.T) {
	for _, c := range []struct {
		name   string
		before bool // the leader crashes before handling the confirmation, or after handling it unacknowledged
		runsOn string
	}{
		{"crash before the confirmation is handled", true, "b"},
		{"crash after the confirmation ran, before it was acknowledged", false, "a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			testFailover(t, c.before, c.runsOn)
		})
	}
}

func testFailover(t *testing.T, crashBefore bool, runsOn string) {
	kc := kubetest.Shared(t)
	dsn := pgtest.Start(t)
	kubeconfig := kc.Kubeconfig(t)
	ns := kc.NewNamespace(t, "failover")
	pf := newPlatform()

	// a crashes on the confirmation (event e2): before handling it, or
	// after running it but before acknowledging it to the platform.
	var a *replica
	a = startReplica(t, "a", failoverConfig(t, "a", dsn, kubeconfig, ns), pf, func(m chat.Message, before bool) bool {
		if m.EventID != "e2" || before != crashBefore {
			return false
		}
		a.crashed.Store(time.Now().UnixNano())
		a.cancel()
		return true
	})
	waitUntil(t, "a to lead", a.el.IsLeader)
	b := startReplica(t, "b", failoverConfig(t, "b", dsn, kubeconfig, ns), pf, nil)
	replicas := map[string]*replica{"a": a, "b": b}

	// Never two leaders, never two open connections.
	var twoLeaders atomic.Bool
	sctx, stopSampling := context.WithCancel(context.Background())
	var sampling sync.WaitGroup
	sampling.Go(func() {
		for sctx.Err() == nil {
			if a.el.IsLeader() && b.el.IsLeader() {
				twoLeaders.Store(true)
			}
			time.Sleep(2 * time.Millisecond)
		}
	})
	defer func() {
		stopSampling()
		sampling.Wait()
		if twoLeaders.Load() {
			t.Error("both replicas led at the same time")
		}
		pf.mu.Lock()
		defer pf.mu.Unlock()
		if pf.overlap {
			t.Error("both replicas held the chat connection at the same time")
		}
	}()

	pf.post(failoverMsg("e1", "scale checkout to 5 in prod"))
	waitUntil(t, "the scale request to be handled", func() bool { return pf.isAcked("e1") })
	m := promptCodeRE.FindStringSubmatch(pf.replyTexts())
	if m == nil {
		t.Fatalf("no confirmation prompt:\n%s", pf.replyTexts())
	}
	code := m[1]
	if testutilGauge(t, a.metrics) != 1 || testutilGauge(t, b.metrics) != 0 {
		t.Errorf("parley_leader: a=%v b=%v, want 1 and 0", testutilGauge(t, a.metrics), testutilGauge(t, b.metrics))
	}

	pf.post(failoverMsg("e2", "confirm "+code))
	<-a.done // a is gone
	if a.el.IsLeader() {
		t.Fatal("a crashed but reports leading")
	}

	// b takes over once a's Lease expires, and the platform delivers the
	// unacknowledged confirmation to it.
	waitUntil(t, "b to lead", b.el.IsLeader)
	took := time.Duration(b.ledAt.Load() - a.crashed.Load())
	t.Logf("takeover after the leader crashed (lease 2s, renew 1.5s, retry 300ms): %s", took.Round(time.Millisecond))
	waitUntil(t, "the confirmation to be handled after the failover", func() bool { return pf.isAcked("e2") })

	// The user, seeing no answer yet, confirms again.
	pf.post(failoverMsg("e3", "confirm "+code))
	waitUntil(t, "the second confirmation to be handled", func() bool { return pf.isAcked("e3") })
	if got := pf.replyTexts(); !strings.Contains(got, "runs at most once") {
		t.Errorf("the second confirmation was not refused as already used:\n%s", got)
	}
	if testutilGauge(t, b.metrics) != 1 {
		t.Errorf("parley_leader on b = %v after the takeover", testutilGauge(t, b.metrics))
	}

	// The shared audit log and confirmations tell what happened, whichever
	// replica did it.
	ctx := context.Background()
	events := func(typ audit.Type, confirmation string) []audit.Event {
		t.Helper()
		evs, err := b.p.Audit.List(ctx, audit.Filter{Types: []audit.Type{typ}, ConfirmationID: confirmation})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	reqs := events(audit.ConfirmationRequested, "")
	if len(reqs) != 1 {
		t.Fatalf("confirmation.requested events = %d, want 1", len(reqs))
	}
	id := reqs[0].ConfirmationID
	for typ, want := range map[audit.Type]int{
		audit.ConfirmationGranted: 1, audit.ActionStarted: 1, audit.ActionSucceeded: 1, audit.ActionFailed: 0,
		audit.ActionInterrupted: 0,
	} {
		if got := len(events(typ, id)); got != want {
			t.Errorf("%s events for the confirmation = %d, want %d", typ, got, want)
		}
	}
	if got := len(events(audit.ConfirmationDenied, id)); got < 1 {
		t.Errorf("confirmation.denied events = %d, want the repeated confirmation refused", got)
	}
	cf, err := b.p.Confirmations.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if cf.State != confirm.Done {
		t.Errorf("confirmation state = %s, want done", cf.State)
	}

	// No request lost and none handled twice: every event a replica took
	// has exactly one message.received, and every message the user sent
	// was handled. The confirmation that ran on a and was redelivered to b
	// is dropped there as a duplicate.
	received := map[string]int{}
	for _, e := range events(audit.MessageReceived, "") {
		received[e.Text]++
	}
	handled := map[string]map[string]bool{} // text -> event ids
	deliveries := 0
	pf.mu.Lock()
	for _, m := range pf.handled {
		if handled[m.Text] == nil {
			handled[m.Text] = map[string]bool{}
		}
		handled[m.Text][m.EventID] = true
		deliveries++
	}
	sent, queued := pf.received, len(pf.queue)
	pf.mu.Unlock()
	for text, ids := range handled {
		if received[text] != len(ids) {
			t.Errorf("%q: %d events handled, message.received %d times", text, len(ids), received[text])
		}
	}
	wantDup := 0.0
	if !crashBefore {
		wantDup = 1 // e2, redelivered to b after a handled it
	}
	if got := messagesCounter(t, b.metrics, "duplicate"); got != wantDup || deliveries != sent+int(wantDup) {
		t.Errorf("b dropped %v duplicates of %d deliveries for %d messages, want %v", got, deliveries, sent, wantDup)
	}
	if queued != 0 || !pf.isAcked("e1") || !pf.isAcked("e2") || !pf.isAcked("e3") || sent != 3 {
		t.Errorf("messages left undelivered: %d queued of %d sent", queued, sent)
	}

	// The scale ran on the replica that handled the confirmation first:
	// each has its own sandbox cluster, so the other's is unchanged.
	for name, r := range replicas {
		d, err := r.p.Sandbox.Client().AppsV1().Deployments("prod").Get(ctx, "checkout", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := int32(3)
		if name == runsOn {
			want = 5
		}
		if got := *d.Spec.Replicas; got != want {
			t.Errorf("replica %s: checkout has %d replicas, want %d", name, got, want)
		}
	}
	if err, _ := b.runError.Load().(error); err != nil {
		t.Errorf("b's election: %v", err)
	}
}

// failoverUser is alice, in group sre, as a Slack user.
const failoverUser = "UALICE"

// failoverMsg is alice's message in Slack channel ops, with a platform
// event id.
func failoverMsg(id, text string) chat.Message {
	return chat.Message{Platform: chat.Slack, Channel: "ops", Thread: "ops", User: failoverUser,
		Text: text, EventID: id, Time: time.Now()}
}

// A read the leader answered but never acknowledged is redelivered to the
// new leader after a failover; it must not be answered a second time.
func TestFailoverAnswersARedeliveredReadOnce(t *testing.T) {
	kc := kubetest.Shared(t)
	dsn := pgtest.Start(t)
	kubeconfig := kc.Kubeconfig(t)
	ns := kc.NewNamespace(t, "failover")
	pf := newPlatform()

	// a crashes after answering the read, before acknowledging it.
	answered := -1 // replies when a crashed
	var a *replica
	a = startReplica(t, "a", failoverConfig(t, "a", dsn, kubeconfig, ns), pf, func(m chat.Message, before bool) bool {
		if m.EventID != "r1" || before {
			return false
		}
		pf.mu.Lock()
		answered = len(pf.replies)
		pf.mu.Unlock()
		a.crashed.Store(time.Now().UnixNano())
		a.cancel()
		return true
	})
	waitUntil(t, "a to lead", a.el.IsLeader)
	b := startReplica(t, "b", failoverConfig(t, "b", dsn, kubeconfig, ns), pf, nil)

	// Each message in its own thread, so the replies tell which they answer.
	threaded := func(id, text string) chat.Message {
		m := failoverMsg(id, text)
		m.Thread = "thread-" + id
		return m
	}
	const read = "status of checkout in prod"
	pf.post(threaded("r1", read))
	<-a.done
	pf.mu.Lock()
	first := answered
	pf.mu.Unlock()
	if first <= 0 {
		t.Fatalf("a did not answer the read before crashing (%d replies)", first)
	}
	waitUntil(t, "b to lead", b.el.IsLeader)
	// The platform redelivers r1 to b first, then the user's next message.
	pf.post(threaded("r2", "help"))
	waitUntil(t, "the next message to be handled after the failover", func() bool { return pf.isAcked("r2") })
	if !pf.isAcked("r1") {
		t.Fatal("the redelivered read was never acknowledged")
	}

	pf.mu.Lock()
	var r1Deliveries int
	for _, m := range pf.handled {
		if m.EventID == "r1" {
			r1Deliveries++
		}
	}
	var readAgain, helpAnswers int // replies since a's answer, by thread
	for _, r := range pf.replies[first:] {
		switch {
		case r.Kind == chat.KindAudit:
		case r.Thread == "thread-r1":
			readAgain++
		case r.Thread == "thread-r2":
			helpAnswers++
		}
	}
	pf.mu.Unlock()
	if r1Deliveries != 2 {
		t.Fatalf("r1 delivered %d times, want 2 (a, then b after the failover)", r1Deliveries)
	}
	if got := messagesCounter(t, b.metrics, "duplicate"); got != 1 {
		t.Errorf("b dropped %v duplicates, want the redelivered read", got)
	}
	evs, err := b.p.Audit.List(context.Background(), audit.Filter{Types: []audit.Type{audit.MessageReceived}})
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]int{}
	for _, e := range evs {
		texts[e.Text]++
	}
	if texts[read] != 1 || texts["help"] != 1 {
		t.Errorf("message.received by text = %v, want the read and help once each", texts)
	}
	if readAgain != 0 || helpAnswers == 0 {
		t.Errorf("after the failover: %d more replies to the read (want 0), %d to help (want some)", readAgain, helpAnswers)
	}
}

// With one replica on SQLite, a Slack event the platform delivers again
// after a restart is dropped; the console's per-session line numbers are
// not taken for redeliveries.
func TestRedeliveryAfterRestartIsDropped(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	say := func(h *harness, platform, id, text string) string {
		t.Helper()
		h.p.Pipeline.Handle(context.Background(), chat.Message{
			Platform: platform, Channel: "ops", Thread: "ops", User: "alice", Text: text, EventID: id, Time: h.clock.Now(),
		})
		got, n := h.out.since(h.n)
		h.n = n
		return got
	}
	h1 := newHarness(t, db)
	mustContain(t, say(h1, chat.Slack, "Ev1", "help"), "can do")
	mustContain(t, say(h1, chat.Console, "console-1", "help"), "can do")
	h1.p.Close(context.Background())

	h2 := newHarness(t, db)
	if got := say(h2, chat.Slack, "Ev1", "help"); got != "" {
		t.Errorf("the redelivered Slack event was answered after a restart:\n%s", got)
	}
	mustContain(t, say(h2, chat.Console, "console-1", "help"), "can do")
	mustContain(t, say(h2, chat.Slack, "Ev2", "help"), "can do")
}

// messagesCounter reads parley_messages_total for Slack and an outcome.
func messagesCounter(t *testing.T, m *telemetry.Metrics, outcome string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "parley_messages_total" {
			continue
		}
		for _, c := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range c.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["platform"] == chat.Slack && labels["outcome"] == outcome {
				return c.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// testutilGauge reads parley_leader from a replica's metrics.
func testutilGauge(t *testing.T, m *telemetry.Metrics) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "parley_leader" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no parley_leader gauge")
	return 0
}
