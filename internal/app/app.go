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
	// RouteKlog, when set, redirects klog (client-go's process-wide
	// logging) into a command's logger. cmd/parley sets it to
	// klog.SetSlogLogger; tests that run commands side by side leave it
	// nil, as klog cannot be redirected safely while others log.
	RouteKlog func(*slog.Logger)
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
  parley audit [list|export|verify] [--config FILE | --db PATH] [flags]
                                    read, archive (export --since/--until --out) and verify
                                    the audit log, in SQLite or PostgreSQL; verify --file
                                    checks archived exports
  parley backup --to FILE|- [--config FILE | --db PATH]
                                    an online, verified copy of the SQLite database
  parley restore --from FILE|- [--config FILE | --db PATH] [--force]
                                    put a backup in place (Parley stopped)
  parley policy check --as USER --channel CHANNEL REQUEST...
                                    explain the policy decision for a request
  parley serve [--config FILE]      run as a service: chat adapters, HTTP health and webhooks
  parley config validate|show --config FILE
                                    check a configuration file, or print it (secrets hidden)
  parley doctor --config FILE       check every connection and right Parley needs, with fixes
  parley slack manifest --mode socket|events [--url URL]
                                    print the Slack app manifest to paste into api.slack.com
  parley discord invite-url --application-id ID
                                    print the URL that adds the bot to a Discord server
  parley healthcheck [--ready] [--config FILE | --url URL]
                                    exit 0 when a running serve answers /healthz (/readyz)
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
	case "doctor":
		err = cmdDoctor(ctx, rest, env)
	case "slack":
		err = cmdSlack(ctx, rest, env)
	case "discord":
		err = cmdDiscord(ctx, rest, env)
	case "healthcheck":
		err = cmdHealthcheck(ctx, rest, env)
	case "backup":
		err = cmdBackup(ctx, rest, env)
	case "restore":
		err = cmdRestore(ctx, rest, env)
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
		l := slog.New(slog.DiscardHandler)
		routeKlog(env, l) // client-go stays quiet too
		return l
	}
	return newLogger(env, "debug", "text")
}

func joinArgs(args []string) string { return strings.TrimSpace(strings.Join(args, " ")) }
