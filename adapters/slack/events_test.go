package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-chatops/parley/internal/action"
)

// fixedNow is the clock of the Events API tests: request timestamps are
// judged against it.
var fixedNow = time.Unix(1700000100, 0)

func sign(secret string, ts int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + strconv.FormatInt(ts, 10) + ":" + body))
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// post sends a request signed like Slack signs it (X-Slack-Signature over
// "v0:timestamp:body") to the events endpoint served on 127.0.0.1.
func post(t *testing.T, srv *httptest.Server, contentType, body string, ts int64, signature string, retry string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/slack/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Slack-Signature", signature)
	if retry != "" {
		req.Header.Set("X-Slack-Retry-Num", retry)
		req.Header.Set("X-Slack-Retry-Reason", "http_timeout")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestEventsAPI(t *testing.T) {
	f := newFakeSlack(t)
	h := start(t, f, func(o *Options) {
		o.Mode, o.AppToken, o.SigningSecret = ModeEvents, "", testSecret
		o.Now = func() time.Time { return fixedNow }
	})
	srv := httptest.NewServer(h.a.EventsHandler())
	defer srv.Close()
	ts := fixedNow.Unix()
	const js = "application/json"

	body := eventPayload("EvH1", mentionEvent("C1", "U1", "<@UBOT0001> status of checkout", "1700000090.000100", ""))
	if code, _ := post(t, srv, js, body, ts, sign(testSecret, ts, body), ""); code != http.StatusOK {
		t.Fatalf("good signature: %d", code)
	}
	m := h.rec.nextText(t, "<@UBOT0001> status of checkout")
	if m.EventID != "EvH1" || m.Thread != "1700000090.000100" || m.Channel != "C1" || m.User != "U1" {
		t.Errorf("message = %+v", m)
	}

	// Slack's retry of the same event: accepted, not handled again.
	if code, _ := post(t, srv, js, body, ts, sign(testSecret, ts, body), "1"); code != http.StatusOK {
		t.Fatalf("retry: %d", code)
	}

	bad := eventPayload("EvH2", mentionEvent("C1", "U1", "<@UBOT0001> forged", "1700000091.000100", ""))
	if code, _ := post(t, srv, js, bad, ts, sign("not-the-secret", ts, bad), ""); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", code)
	}
	if code, _ := post(t, srv, js, bad, ts, sign(testSecret, ts, bad)[:10], ""); code != http.StatusUnauthorized {
		t.Errorf("short signature: %d, want 401", code)
	}
	stale := ts - int64((6 * time.Minute).Seconds())
	if code, _ := post(t, srv, js, bad, stale, sign(testSecret, stale, bad), ""); code != http.StatusUnauthorized {
		t.Errorf("stale timestamp: %d, want 401", code)
	}
	future := ts + int64((6 * time.Minute).Seconds())
	if code, _ := post(t, srv, js, bad, future, sign(testSecret, future, bad), ""); code != http.StatusUnauthorized {
		t.Errorf("future timestamp: %d, want 401", code)
	}

	challenge := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	if code, got := post(t, srv, js, challenge, ts, sign(testSecret, ts, challenge), ""); code != http.StatusOK || got != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification: %d %q", code, got)
	}
	if code, _ := post(t, srv, js, challenge, ts, "v0=00", ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned url_verification: %d", code)
	}

	form := "payload=" + url.QueryEscape(clickPayload("U2", "C1", "1700001001.000200", "1700000090.000100", "parley_cancel", "c0ffee42", "1700001020.000001"))
	if code, _ := post(t, srv, "application/x-www-form-urlencoded", form, ts, sign(testSecret, ts, form), ""); code != http.StatusOK {
		t.Fatalf("interactive: %d", code)
	}
	m = h.rec.next(t)
	if m.Action == nil || m.Action.Action != "cancel" || m.Action.Value != "c0ffee42" || m.Action.MessageID != "1700001001.000200" {
		t.Errorf("click = %+v", m.Action)
	}

	huge := `{"type":"event_callback","pad":"` + strings.Repeat("x", maxEventBody) + `"}`
	if code, _ := post(t, srv, js, huge, ts, sign(testSecret, ts, huge), ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", code)
	}

	// The retried and forged events above were not handled: the sentinel
	// is the next message.
	sentinel := eventPayload("EvH3", messageEventJSON("D1", "im", "U1", "sentinel", "1700000092.000100", ""))
	if code, _ := post(t, srv, js, sentinel, ts, sign(testSecret, ts, sentinel), ""); code != http.StatusOK {
		t.Fatalf("sentinel: %d", code)
	}
	h.rec.nextText(t, "sentinel")
	if strings.Contains(h.logs.String(), testSecret) {
		t.Error("signing secret logged")
	}
}

func TestEventsRefusedWhileStopped(t *testing.T) {
	a, err := New(Options{BotToken: testBotToken, Mode: ModeEvents, SigningSecret: testSecret, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.EventsHandler())
	defer srv.Close()
	body := eventPayload("EvX", messageEventJSON("D1", "im", "U1", "hello", "1700000093.000100", ""))
	ts := fixedNow.Unix()
	// Not running: 503 so that Slack retries, and the retry is not taken
	// for a duplicate.
	for range 2 {
		if code, _ := post(t, srv, "application/json", body, ts, sign(testSecret, ts, body), ""); code != http.StatusServiceUnavailable {
			t.Errorf("while stopped: %d, want 503", code)
		}
	}
}

func TestStartupChecks(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	run := func(f *fakeSlack, opts Options) error {
		opts.APIURL, opts.Logger = f.url(), quiet
		if opts.BotToken == "" {
			opts.BotToken = testBotToken
		}
		a, err := New(opts)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return a.Run(ctx, newRecorder())
	}

	f := newFakeSlack(t)
	f.scopes = "app_mentions:read,im:history,channels:history,usergroups:read"
	err := run(f, Options{AppToken: testAppToken})
	if err == nil || !strings.Contains(err.Error(), "the bot token lacks chat:write, files:write") || !errors.Is(err, action.ErrNotConfigured) {
		t.Errorf("missing scopes: %v", err)
	}

	f = newFakeSlack(t)
	f.appTokenOK = false
	err = run(f, Options{AppToken: testAppToken})
	if err == nil || !strings.Contains(err.Error(), "Socket Mode needs an app-level token (xapp-) with connections:write") {
		t.Errorf("bad app token: %v", err)
	}

	err = run(f, Options{BotToken: wrongBotToken, AppToken: testAppToken})
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") || !errors.Is(err, action.ErrNotConfigured) || strings.Contains(err.Error(), wrongBotToken) {
		t.Errorf("bad bot token: %v", err)
	}

	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "bot token (xoxb-) is required"},
		{Options{BotToken: userToken}, "must be a bot token"},
		{Options{BotToken: testBotToken}, "Socket Mode needs an app-level token (xapp-)"},
		{Options{BotToken: testBotToken, AppToken: testBotToken}, "Socket Mode needs an app-level token (xapp-)"},
		{Options{BotToken: testBotToken, Mode: ModeEvents}, "signing secret"},
		{Options{BotToken: testBotToken, Mode: "rtm"}, `mode "rtm"`},
	} {
		_, err := New(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, action.ErrNotConfigured) {
			t.Errorf("New(%+v) = %v, want %q", tc.opts.Mode, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), testBotToken) || strings.Contains(err.Error(), userToken)) {
			t.Errorf("error names a token: %v", err)
		}
	}
}

func TestGroupRefreshKeepsStaleCache(t *testing.T) {
	f := newFakeSlack(t)
	h := start(t, f, nil)
	if got := h.a.groups.of("U1"); len(got) != 1 || got[0] != "slack-group:S0SRE" {
		t.Fatalf("groups = %v", got)
	}
	f.mu.Lock()
	f.fail = func(method string, _ int) (int, string, string) {
		if method == "usergroups.list" {
			return http.StatusInternalServerError, "", ""
		}
		return 0, "", ""
	}
	f.mu.Unlock()
	h.a.groups.refresh(context.Background())
	if got := h.a.groups.of("U1"); len(got) != 1 {
		t.Errorf("stale cache dropped: %v", got)
	}
	if !strings.Contains(h.logs.String(), "user groups not refreshed") {
		t.Error("refresh failure not logged")
	}
	f.mu.Lock()
	f.fail = nil
	f.groups = `[{"id":"S0NEW","team_id":"T1","is_usergroup":true,"name":"New","handle":"new","users":["U1"]}]`
	f.mu.Unlock()
	h.a.groups.refresh(context.Background())
	if got := h.a.groups.of("U1"); len(got) != 1 || got[0] != "slack-group:S0NEW" {
		t.Errorf("after refresh: %v", got)
	}
}
