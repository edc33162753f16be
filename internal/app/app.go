// Package app wires Parley together explicitly: the store, audit recorder,
// confirmations, policy, router, actions and adapters are all built in this
// package, from flags and files, so one can read here which parts exist and
// how they meet. It also implements the command line (Main), so tests run
// the whole program in-process.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/parley-chatops/parley/internal/crashpoint"
)

// Version is set at build time with -ldflags "-X .../internal/app.Version=v1.2.3".
var Version = "dev"

// Env is the process environment Main runs in.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Now is the clock; nil means time.Now. Tests move it to expire
	// confirmations without sleeping.
	Now func() time.Time
}

func (e Env) getenv(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

func (e Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// crashEnv names the crash point a test build stops at (see
// internal/crashpoint); "list" makes `parley version` print them all.
const crashEnv = "PARLEY_CRASH_AT"

// errUsage marks an error in the command line: exit status 2.
var errUsage = errors.New("usage")

// exitError carries a specific exit status with a message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

const usage = `Parley is a ChatOps bot: plain-language requests in chat become
permission-scoped actions, confirmed by people and audited.

Usage:
  parley chat [--as USER] [--channel CHANNEL] [--transcript FILE] [flags]
                                    talk to Parley in the terminal (console adapter)
  parley classify --inventory FILE --jsonl
                                    route {"text": ...} lines from stdin, offline
  parley eval routing --dataset FILE [--out DIR] [--min-accuracy F]
                                    score the router on a routing dataset
  parley audit [list|export|verify] [flags]
                                    read and verify the audit log
  parley policy check --as USER --channel CHANNEL REQUEST...
                                    explain the policy decision for a request
  parley serve [--config FILE]      run as a service: chat adapters, HTTP health and webhooks
  parley config validate|show --config FILE
                                    check a configuration file, or print it (secrets hidden)
  parley version                    print the version

Run "parley COMMAND -h" for a command's flags.
`

// Main runs the command line and returns the exit status.
func Main(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		fmt.Fprint(env.Stderr, usage)
		return 2
	}
	// Crash points exist only in test builds (-tags crashpoints); a
	// release binary ignores PARLEY_CRASH_AT.
	crashAt := env.getenv(crashEnv)
	if err := crashpoint.Arm(crashAt); err != nil {
		fmt.Fprintf(env.Stderr, "parley: %s: %v\n", crashEnv, err)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "chat":
		err = cmdChat(ctx, rest, env)
	case "classify":
		err = cmdClassify(ctx, rest, env)
	case "eval":
		err = cmdEval(ctx, rest, env)
	case "audit":
		err = cmdAudit(ctx, rest, env)
	case "policy":
		err = cmdPolicy(ctx, rest, env)
	case "serve":
		err = cmdServe(ctx, rest, env)
	case "config":
		err = cmdConfig(ctx, rest, env)
	case "version", "--version":
		if crashpoint.Enabled && crashAt == crashpoint.ListName {
			for _, p := range crashpoint.All() {
				fmt.Fprintln(env.Stdout, p)
			}
			return 0
		}
		fmt.Fprintf(env.Stdout, "parley %s\n", Version)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
	default:
		fmt.Fprintf(env.Stderr, "parley: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	var ee *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "parley %s: %v\n", args[0], err)
		return 2
	case errors.As(err, &ee):
		if ee.msg != "" {
			fmt.Fprintf(env.Stderr, "parley %s: %s\n", args[0], ee.msg)
		}
		return ee.code
	default:
		fmt.Fprintf(env.Stderr, "parley %s: %v\n", args[0], err)
		return 1
	}
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2} // the flag package already printed why
	}
	return nil
}

// defaultDB is where the embedded database lives unless --db or
// PARLEY_DB say otherwise: ./.parley/parley.db, beside the work the user
// is doing, so `parley chat` and `parley audit` find the same log.
func defaultDB(env Env) string {
	if p := env.getenv("PARLEY_DB"); p != "" {
		return p
	}
	return filepath.Join(".parley", "parley.db")
}

// logger is the command-line tools' logger: silent unless -v, then debug
// text on stderr (serve configures its own from the config file).
func logger(env Env, verbose bool) *slog.Logger {
	if !verbose {
		return slog.New(slog.DiscardHandler)
	}
	return newLogger(env, "debug", "text")
}

func joinArgs(args []string) string { return strings.TrimSpace(strings.Join(args, " ")) }
