package slack

// Exports for the external end-to-end tests (package slack_test), which
// wire the adapter to a whole Parley instance from internal/app; an
// internal test could not import internal/app without an import cycle.
// The fake Slack itself is adapters/chattest's.
