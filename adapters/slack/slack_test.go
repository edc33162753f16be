package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/parley-chatops/parley/adapters/chattest"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
	"github.com/parley-chatops/parley/internal/chat"

	"github.com/parley-chatops/parley/internal/testenv/logtest"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer = logtest.Buffer

type undeliveredLog struct {
	mu      sync.Mutex
	replies []chat.Reply
	errs    []error
}

func (u *undeliveredLog) record(_ context.Context, r chat.Reply, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.replies = append(u.replies, r)
	u.errs = append(u.errs, err)
}

func (u *undeliveredLog) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.replies)
}

type harness struct {
	a    *Adapter
	f    *chattest.Slack
	rec  *chattest.Recorder
	logs *syncBuffer
	und  *undeliveredLog
	stop func() error
}

// start runs an adapter against f until the test ends.
func start(t *testing.T, f *chattest.Slack, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{f: f, rec: chattest.NewRecorder(), logs: &syncBuffer{}, und: &undeliveredLog{}}
	opts := Options{
		BotToken: chattest.SlackBotToken, AppToken: chattest.SlackAppToken, APIURL: f.URL(),
		BoundChannels: map[string]bool{"CBOUND": true},
		Logger:        slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnUndelivered: h.und.record,
		PostInterval:  time.Millisecond, RetryBackoff: time.Millisecond, CallTimeout: 5 * time.Second,
	}
	if edit != nil {
		edit(&opts)
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, h.rec) }()
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(20 * time.Second):
				runErr = errors.New("Run did not return after its context ended")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := h.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		for _, secret := range []string{chattest.SlackBotToken, chattest.SlackAppToken, chattest.SlackSigningSecret} {
			if strings.Contains(h.logs.String(), secret) {
				t.Errorf("a secret appears in the log output")
			}
		}
	})
	if opts.Mode != ModeEvents {
		f.WaitConnected(1)
	} else {
		h.waitRunning(t)
	}
	return h
}

// waitRunning waits until Run has passed its start-up checks.
func (h *harness) waitRunning(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.a.mu.Lock()
		ok := h.a.handler != nil
		h.a.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("adapter did not start")
}

func TestMentionAndDirectMessage(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)

	f.Envelope("env-1", "events_api", chattest.SlackEvent("Ev001", chattest.SlackMention("C1", "U1", "<@UBOT0001> status of checkout in prod", "1700000001.000100", "")))
	f.WaitAck("env-1")
	m := h.rec.Next(t)
	want := chat.Message{Platform: "slack", Channel: "C1", Thread: "1700000001.000100", User: "U1", Text: "<@UBOT0001> status of checkout in prod", EventID: "msg:C1:1700000001.000100"}
	if m.Platform != want.Platform || m.Channel != want.Channel || m.Thread != want.Thread || m.User != want.User || m.Text != want.Text || m.EventID != want.EventID {
		t.Errorf("mention = %+v, want %+v", m, want)
	}
	if got := strings.Join(m.Groups, ","); got != "slack-group:S0SRE" {
		t.Errorf("groups = %q, want slack-group:S0SRE", got)
	}
	if m.Subject() != "slack:U1" || m.ChannelRef() != "slack:C1" {
		t.Errorf("subject %s channel %s", m.Subject(), m.ChannelRef())
	}
	if !m.Time.Equal(time.Unix(1700000001, 100000)) {
		t.Errorf("time = %v", m.Time)
	}

	// A DM inside a thread keeps the thread.
	f.Envelope("env-2", "events_api", chattest.SlackEvent("Ev002", chattest.SlackMessage("D1", "im", "U2", "help", "1700000002.000100", `,"thread_ts":"1700000001.999999"`)))
	m = h.rec.NextText(t, "help")
	if m.Channel != "D1" || m.Thread != "1700000001.999999" || m.User != "U2" || strings.Join(m.Groups, ",") != "slack-group:S0ML,slack-group:S0SRE" {
		t.Errorf("dm = %+v", m)
	}
}

func TestIgnoredMessages(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	ignored := []string{
		chattest.SlackMessage("D1", "im", "U1", "from a bot", "1700000010.000100", `,"bot_id":"B999"`),
		chattest.SlackMessage("D1", "im", chattest.SlackBotUserID, "my own message", "1700000011.000100", ""),
		chattest.SlackMessage("D1", "im", "U1", "edited", "1700000012.000100", `,"edited":{"user":"U1","ts":"1700000012.500000"}`),
		`{"type":"message","subtype":"message_changed","channel":"D1","channel_type":"im","ts":"1700000013.000100","message":{"type":"message","user":"U1","text":"changed","ts":"1700000001.000100"}}`,
		chattest.SlackMessage("C1", "channel", "U1", "chatter in an unbound channel", "1700000014.000100", ""),
		chattest.SlackMessage("CBOUND", "channel", "U1", "joined", "1700000015.000100", `,"subtype":"channel_join"`),
		`{"type":"reaction_added","user":"U1","reaction":"thumbsup","item":{"type":"message","channel":"C1","ts":"1700000001.000100"},"event_ts":"1700000016.000100"}`,
		chattest.SlackMention("C1", "U1", "<@UBOT0001> from a bot", "1700000017.000100", "") + "",
	}
	// The last one becomes a bot's mention.
	ignored[len(ignored)-1] = strings.Replace(ignored[len(ignored)-1], `"type":"app_mention"`, `"type":"app_mention","bot_id":"B999"`, 1)
	for i, ev := range ignored {
		id := fmt.Sprintf("env-ign-%d", i)
		f.Envelope(id, "events_api", chattest.SlackEvent(fmt.Sprintf("EvIgn%d", i), ev))
		f.WaitAck(id)
	}
	// A message in a bound channel is handled without a mention; a mention
	// there arrives as app_mention and as message, and is handled once.
	f.Envelope("env-b1", "events_api", chattest.SlackEvent("EvB1", chattest.SlackMessage("CBOUND", "channel", "U1", "bound chatter", "1700000020.000100", "")))
	h.rec.NextText(t, "bound chatter")
	f.Envelope("env-b2", "events_api", chattest.SlackEvent("EvB2", chattest.SlackMention("CBOUND", "U1", "<@UBOT0001> twice", "1700000021.000100", "")))
	f.Envelope("env-b3", "events_api", chattest.SlackEvent("EvB3", chattest.SlackMessage("CBOUND", "channel", "U1", "<@UBOT0001> twice", "1700000021.000100", "")))
	h.rec.NextText(t, "<@UBOT0001> twice")
	f.Envelope("env-s", "events_api", chattest.SlackEvent("EvS", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000022.000100", "")))
	h.rec.NextText(t, "sentinel")
}

func TestRedeliveredEventHandledOnce(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	ev := chattest.SlackEvent("EvDup", chattest.SlackMention("C1", "U1", "<@UBOT0001> restart checkout", "1700000030.000100", ""))
	f.Envelope("env-a", "events_api", ev)
	f.Envelope("env-b", "events_api", ev) // Slack's retry: new envelope, same event
	f.WaitAck("env-a")
	f.WaitAck("env-b")
	h.rec.NextText(t, "<@UBOT0001> restart checkout")
	f.Envelope("env-s", "events_api", chattest.SlackEvent("EvS", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000031.000100", "")))
	h.rec.NextText(t, "sentinel")
}

func TestButtonClick(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	p := chattest.SlackClick("U2", "C1", "1700001001.000200", "1700000001.000100", "parley_confirm", "c0ffee42", "1700001010.123456")
	f.Envelope("env-click", "interactive", p)
	f.WaitAck("env-click")
	m := h.rec.Next(t)
	if m.Action == nil || *m.Action != (chat.ButtonClick{Action: "confirm", Value: "c0ffee42", MessageID: "1700001001.000200"}) {
		t.Fatalf("click = %+v", m.Action)
	}
	if m.Channel != "C1" || m.Thread != "1700000001.000100" || m.User != "U2" || m.Text != "" || m.EventID == "" {
		t.Errorf("click message = %+v", m)
	}
	// The same click redelivered is handled once; a foreign button not at all.
	f.Envelope("env-click-2", "interactive", p)
	f.Envelope("env-foreign", "interactive", chattest.SlackClick("U2", "C1", "1700001001.000200", "", "other_app_button", "x", "1700001011.000000"))
	f.Envelope("env-cancel", "interactive", chattest.SlackClick("U1", "C1", "1700001001.000200", "", "parley_cancel", "c0ffee42", "1700001012.000000"))
	m = h.rec.Next(t)
	if m.Action == nil || m.Action.Action != "cancel" || m.Thread != "1700001001.000200" {
		t.Fatalf("next click = %+v %+v", m, m.Action)
	}
}

func TestReplyPostedInThread(t *testing.T) {
	f := chattest.NewSlack(t)
	ids := make(chan string, 1)
	h := start(t, f, nil)
	h.rec.Reply = func(ctx context.Context, m chat.Message) {
		id, err := h.a.Send(ctx, chat.Reply{Platform: m.Platform, Channel: m.Channel, Thread: m.Thread, Kind: chat.KindSuccess,
			Text: "Scaled **checkout** (prod) 3 -> 5 <!channel>", Context: []string{"[audit #9]"}})
		if err != nil {
			t.Errorf("Send: %v", err)
		}
		ids <- id
	}
	f.Envelope("env-1", "events_api", chattest.SlackEvent("Ev1", chattest.SlackMention("C1", "U1", "<@UBOT0001> scale", "1700000040.000100", "")))
	h.rec.Next(t)
	id := <-ids
	posts, _ := f.Snapshot()
	if len(posts) != 1 {
		t.Fatalf("posts = %+v", posts)
	}
	p := posts[0]
	if p.Channel != "C1" || p.Thread != "1700000040.000100" || p.TS != id {
		t.Errorf("post = %+v, Send returned %q", p, id)
	}
	var blocks []struct {
		Type string `json:"type"`
		Text struct {
			Text string `json:"text"`
		} `json:"text"`
	}
	if err := json.Unmarshal([]byte(p.Blocks), &blocks); err != nil {
		t.Fatal(err)
	}
	// Markdown converted, and the user-visible <!channel> escaped so it
	// cannot ping the channel.
	if len(blocks) != 2 || blocks[0].Text.Text != ":white_check_mark: Scaled *checkout* (prod) 3 -&gt; 5 &lt;!channel&gt;" || blocks[1].Type != "context" {
		t.Errorf("blocks = %s", p.Blocks)
	}

	// UpdateOf edits the prompt in place.
	got, err := h.a.Send(context.Background(), chat.Reply{Channel: "C1", Thread: "1700000040.000100", UpdateOf: id, Kind: chat.KindSuccess, Text: "Confirmed by <@U2>"})
	if err != nil || got != id {
		t.Fatalf("update: %q %v", got, err)
	}
	_, updates := f.Snapshot()
	if len(updates) != 1 || updates[0].TS != id || updates[0].Channel != "C1" {
		t.Fatalf("updates = %+v", updates)
	}
}

func TestRateLimitStormAbsorbedInOrder(t *testing.T) {
	f := chattest.NewSlack(t)
	f.SetFail(func(method string, n int) (int, string, string) {
		if method == "chat.postMessage" && n <= 3 {
			return http.StatusTooManyRequests, "1", ""
		}
		return 0, "", ""
	})
	h := start(t, f, nil)
	const replies = 5
	ids := make([]string, replies)
	errs := make([]error, replies)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Go(func() {
			ids[i], errs[i] = h.a.Send(context.Background(), chat.Reply{Channel: "C1", Thread: "1700000050.000100", Text: fmt.Sprintf("reply %d", i)})
		})
		// Queue the replies in a known order: wait until this one is queued
		// (the first is held by the worker, waiting out Retry-After).
		waitQueued(t, h.a, "C1", i)
	}
	wg.Wait()
	posts, _ := f.Snapshot()
	if len(posts) != replies {
		t.Fatalf("%d posts, want %d: %+v", len(posts), replies, posts)
	}
	for i, p := range posts {
		if p.Text != fmt.Sprintf("reply %d", i) {
			t.Errorf("post %d = %q: out of order", i, p.Text)
		}
		if errs[i] != nil || ids[i] != p.TS {
			t.Errorf("Send %d = %q, %v; post ts %s", i, ids[i], errs[i], p.TS)
		}
	}
	if h.und.count() != 0 {
		t.Errorf("undelivered: %+v", h.und.replies)
	}
}

// waitQueued waits until channel's queue holds n jobs besides the one in
// the worker's hands.
func waitQueued(t *testing.T, a *Adapter, channel string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a.out.mu.Lock()
		q := a.out.queues[channel]
		a.out.mu.Unlock()
		if q != nil {
			q.mu.Lock()
			have := len(q.jobs)
			q.mu.Unlock()
			if have >= n {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("job %d never queued", n)
}

func TestAuditStepsCoalesced(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	ctx := context.Background()
	const thread = "1700000060.000100"
	var ids []string
	for i := range 5 {
		id, err := h.a.Send(ctx, chat.Reply{Channel: "C1", Thread: thread, Kind: chat.KindAudit, Text: fmt.Sprintf("#%d 10:00:0%d step.%d", i+1, i, i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// A reply queued after the steps is posted after them (FIFO per channel).
	if _, err := h.a.Send(ctx, chat.Reply{Channel: "C1", Thread: thread, Text: "done"}); err != nil {
		t.Fatal(err)
	}
	posts, updates := f.Snapshot()
	if len(posts) != 2 || posts[0].Thread != thread || posts[1].Text != "done" {
		t.Fatalf("posts = %+v", posts)
	}
	for _, id := range ids {
		if id != posts[0].TS {
			t.Errorf("audit step id %q, want the trail message %q", id, posts[0].TS)
		}
	}
	if len(updates) == 0 || len(updates) > 4 {
		t.Fatalf("%d updates, want 1..4", len(updates))
	}
	last := updates[len(updates)-1]
	if last.TS != posts[0].TS {
		t.Errorf("update of %q, want %q", last.TS, posts[0].TS)
	}
	for i := range 5 {
		if !strings.Contains(last.Blocks, fmt.Sprintf("step.%d", i)) {
			t.Errorf("trail lacks step %d: %s", i, last.Blocks)
		}
	}
	// Another thread has its own trail.
	other, err := h.a.Send(ctx, chat.Reply{Channel: "C1", Thread: "1700000061.000100", Kind: chat.KindAudit, Text: "#9 other"})
	if err != nil || other == posts[0].TS {
		t.Errorf("other thread's trail = %q, %v", other, err)
	}
}

func TestSocketReconnectResumes(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	f.Envelope("env-1", "events_api", chattest.SlackEvent("EvR1", chattest.SlackMention("C1", "U1", "<@UBOT0001> first", "1700000070.000100", "")))
	h.rec.NextText(t, "<@UBOT0001> first")
	f.WaitAck("env-1")

	f.DropConnection()
	f.WaitConnected(2)
	// Slack redelivers what it thinks was not acknowledged, then new events.
	f.Envelope("env-1-again", "events_api", chattest.SlackEvent("EvR1", chattest.SlackMention("C1", "U1", "<@UBOT0001> first", "1700000070.000100", "")))
	f.Envelope("env-2", "events_api", chattest.SlackEvent("EvR2", chattest.SlackMention("C1", "U1", "<@UBOT0001> second", "1700000071.000100", "")))
	f.WaitAck("env-2")
	h.rec.NextText(t, "<@UBOT0001> second")
	f.Envelope("env-s", "events_api", chattest.SlackEvent("EvS", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000072.000100", "")))
	h.rec.NextText(t, "sentinel")
}

func TestTransientFailuresRetriedThenReported(t *testing.T) {
	f := chattest.NewSlack(t)
	f.SetFail(func(method string, n int) (int, string, string) {
		switch {
		case method == "chat.postMessage" && n <= 2:
			return http.StatusBadGateway, "", ""
		case method == "chat.update":
			return http.StatusServiceUnavailable, "", ""
		}
		return 0, "", ""
	})
	h := start(t, f, func(o *Options) { o.MaxAttempts = 3 })
	id, err := h.a.Send(context.Background(), chat.Reply{Channel: "C1", Text: "after two 502s"})
	if err != nil || id == "" {
		t.Fatalf("Send = %q, %v", id, err)
	}
	_, err = h.a.Send(context.Background(), chat.Reply{Channel: "C1", UpdateOf: id, Text: "never lands"})
	if !errors.Is(err, action.ErrUnavailable) {
		t.Fatalf("update error = %v, want ErrUnavailable", err)
	}
	tries := f.Calls("chat.update")
	if tries != 3 {
		t.Errorf("chat.update tried %d times, want 3", tries)
	}
	if h.und.count() != 1 || h.und.replies[0].Text != "never lands" {
		t.Errorf("undelivered = %+v", h.und.replies)
	}
}

func TestPermanentFailureNotRetried(t *testing.T) {
	f := chattest.NewSlack(t)
	f.SetFail(func(method string, _ int) (int, string, string) {
		if method == "chat.postMessage" {
			return 0, "", "channel_not_found"
		}
		return 0, "", ""
	})
	h := start(t, f, nil)
	_, err := h.a.Send(context.Background(), chat.Reply{Channel: "CGONE", Text: "hello"})
	if !errors.Is(err, action.ErrNotFound) || !strings.Contains(err.Error(), "channel_not_found") {
		t.Fatalf("err = %v", err)
	}
	tries := f.Calls("chat.postMessage")
	if tries != 1 {
		t.Errorf("tried %d times, want 1", tries)
	}
	if h.und.count() != 1 {
		t.Errorf("undelivered = %d, want 1", h.und.count())
	}
	if strings.Contains(err.Error(), chattest.SlackBotToken) {
		t.Error("error contains the bot token")
	}
}

func TestImageUploadedIntoThread(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	png := []byte("\x89PNG\r\n\x1a\nfake chart")
	_, err := h.a.Send(context.Background(), chat.Reply{Channel: "C1", Thread: "1700000080.000100", Text: "error rate",
		Images: []chat.Image{{Name: "checkout-error_rate.png", ContentType: "image/png", Data: png, AltText: "error rate"}}})
	if err != nil {
		t.Fatal(err)
	}
	uploads, completes := f.Uploads()
	if len(uploads) != 1 || !bytes.Equal(uploads[0], png) {
		t.Fatalf("uploads = %q", uploads)
	}
	if len(completes) != 1 || completes[0].Channel != "C1" || completes[0].Thread != "1700000080.000100" || !strings.Contains(completes[0].Text, "F0CHART") {
		t.Fatalf("completes = %+v", completes)
	}
}

func TestSendWhenNotRunning(t *testing.T) {
	und := &undeliveredLog{}
	a, err := New(Options{BotToken: chattest.SlackBotToken, AppToken: chattest.SlackAppToken, OnUndelivered: und.record, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(context.Background(), chat.Reply{Channel: "C1", Text: "x"}); !errors.Is(err, action.ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
	if und.count() != 1 {
		t.Errorf("OnUndelivered called %d times", und.count())
	}
}

// waitStopping waits until Run has stopped taking messages (it is draining
// those in flight). The deadline only turns a hang into a failure.
func (h *harness) waitStopping(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.a.mu.Lock()
		stopping := h.a.handler == nil
		h.a.mu.Unlock()
		if stopping {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("Run did not begin to stop")
}

// A reply sent while Run is being stopped (shutdown, or a lost leadership)
// is delivered, not cancelled with Run's context and reported undelivered.
func TestReplyInFlightAtStopIsDelivered(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	entered, release := make(chan struct{}), make(chan struct{})
	sent := make(chan error, 1)
	h.rec.Reply = func(ctx context.Context, m chat.Message) {
		close(entered)
		<-release
		_, err := h.a.Send(ctx, chat.Reply{Platform: m.Platform, Channel: m.Channel, Thread: m.Thread, Kind: chat.KindSuccess, Text: "checkout is healthy"})
		sent <- err
	}
	f.Envelope("env-1", "events_api", chattest.SlackEvent("Ev1", chattest.SlackMention("C1", "U1", "<@UBOT0001> status of checkout", "1700000050.000100", "")))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the message was not handled")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	h.waitStopping(t)
	close(release) // the handler answers only now, while Run is stopping
	if err := <-sent; err != nil {
		t.Errorf("Send while stopping: %v", err)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Run: %v", err)
	}
	if n := h.und.count(); n != 0 {
		t.Errorf("%d replies reported undelivered: %v", n, h.und.errs)
	}
	posts, _ := f.Snapshot()
	if len(posts) != 1 || posts[0].Channel != "C1" || posts[0].Thread != "1700000050.000100" || !strings.Contains(posts[0].Text, "checkout is healthy") {
		t.Errorf("posts = %+v, want the reply in the request's thread", posts)
	}
	// Once Run has returned, Send refuses at once.
	if _, err := h.a.Send(context.Background(), chat.Reply{Channel: "C1", Text: "late"}); !errors.Is(err, action.ErrUnavailable) {
		t.Errorf("Send after Run: %v, want unavailable", err)
	}
}

// A handler still running when the drain period ends is cancelled, and Run
// returns: stopping is bounded.
func TestStopCancelsHandlersAfterTheDrainPeriod(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, func(o *Options) { o.DrainTimeout = 20 * time.Millisecond })
	entered := make(chan struct{})
	handlerErr := make(chan error, 1)
	h.rec.Reply = func(ctx context.Context, _ chat.Message) {
		close(entered)
		<-ctx.Done() // a handler that would run forever
		handlerErr <- ctx.Err()
	}
	f.Envelope("env-1", "events_api", chattest.SlackEvent("Ev1", chattest.SlackMention("C1", "U1", "<@UBOT0001> status of checkout", "1700000051.000100", "")))
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the message was not handled")
	}
	if err := h.stop(); err != nil { // returns only once the handler has returned
		t.Errorf("Run: %v", err)
	}
	select {
	case err := <-handlerErr:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("handler context after the drain period: %v, want cancelled", err)
		}
	default:
		t.Error("Run returned before the handler did")
	}
	if !strings.Contains(h.logs.String(), "cancelling them") {
		t.Errorf("the cancellation was not logged")
	}
}
