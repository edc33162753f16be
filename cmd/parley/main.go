// Command parley is the Parley ChatOps bot. It is a thin shell: flags and
// signals are handled in internal/app, so tests run the whole program
// in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley-chatops/parley/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
