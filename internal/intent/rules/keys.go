package rules

import (
	"strings"

	"github.com/parley-chatops/parley/internal/action"
)

// slot is a kind of value a key names whatever the action: kubectl's
// "-n prod" is a namespace, "svc/x" a service, "--since=1h" a window.
type slot uint8

const (
	slotNone slot = iota
	slotNamespace
	slotDeployment
	slotService
	slotWindow
)

// fits reports whether a parameter takes values of the slot.
func (s slot) fits(p *paramInfo) bool {
	switch s {
	case slotNamespace:
		return p.p.Source == action.Namespaces
	case slotDeployment, slotService:
		return p.p.Source == action.Deployments || p.p.Source == action.Services
	case slotWindow:
		return p.is(action.Duration)
	}
	return false
}

// kvKey is what a key of key:value names: a slot, parameters of the
// catalog (by name or word), or both.
type kvKey struct {
	id     string // the same id for keys meaning the same ("ns", "namespace")
	slot   slot
	params []*paramInfo
	// word: only a word of parameters ("rev", "grep"), no name: it is a key
	// when glued to its value ("rev:3"), not before a space ("eval: x").
	word bool
}

func (k kvKey) same(o kvKey) bool { return k.id == o.id }

// boolFlag reports a key that names only boolean parameters: as a flag
// ("-p", "--previous") it is a switch and takes no value.
func (k kvKey) boolFlag() bool {
	if k.slot != slotNone || len(k.params) == 0 {
		return false
	}
	for _, p := range k.params {
		if !p.is(action.Bool) {
			return false
		}
	}
	return true
}

// slotKeys are the keys of the slots (kubectl flags and their plain forms).
var slotKeys = map[string]slot{
	"namespace": slotNamespace, "namespaces": slotNamespace, "ns": slotNamespace, "n": slotNamespace, "env": slotNamespace,
	"deployment": slotDeployment, "deployments": slotDeployment, "deploy": slotDeployment, "dep": slotDeployment,
	"deployment.apps": slotDeployment, "deploy.apps": slotDeployment, "deployments.apps": slotDeployment,
	"service": slotService, "services": slotService, "svc": slotService, "app": slotService,
	"window": slotWindow, "since": slotWindow, "last": slotWindow, "duration": slotWindow, "range": slotWindow, "period": slotWindow,
}

var slotIDs = [...]string{slotNamespace: "namespace", slotDeployment: "deployment", slotService: "service", slotWindow: "window"}

// buildKeys maps every key a message may use to what it names: the slots'
// keys, and each parameter's name and one-word Words.
func buildKeys(cat *catalog) map[string]kvKey {
	keys := map[string]kvKey{}
	for k, s := range slotKeys {
		keys[k] = kvKey{id: slotIDs[s], slot: s}
	}
	add := func(key string, p *paramInfo, word bool) {
		key = strings.ToLower(key)
		if key == "" || key == "#" || strings.ContainsAny(key, " :=/") || p.p.Code {
			return // code is typed in backticks, not as a key
		}
		k, seen := keys[key]
		if !seen {
			k.id, k.word = p.name(), word
		} else if !word {
			k.word = false
		}
		for _, q := range k.params {
			if q == p {
				return
			}
		}
		k.params = append(k.params, p)
		keys[key] = k
	}
	for _, p := range cat.params {
		add(p.name(), p, false)
	}
	for _, p := range cat.params {
		for _, w := range p.words {
			if flag := strings.TrimLeft(w, "-"); flag != w {
				w = flag // a flag ("-c", "--previous") is lexed without its dashes
			}
			add(w, p, true)
		}
	}
	return keys
}
