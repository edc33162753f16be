package discord

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/parley-chatops/parley/internal/chat"
)

// State keeps small values across restarts and replicas. *chatstate.Store
// implements it.
type State interface {
	// Put records value under key; a key already there keeps its value.
	Put(ctx context.Context, key, value string) error
	// Get returns the value under key, and false when there is none.
	Get(ctx context.Context, key string) (string, bool, error)
}

// A button's custom_id is "parley:<action>:<value>" when that fits
// Discord's 100 characters (a confirmation id does). A longer value (a
// suggested action's request, such as an incident's "Roll back") is kept
// in State under a key derived from it, and the custom_id carries the key:
// "parley:<action>:~<key>". The same button always gets the same key, so
// re-rendering a message stores nothing new.
const (
	storedMark   = "~"
	stateKeyBase = "discord-button:"
)

// buttonKey is the stored form's key: 120 bits of SHA-256 over the action
// and value, in 20 URL-safe characters.
func buttonKey(action, value string) string {
	sum := sha256.Sum256([]byte(action + "\x00" + value))
	return base64.RawURLEncoding.EncodeToString(sum[:15])
}

// compactButtons returns the buttons with every value that does not fit a
// custom_id replaced by its stored key. A button whose value cannot be
// stored is left out (the reply's text says what to type instead) and
// logged; the reply itself still goes out.
func (a *Adapter) compactButtons(ctx context.Context, buttons []chat.Button) []chat.Button {
	if len(buttons) == 0 {
		return buttons
	}
	out := make([]chat.Button, 0, len(buttons))
	for _, b := range buttons {
		if b.Action == "" || len(customIDPrefix+b.Action+":"+b.Value) <= maxCustomID && !strings.HasPrefix(b.Value, storedMark) {
			out = append(out, b)
			continue
		}
		if len(b.Value) > maxStoredValue {
			a.log.Warn("button value too long to keep; button left out", "action", b.Action, "bytes", len(b.Value))
			continue
		}
		key := buttonKey(b.Action, b.Value)
		sctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
		err := a.state.Put(sctx, stateKeyBase+key, b.Value)
		cancel()
		if err != nil {
			a.log.Warn("button value not stored; button left out", "action", b.Action, "err", err)
			continue
		}
		b.Value = storedMark + key
		out = append(out, b)
	}
	return out
}

// buttonValue turns a clicked custom_id's value back into the button's
// value, looking a stored key up. A key that is gone (purged, or stored in
// memory by a process that has since restarted) comes back as it is: the
// pipeline answers that the button no longer carries a request it knows.
func (a *Adapter) buttonValue(ctx context.Context, value string) string {
	key, stored := strings.CutPrefix(value, storedMark)
	if !stored {
		return value
	}
	sctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
	defer cancel()
	v, ok, err := a.state.Get(sctx, stateKeyBase+key)
	switch {
	case err != nil:
		a.log.Warn("button value not read", "key", key, "err", err)
		return value
	case !ok:
		a.log.Info("clicked button's value is no longer kept", "key", key)
		return value
	}
	return v
}

// memoryState is the State of an adapter given none: this process only.
type memoryState struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *memoryState) Put(_ context.Context, key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]string{}
	}
	if _, ok := s.m[key]; !ok {
		s.m[key] = value
	}
	return nil
}

func (s *memoryState) Get(_ context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok, nil
}
