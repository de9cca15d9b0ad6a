// Command conformance runs the FUT conformance features against one target and exits 0 if and only if every
// selected scenario passed. It is configured by environment variables (see harness.Variables, or -h):
// `make conformance` passes its variables through.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"

	"github.com/ehealth-dk/fut-conformance/harness"
)

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1 // a scenario failed
	exitUsage = 2 // the run could not happen: bad configuration, nothing selected, interrupted
	// exitInterrupted: a second interrupt ended the process at once; 128 + SIGINT, as a shell has it.
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var staging atomic.Pointer[string] // the run's reports before their last redaction pass (harness.Config.Staged)
	go func() {
		// The first signal asks for an orderly end: the exports the run started deleted (at most
		// steps.EndRunWait), no report written (an interrupted run could not happen: exit 2, the previous
		// reports left as they were). A second one ends the process at once, leaving no unredacted report.
		<-ctx.Done()
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		stop()
		fmt.Fprintln(os.Stderr, "conformance: interrupted: ending the run (press Ctrl-C again to quit at once)")
		<-again
		if dir := staging.Load(); dir != nil {
			_ = os.RemoveAll(*dir)
		}
		fmt.Fprintln(os.Stderr, "conformance: interrupted twice: quit, with no reports written")
		os.Exit(exitInterrupted)
	}()
	// A misspelt variable is ignored and its default taken: say so first, whatever the run then does.
	for _, w := range harness.MisspeltVariables(os.Environ()) {
		fmt.Fprintf(os.Stderr, "conformance: warning: %s\n", w)
	}
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, func(dir string) { staging.Store(&dir) }))
}

// run is the command; staged is told where the run stages its reports (harness.Config.Staged).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, staged func(dir string)) int {
	if len(args) > 0 {
		usage(stderr)
		if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
			return exitPass
		}
		fmt.Fprintf(stderr, "conformance: unexpected argument %q: configure the run with the variables above\n", args[0])
		return exitUsage
	}
	cfg, err := harness.ConfigFromEnv(getenv)
	if err != nil {
		// Run validates the combination of the values; here it would not be reached, and the user should
		// see every problem in one pass.
		fmt.Fprintf(stderr, "conformance: %v\n", errors.Join(err, cfg.Validate()))
		return exitUsage
	}
	cfg.Out, cfg.Log, cfg.Staged = stdout, stderr, staged
	res, err := harness.Run(ctx, cfg)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "conformance: %v\n", err)
		return exitUsage
	case res.OnlyRunErrors() && slices.ContainsFunc(res.Failures, func(f harness.Failure) bool { return f.CredentialExpired }):
		fmt.Fprintf(stderr, "conformance: could not run to the end: %d scenario(s) ended on errors of the run, among them a 401 to a token "+
			"that had expired by its exp claim; no requirement is charged: use a token that outlives the run (MAX_WAIT per job), or TOKEN_URL "+
			"with CLIENT_ID, whose tokens the harness renews, then run again\n", len(res.Failures))
		return exitUsage
	case res.OnlyRunErrors() && slices.ContainsFunc(res.Failures, func(f harness.Failure) bool { return f.MaxBody }):
		fmt.Fprintf(stderr, "conformance: could not run to the end: %d scenario(s) ended on errors of the run, among them an answer "+
			"larger than MAX_BODY, the harness's bound on an answer it reads whole; no requirement is charged: raise MAX_BODY "+
			"(the failure says to what), then run again\n", len(res.Failures))
		return exitUsage
	case res.OnlyRunErrors() && slices.ContainsFunc(res.Failures, func(f harness.Failure) bool { return f.TokenWithheld }):
		fmt.Fprintf(stderr, "conformance: could not run to the end: %d scenario(s) ended on errors of the run, among them a request the "+
			"harness sent without the token, its origin not trusted, which the server refused; no requirement is charged: add that "+
			"origin to TRUSTED_ORIGINS (the failure names it) if it is the server's, then run again\n", len(res.Failures))
		return exitUsage
	case res.OnlyRunErrors() && res.TargetExited != "":
		fmt.Fprintf(stderr, "conformance: could not run to the end: %d scenario(s) got no complete HTTP response from the server, "+
			"whose container died during the run (its exit code and output are above); no requirement is charged: fix what "+
			"ended it, then run again\n", len(res.Failures))
		return exitUsage
	case res.OnlyRunErrors():
		fmt.Fprintf(stderr, "conformance: could not run to the end: %d scenario(s) got no complete HTTP response from the server "+
			"(connection, TLS or REQUEST_TIMEOUT); no requirement is charged: check TARGET and the network, then run again\n", len(res.Failures))
		return exitUsage
	case res.NothingChecked:
		fmt.Fprintf(stderr, "conformance: nothing checked: %s\n", res.NothingCheckedReasons())
		return exitUsage
	case !res.Passed:
		return exitFail
	}
	return exitPass
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: [VARIABLE=value ...] conformance\n\nVariables:")
	for _, v := range harness.Variables {
		def := v.Default
		if def == "" {
			def = "unset"
		}
		fmt.Fprintf(w, "  %-22s %s (default: %s)\n", v.Name, v.Meaning, def)
	}
}
