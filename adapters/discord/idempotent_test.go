package discord

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-chatops/parley/adapters/chattest"
	"github.com/parley-chatops/parley/internal/chat"
)

// TestIdempotentPostShowsOnce: a message posted twice with the same
// idempotency key (a post repeated after a crash) carries the key as its
// nonce with enforce_nonce, and Discord (the fake, as Discord documents it)
// returns the first message instead of creating a second.
func TestIdempotentPostShowsOnce(t *testing.T) {
	f := chattest.NewDiscord(t)
	h := start(t, f, nil)
	r := chat.Reply{Platform: chat.Discord, Channel: chattest.DiscordBound, Text: "[FIRING:1] HighErrorRate", Kind: chat.KindError,
		IdempotencyKey: "parley-5f0c9a1e2b7d4c3a8e6f1b20"}
	first, err := h.a.Send(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.a.Send(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("second post made message %s, want the first, %s", again, first)
	}
	reqs := f.Requests(chattest.RouteCreateMessage)
	if len(reqs) != 2 {
		t.Fatalf("%d create requests, want 2", len(reqs))
	}
	for _, req := range reqs {
		var body struct {
			Nonce        string `json:"nonce"`
			EnforceNonce bool   `json:"enforce_nonce"`
			Content      string `json:"content"`
		}
		if err := json.Unmarshal(req.Body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Nonce != "0c9a1e2b7d4c3a8e6f1b20" && len(body.Nonce) != 25 || !body.EnforceNonce {
			t.Errorf("create request nonce %q (enforce %v), want the key's last 25 characters enforced", body.Nonce, body.EnforceNonce)
		}
	}
	// Without a key, each post is a message.
	r.IdempotencyKey = ""
	a1, _ := h.a.Send(context.Background(), r)
	a2, _ := h.a.Send(context.Background(), r)
	if a1 == a2 || a1 == "" {
		t.Errorf("posts without a key: %q %q, want two messages", a1, a2)
	}
}

// TestRunAgainAfterAFailedStart: when Discord cannot be reached at start,
// Run fails; called again once it can, Run connects: serve starts a
// failed adapter again rather than stop, and runs it again on each new
// leadership.
func TestRunAgainAfterAFailedStart(t *testing.T) {
	f := chattest.NewDiscord(t)
	var down atomic.Bool
	down.Store(true)
	f.SetFail(func(route, _ string) (int, int) {
		if down.Load() && route == "GET /api/v9/users/@me" {
			return http.StatusServiceUnavailable, 0
		}
		return 0, 0
	})
	logs := &syncBuffer{}
	a, err := New(testOptions(f, logs))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background(), chattest.NewRecorder()); err == nil {
		t.Fatal("Run started with Discord down")
	}
	if a.Running() {
		t.Error("Running after a failed start")
	}
	down.Store(false)
	for round := range 2 { // after the failure, and once more after a stop
		started := make(chan struct{})
		a.started = func() { close(started) }
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- a.Run(ctx, chattest.NewRecorder()) }()
		select {
		case <-started:
		case err := <-errc:
			cancel()
			t.Fatalf("round %d: Run: %v", round, err)
		case <-time.After(15 * time.Second):
			cancel()
			t.Fatalf("round %d: no start", round)
		}
		if !a.Running() {
			t.Errorf("round %d: not Running after the start", round)
		}
		cancel()
		if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("round %d: Run: %v", round, err)
		}
		if a.Running() {
			t.Errorf("round %d: Running after the stop", round)
		}
	}
	assertNoSecret(t, "logs", logs.String())
}
