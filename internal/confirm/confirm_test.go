package confirm

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/store"
)

var t0 = time.Date(2026, 3, 14, 2, 14, 7, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	dbase database
	db    *store.DB
	clock *fakeClock
	s     *Store
}

// fixtureReplica is the replica name of the fixture's Store: the same
// after every reopen, as a restarted StatefulSet pod's.
const fixtureReplica = "parley-0"

func newFixture(t testing.TB, bk backend) *fixture {
	t.Helper()
	f := &fixture{dbase: bk.Fresh(t), clock: &fakeClock{t: t0}}
	f.open(t)
	return f
}

// open (re)opens the database, as a restarted process would.
func (f *fixture) open(t testing.TB) {
	t.Helper()
	f.db = f.dbase.OpenHandle(t)
	f.s = New(f.db, Options{Now: f.clock.Now, Replica: fixtureReplica})
}

func scaleRequest() Confirmation {
	return Confirmation{
		RequestID:        "req-1",
		Action:           action.KubernetesScale,
		Params:           action.Params{"deployment": "checkout", "namespace": "prod", "replicas": 5},
		Requester:        "slack:U1",
		Channel:          "slack:C1",
		Thread:           "1710000000.000100",
		Approvers:        []string{"group:sre"},
		RequesterGroups:  []string{"slack-group:S0614TZR7"},
		DistinctApprover: true,
		Rule:             "prod changes need a second sre",
		PlanSummary:      "checkout replicas 3 -> 5",
		PlanState:        "gen=7,replicas=3",
		ExpiresAt:        t0.Add(10 * time.Minute),
	}
}

// create stores c and marks it shown, as the pipeline does once the
// prompt is delivered, and returns it as stored.
func (f *fixture) create(t *testing.T, c Confirmation) Confirmation {
	t.Helper()
	ctx := context.Background()
	got := f.createUnshown(t, c)
	if err := f.s.MarkShown(ctx, got.ID); err != nil {
		t.Fatalf("MarkShown: %v", err)
	}
	got, err := f.s.Get(ctx, got.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// createUnshown stores c without marking it shown.
func (f *fixture) createUnshown(t *testing.T, c Confirmation) Confirmation {
	t.Helper()
	got, err := f.s.Create(context.Background(), c)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return got
}

var codeRE = regexp.MustCompile(`^[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{4}$`)

func TestCreateAndGet(t *testing.T) { forBackends(t, testCreateAndGet) }

func testCreateAndGet(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	req := scaleRequest()
	c := f.create(t, req)

	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(c.ID) {
		t.Errorf("ID = %q, want 32 hex digits", c.ID)
	}
	if !codeRE.MatchString(c.Code) {
		t.Errorf("Code = %q, want 4 characters of %s", c.Code, CodeAlphabet)
	}
	if c.State != Pending || !c.CreatedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("State/CreatedAt/ExpiresAt = %s %v %v", c.State, c.CreatedAt, c.ExpiresAt)
	}
	if want := `{"deployment":"checkout","namespace":"prod","replicas":5}`; c.ParamsCanonical != want {
		t.Errorf("ParamsCanonical = %s, want %s", c.ParamsCanonical, want)
	}

	got, err := f.s.Get(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("Get =\n%#v\nwant\n%#v", got, c)
	}
	if got.Params.Canonical() != c.ParamsCanonical {
		t.Error("stored params do not reproduce their canonical form")
	}
	if _, err := f.s.Get(ctx, "0123"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
}

func TestCreateDefaultsAndValidation(t *testing.T) { forBackends(t, testCreateDefaultsAndValidation) }

func testCreateDefaultsAndValidation(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	req := scaleRequest()
	req.ExpiresAt = time.Time{}
	c := f.create(t, req)
	if !c.ExpiresAt.Equal(t0.Add(DefaultTTL)) {
		t.Errorf("ExpiresAt = %v, want created + %v", c.ExpiresAt, DefaultTTL)
	}

	bad := map[string]func(*Confirmation){
		"no action":          func(c *Confirmation) { c.Action = "" },
		"no requester":       func(c *Confirmation) { c.Requester = "" },
		"no channel":         func(c *Confirmation) { c.Channel = "" },
		"expired at birth":   func(c *Confirmation) { c.ExpiresAt = t0 },
		"mismatched binding": func(c *Confirmation) { c.ParamsCanonical = `{"replicas":50}` },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			c := scaleRequest()
			mutate(&c)
			if _, err := f.s.Create(ctx, c); !errors.Is(err, ErrInvalid) {
				t.Errorf("Create = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestCodesUniqueAmongPendingInChannel(t *testing.T) {
	forBackends(t, testCodesUniqueAmongPendingInChannel)
}

func testCodesUniqueAmongPendingInChannel(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	seen := map[string]bool{}
	for i := range 300 {
		c := f.create(t, scaleRequest())
		if !codeRE.MatchString(c.Code) {
			t.Fatalf("code %q malformed", c.Code)
		}
		if seen[c.Code] {
			t.Fatalf("code %s issued twice among pending confirmations of one channel (after %d)", c.Code, i)
		}
		seen[c.Code] = true
	}
	pending, err := f.s.PendingIn(ctx, "slack:C1")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 300 {
		t.Errorf("PendingIn = %d, want 300", len(pending))
	}
}

func TestFindByCode(t *testing.T) { forBackends(t, testFindByCode) }

func testFindByCode(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.create(t, scaleRequest())

	for _, typed := range []string{c.Code, strings.ToLower(c.Code), "  " + c.Code + "\n"} {
		got, err := f.s.FindByCode(ctx, "slack:C1", typed)
		if err != nil || got.ID != c.ID {
			t.Errorf("FindByCode(%q) = %s, %v; want %s", typed, got.ID, err, c.ID)
		}
	}
	for name, tc := range map[string]struct{ channel, code string }{
		"other channel":   {"slack:C2", c.Code},
		"other platform":  {"discord:C1", c.Code},
		"malformed code":  {"slack:C1", "0O1I"},
		"wrong length":    {"slack:C1", c.Code + "A"},
		"empty":           {"slack:C1", ""},
		"sql metacharacs": {"slack:C1", "' OR 1=1 --"},
	} {
		if _, err := f.s.FindByCode(ctx, tc.channel, tc.code); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: FindByCode = %v, want ErrNotFound", name, err)
		}
	}

	// Once claimed, the code no longer finds it.
	if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.FindByCode(ctx, "slack:C1", c.Code); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindByCode after claim = %v, want ErrNotFound", err)
	}
}

func TestClaimLifecycle(t *testing.T) { forBackends(t, testClaimLifecycle) }

func testClaimLifecycle(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.create(t, scaleRequest())
	at := t0.Add(time.Minute)

	// The requester cannot approve their own prod change.
	got, err := f.s.Claim(ctx, c.ID, "slack:U1", at)
	if !errors.Is(err, ErrSameApprover) || got.State != Pending {
		t.Fatalf("self-approval: %v, state %s; want ErrSameApprover and still pending", err, got.State)
	}

	got, err = f.s.Claim(ctx, c.ID, "slack:U2", at)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Executing || got.DecidedBy != "slack:U2" || !got.DecidedAt.Equal(at) {
		t.Errorf("after Claim: state %s by %s at %v", got.State, got.DecidedBy, got.DecidedAt)
	}

	got, err = f.s.Claim(ctx, c.ID, "slack:U3", at)
	if !errors.Is(err, ErrAlreadyUsed) || got.DecidedBy != "slack:U2" {
		t.Errorf("second Claim = %v (decided by %s), want ErrAlreadyUsed with the first approver", err, got.DecidedBy)
	}
	if _, err := f.s.Cancel(ctx, c.ID, "slack:U1"); !errors.Is(err, ErrAlreadyUsed) {
		t.Errorf("Cancel while executing = %v, want ErrAlreadyUsed", err)
	}

	f.clock.Set(t0.Add(2 * time.Minute))
	if err := f.s.Finish(ctx, c.ID, Done, "replicas 3 -> 5"); err != nil {
		t.Fatal(err)
	}
	got, _ = f.s.Get(ctx, c.ID)
	if got.State != Done || got.Outcome != "replicas 3 -> 5" || !got.FinishedAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after Finish: %s %q %v", got.State, got.Outcome, got.FinishedAt)
	}
	if err := f.s.Finish(ctx, c.ID, Failed, "again"); !errors.Is(err, ErrNotExecuting) {
		t.Errorf("second Finish = %v, want ErrNotExecuting", err)
	}
	if _, err := f.s.Claim(ctx, c.ID, "slack:U3", at); !errors.Is(err, ErrAlreadyUsed) {
		t.Errorf("Claim after done = %v, want ErrAlreadyUsed", err)
	}
	if err := f.s.Finish(ctx, c.ID, Pending, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Finish(pending) = %v, want ErrInvalid", err)
	}
	if err := f.s.Finish(ctx, "nope", Done, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Finish(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := f.s.Claim(ctx, "nope", "slack:U2", at); !errors.Is(err, ErrNotFound) {
		t.Errorf("Claim(unknown) = %v, want ErrNotFound", err)
	}
}

func TestRequesterMayConfirmWhenNotDistinct(t *testing.T) {
	forBackends(t, testRequesterMayConfirmWhenNotDistinct)
}

func testRequesterMayConfirmWhenNotDistinct(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	req := scaleRequest()
	req.DistinctApprover = false
	req.Approvers = []string{"requester"}
	c := f.create(t, req)
	if _, err := f.s.Claim(context.Background(), c.ID, "slack:U1", t0); err != nil {
		t.Errorf("Claim by requester = %v, want success", err)
	}
}

func TestConcurrentClaimsHaveOneWinner(t *testing.T) {
	forBackends(t, testConcurrentClaimsHaveOneWinner)
}

func testConcurrentClaimsHaveOneWinner(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	c := f.create(t, scaleRequest())
	const claimers = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		others  = map[string]int{}
	)
	start := make(chan struct{})
	for i := range claimers {
		wg.Go(func() {
			<-start
			approver := fmt.Sprintf("slack:A%d", i)
			_, err := f.s.Claim(context.Background(), c.ID, approver, t0.Add(time.Second))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, approver)
			case errors.Is(err, ErrAlreadyUsed):
				others["used"]++
			default:
				others[err.Error()]++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || others["used"] != claimers-1 {
		t.Fatalf("winners %v, others %v; want exactly one winner and %d ErrAlreadyUsed", winners, others, claimers-1)
	}
	got, err := f.s.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DecidedBy != winners[0] || got.State != Executing {
		t.Errorf("stored: %s by %s, want executing by %s", got.State, got.DecidedBy, winners[0])
	}
}

func TestExpiry(t *testing.T) { forBackends(t, testExpiry) }

func testExpiry(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	short := scaleRequest()
	short.ExpiresAt = t0.Add(time.Minute)
	a := f.create(t, short)
	b := f.create(t, scaleRequest()) // 10 minutes
	expiry := t0.Add(time.Minute)

	// At the expiry instant a confirmation is already too late.
	if _, err := f.s.Claim(ctx, a.ID, "slack:U2", expiry); !errors.Is(err, ErrExpired) {
		t.Errorf("Claim at expiry = %v, want ErrExpired", err)
	}
	if _, err := f.s.Claim(ctx, a.ID, "slack:U2", expiry.Add(-time.Millisecond)); err != nil {
		t.Errorf("Claim just before expiry = %v, want success", err)
	}

	c := f.create(t, short)
	f.clock.Set(expiry)
	pending, err := f.s.PendingIn(ctx, "slack:C1")
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].ID != b.ID {
		t.Errorf("PendingIn after expiry = %v, want only %s", ids(pending), b.ID)
	}
	// Not yet swept: the code still finds it, and Claim says expired.
	if got, err := f.s.FindByCode(ctx, "slack:C1", c.Code); err != nil || got.ID != c.ID {
		t.Errorf("FindByCode before sweep = %v, %v", got.ID, err)
	}
	if _, err := f.s.Cancel(ctx, c.ID, "slack:U1"); !errors.Is(err, ErrExpired) {
		t.Errorf("Cancel after expiry = %v, want ErrExpired", err)
	}

	expired, err := f.s.ExpireDue(ctx, expiry)
	if err != nil {
		t.Fatal(err)
	}
	if len(expired) != 1 || expired[0].ID != c.ID || expired[0].State != Expired {
		t.Fatalf("ExpireDue = %v, want only %s", ids(expired), c.ID)
	}
	// Each expiry is reported once.
	if again, err := f.s.ExpireDue(ctx, expiry.Add(time.Second)); err != nil || len(again) != 0 {
		t.Errorf("second ExpireDue = %v, %v; want none", ids(again), err)
	}
	if _, err := f.s.Claim(ctx, c.ID, "slack:U2", expiry); !errors.Is(err, ErrExpired) {
		t.Errorf("Claim after sweep = %v, want ErrExpired", err)
	}
	if _, err := f.s.FindByCode(ctx, "slack:C1", c.Code); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindByCode after sweep = %v, want ErrNotFound", err)
	}
	got, _ := f.s.Get(ctx, b.ID)
	if got.State != Pending {
		t.Errorf("unexpired confirmation is %s, want pending", got.State)
	}
}

func TestCancel(t *testing.T) { forBackends(t, testCancel) }

func testCancel(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.create(t, scaleRequest())
	f.clock.Set(t0.Add(time.Minute))
	got, err := f.s.Cancel(ctx, c.ID, "slack:U1")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != Cancelled || got.DecidedBy != "slack:U1" || !got.DecidedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("after Cancel: %s by %s at %v", got.State, got.DecidedBy, got.DecidedAt)
	}
	if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0.Add(time.Minute)); !errors.Is(err, ErrCancelled) {
		t.Errorf("Claim after Cancel = %v, want ErrCancelled", err)
	}
	if _, err := f.s.Cancel(ctx, c.ID, "slack:U1"); !errors.Is(err, ErrCancelled) {
		t.Errorf("second Cancel = %v, want ErrCancelled", err)
	}
	if _, err := f.s.Cancel(ctx, "nope", "slack:U1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Cancel(unknown) = %v, want ErrNotFound", err)
	}
	// Its code is free again in the channel.
	if _, err := f.s.FindByCode(ctx, "slack:C1", c.Code); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindByCode after Cancel = %v, want ErrNotFound", err)
	}
}

func TestSurvivesRestart(t *testing.T) { forBackends(t, testSurvivesRestart) }

func testSurvivesRestart(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	pending := f.create(t, scaleRequest())
	running := f.create(t, scaleRequest())
	finished := f.create(t, scaleRequest())
	for _, id := range []string{running.ID, finished.ID} {
		if _, err := f.s.Claim(ctx, id, "slack:U2", t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.s.Finish(ctx, finished.ID, Failed, "forbidden"); err != nil {
		t.Fatal(err)
	}

	// Crash: the process goes away with "running" still executing.
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	f.clock.Set(t0.Add(time.Minute))
	f.open(t)

	recovered, err := f.s.RecoverInterrupted(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recovered) != 1 || recovered[0].ID != running.ID || recovered[0].State != Interrupted {
		t.Fatalf("RecoverInterrupted = %v, want only %s", ids(recovered), running.ID)
	}
	if again, err := f.s.RecoverInterrupted(ctx); err != nil || len(again) != 0 {
		t.Errorf("second RecoverInterrupted = %v, %v; want none", ids(again), err)
	}
	// The interrupted one is never run again.
	if _, err := f.s.Claim(ctx, running.ID, "slack:U3", t0.Add(time.Minute)); !errors.Is(err, ErrAlreadyUsed) {
		t.Errorf("Claim of interrupted = %v, want ErrAlreadyUsed", err)
	}
	if err := f.s.Finish(ctx, running.ID, Done, "late"); !errors.Is(err, ErrNotExecuting) {
		t.Errorf("Finish of interrupted = %v, want ErrNotExecuting", err)
	}
	got, _ := f.s.Get(ctx, finished.ID)
	if got.State != Failed || got.Outcome != "forbidden" {
		t.Errorf("finished confirmation after restart: %s %q", got.State, got.Outcome)
	}

	// The pending one is still confirmable, by code and with its binding.
	found, err := f.s.FindByCode(ctx, "slack:C1", pending.Code)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(found, pending) {
		t.Errorf("after restart:\n%#v\nwant\n%#v", found, pending)
	}
	if _, err := f.s.Claim(ctx, pending.ID, "slack:U2", t0.Add(time.Minute)); err != nil {
		t.Errorf("Claim after restart = %v", err)
	}
}

func TestNewCodeUsesWholeAlphabet(t *testing.T) {
	counts := map[rune]int{}
	for range 2000 {
		code, err := newCode()
		if err != nil {
			t.Fatal(err)
		}
		if !codeRE.MatchString(code) {
			t.Fatalf("code %q malformed", code)
		}
		for _, r := range code {
			counts[r]++
		}
	}
	// 8000 draws over 31 symbols: each appears about 258 times; a symbol
	// never drawn means the alphabet is not used.
	if len(counts) != len(CodeAlphabet) {
		t.Errorf("%d distinct symbols drawn, want %d", len(counts), len(CodeAlphabet))
	}
}

func TestNormaliseCode(t *testing.T) {
	for in, want := range map[string]string{"abcd": "ABCD", " K7M2 ": "K7M2", "AB0D": "", "ABC": "", "ABCDE": "", "ÄBCD": ""} {
		got, ok := NormaliseCode(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormaliseCode(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestFinishBoundsOutcome(t *testing.T) { forBackends(t, testFinishBoundsOutcome) }

func testFinishBoundsOutcome(t *testing.T, bk backend) {
	f := newFixture(t, bk)
	ctx := context.Background()
	c := f.create(t, scaleRequest())
	if _, err := f.s.Claim(ctx, c.ID, "slack:U2", t0); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Finish(ctx, c.ID, Failed, strings.Repeat("é", 2000)); err != nil {
		t.Fatal(err)
	}
	got, _ := f.s.Get(ctx, c.ID)
	if len(got.Outcome) > maxOutcome || !strings.HasSuffix(got.Outcome, "…") {
		t.Errorf("outcome is %d bytes, want at most %d and marked", len(got.Outcome), maxOutcome)
	}
}

func ids(cs []Confirmation) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}
