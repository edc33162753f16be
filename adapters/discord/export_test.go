package discord

// Exports for the external end-to-end tests (package discord_test), which
// wire the adapter to a whole Parley instance from internal/app; an
// internal test could not import internal/app without an import cycle.
// The fake Discord itself is adapters/chattest's.

// OnStarted sets a hook that Run calls once start-up has finished (token
// checked, gateway READY, /parley registered). Set it before Run.
func OnStarted(a *Adapter, f func()) { a.started = f }
