package slack

import (
	"context"
	"errors"
	"github.com/parley-chatops/parley/adapters/chattest"
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
	f := chattest.NewSlack(t)
	h := start(t, f, func(o *Options) {
		o.Mode, o.AppToken, o.SigningSecret = ModeEvents, "", chattest.SlackSigningSecret
		o.Now = func() time.Time { return fixedNow }
	})
	srv := httptest.NewServer(h.a.EventsHandler())
	defer srv.Close()
	ts := fixedNow.Unix()
	const js = "application/json"

	body := chattest.SlackEvent("EvH1", chattest.SlackMention("C1", "U1", "<@UBOT0001> status of checkout", "1700000090.000100", ""))
	if code, _ := post(t, srv, js, body, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, body), ""); code != http.StatusOK {
		t.Fatalf("good signature: %d", code)
	}
	m := h.rec.NextText(t, "<@UBOT0001> status of checkout")
	if m.EventID != "msg:C1:1700000090.000100" || m.Thread != "1700000090.000100" || m.Channel != "C1" || m.User != "U1" {
		t.Errorf("message = %+v", m)
	}

	// Slack's retry of the same event: accepted, not handled again.
	if code, _ := post(t, srv, js, body, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, body), "1"); code != http.StatusOK {
		t.Fatalf("retry: %d", code)
	}

	bad := chattest.SlackEvent("EvH2", chattest.SlackMention("C1", "U1", "<@UBOT0001> forged", "1700000091.000100", ""))
	if code, _ := post(t, srv, js, bad, ts, chattest.SlackSign("not-the-secret", ts, bad), ""); code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", code)
	}
	if code, _ := post(t, srv, js, bad, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, bad)[:10], ""); code != http.StatusUnauthorized {
		t.Errorf("short signature: %d, want 401", code)
	}
	stale := ts - int64((6 * time.Minute).Seconds())
	if code, _ := post(t, srv, js, bad, stale, chattest.SlackSign(chattest.SlackSigningSecret, stale, bad), ""); code != http.StatusUnauthorized {
		t.Errorf("stale timestamp: %d, want 401", code)
	}
	future := ts + int64((6 * time.Minute).Seconds())
	if code, _ := post(t, srv, js, bad, future, chattest.SlackSign(chattest.SlackSigningSecret, future, bad), ""); code != http.StatusUnauthorized {
		t.Errorf("future timestamp: %d, want 401", code)
	}

	challenge := `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	if code, got := post(t, srv, js, challenge, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, challenge), ""); code != http.StatusOK || got != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Errorf("url_verification: %d %q", code, got)
	}
	if code, _ := post(t, srv, js, challenge, ts, "v0=00", ""); code != http.StatusUnauthorized {
		t.Errorf("unsigned url_verification: %d", code)
	}

	form := "payload=" + url.QueryEscape(chattest.SlackClick("U2", "C1", "1700001001.000200", "1700000090.000100", "parley_cancel", "c0ffee42", "1700001020.000001"))
	if code, _ := post(t, srv, "application/x-www-form-urlencoded", form, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, form), ""); code != http.StatusOK {
		t.Fatalf("interactive: %d", code)
	}
	m = h.rec.Next(t)
	if m.Action == nil || m.Action.Action != "cancel" || m.Action.Value != "c0ffee42" || m.Action.MessageID != "1700001001.000200" {
		t.Errorf("click = %+v", m.Action)
	}

	huge := `{"type":"event_callback","pad":"` + strings.Repeat("x", maxEventBody) + `"}`
	if code, _ := post(t, srv, js, huge, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, huge), ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body: %d, want 413", code)
	}

	// The retried and forged events above were not handled: the sentinel
	// is the next message.
	sentinel := chattest.SlackEvent("EvH3", chattest.SlackMessage("D1", "im", "U1", "sentinel", "1700000092.000100", ""))
	if code, _ := post(t, srv, js, sentinel, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, sentinel), ""); code != http.StatusOK {
		t.Fatalf("sentinel: %d", code)
	}
	h.rec.NextText(t, "sentinel")
	if strings.Contains(h.logs.String(), chattest.SlackSigningSecret) {
		t.Error("signing secret logged")
	}
}

func TestEventsRefusedWhileStopped(t *testing.T) {
	a, err := New(Options{BotToken: chattest.SlackBotToken, Mode: ModeEvents, SigningSecret: chattest.SlackSigningSecret, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.EventsHandler())
	defer srv.Close()
	body := chattest.SlackEvent("EvX", chattest.SlackMessage("D1", "im", "U1", "hello", "1700000093.000100", ""))
	ts := fixedNow.Unix()
	// Not running: 503 so that Slack retries, and the retry is not taken
	// for a duplicate.
	for range 2 {
		if code, _ := post(t, srv, "application/json", body, ts, chattest.SlackSign(chattest.SlackSigningSecret, ts, body), ""); code != http.StatusServiceUnavailable {
			t.Errorf("while stopped: %d, want 503", code)
		}
	}
}

func TestStartupChecks(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	run := func(f *chattest.Slack, opts Options) error {
		opts.APIURL, opts.Logger = f.URL(), quiet
		if opts.BotToken == "" {
			opts.BotToken = chattest.SlackBotToken
		}
		a, err := New(opts)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return a.Run(ctx, chattest.NewRecorder())
	}

	f := chattest.NewSlack(t)
	f.SetScopes("app_mentions:read,im:history,channels:history,usergroups:read")
	err := run(f, Options{AppToken: chattest.SlackAppToken})
	if err == nil || !strings.Contains(err.Error(), "the bot token lacks chat:write, files:write") || !errors.Is(err, action.ErrNotConfigured) {
		t.Errorf("missing scopes: %v", err)
	}

	f = chattest.NewSlack(t)
	f.SetAppTokenOK(false)
	err = run(f, Options{AppToken: chattest.SlackAppToken})
	if err == nil || !strings.Contains(err.Error(), "Socket Mode needs an app-level token (xapp-) with connections:write") {
		t.Errorf("bad app token: %v", err)
	}

	err = run(f, Options{BotToken: chattest.SlackWrongBotToken, AppToken: chattest.SlackAppToken})
	if err == nil || !strings.Contains(err.Error(), "invalid_auth") || !errors.Is(err, action.ErrNotConfigured) || strings.Contains(err.Error(), chattest.SlackWrongBotToken) {
		t.Errorf("bad bot token: %v", err)
	}

	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "bot token (xoxb-) is required"},
		{Options{BotToken: chattest.SlackUserToken}, "must be a bot token"},
		{Options{BotToken: chattest.SlackBotToken}, "Socket Mode needs an app-level token (xapp-)"},
		{Options{BotToken: chattest.SlackBotToken, AppToken: chattest.SlackBotToken}, "Socket Mode needs an app-level token (xapp-)"},
		{Options{BotToken: chattest.SlackBotToken, Mode: ModeEvents}, "signing secret"},
		{Options{BotToken: chattest.SlackBotToken, Mode: "rtm"}, `mode "rtm"`},
	} {
		_, err := New(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, action.ErrNotConfigured) {
			t.Errorf("New(%+v) = %v, want %q", tc.opts.Mode, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), chattest.SlackBotToken) || strings.Contains(err.Error(), chattest.SlackUserToken)) {
			t.Errorf("error names a token: %v", err)
		}
	}
}

func TestGroupRefreshKeepsStaleCache(t *testing.T) {
	f := chattest.NewSlack(t)
	h := start(t, f, nil)
	if got := h.a.groups.of("U1"); len(got) != 1 || got[0] != "slack-group:S0SRE" {
		t.Fatalf("groups = %v", got)
	}
	f.SetFail(func(method string, _ int) (int, string, string) {
		if method == "usergroups.list" {
			return http.StatusInternalServerError, "", ""
		}
		return 0, "", ""
	})
	h.a.groups.refresh(context.Background())
	if got := h.a.groups.of("U1"); len(got) != 1 {
		t.Errorf("stale cache dropped: %v", got)
	}
	if !strings.Contains(h.logs.String(), "user groups not refreshed") {
		t.Error("refresh failure not logged")
	}
	f.SetFail(nil)
	f.SetGroups(`[{"id":"S0NEW","team_id":"T1","is_usergroup":true,"name":"New","handle":"new","users":["U1"]}]`)
	h.a.groups.refresh(context.Background())
	if got := h.a.groups.of("U1"); len(got) != 1 || got[0] != "slack-group:S0NEW" {
		t.Errorf("after refresh: %v", got)
	}
}
