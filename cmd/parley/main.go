// Command parley is the Parley ChatOps bot. It is a thin shell: flags and
// signals are handled in internal/app, so tests run the whole program
// in-process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"

	"github.com/parley-chatops/parley/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], app.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		// client-go logs through klog, process-wide: into Parley's logger.
		RouteKlog: klog.SetSlogLogger,
	})
	stop()
	os.Exit(code)
}
