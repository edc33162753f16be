package chat

// Check is one finding of an adapter's self-diagnosis (parley doctor):
// what was checked, what was found, and how to fix it when it failed. It
// never holds a secret.
type Check struct {
	Name   string // short, such as "slack token"
	Detail string // what was found
	Err    error  // nil: the check passed
	Fix    string // how to fix it, when Err is set
	// Skipped, when set, says why the check could not run; it then
	// neither passed nor failed.
	Skipped string
}
