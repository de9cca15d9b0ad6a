// Command mutation measures the harness's verdicts: it runs the whole suite against the conformant reference
// server and against every injected fault (refserver/faults.go), writes the kill matrix to
// reports/mutation.md and reports/mutation.json, and exits 1 unless the conformant server passes and every
// fault is killed by the scenario of its own requirement. `make mutation` runs it.
//
// Flags:
//
//	-out      DIR     where mutation.md and mutation.json go (default reports)
//	-faults   a,b,c   run only these faults (default: all)
//	-workers  N       runs in parallel (default max(8, 4*GOMAXPROCS))
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/ehealth-dk/fut-conformance/mutation"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mutation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "reports", "directory for mutation.md and mutation.json")
	only := fs.String("faults", "", "comma list of faults to run (default: all)")
	workers := fs.Int("workers", 0, "runs in parallel (default max(8, 4*GOMAXPROCS))")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	opts := mutation.Options{Workers: *workers, Progress: func(o mutation.Outcome) {
		name := o.Fault
		if name == "" {
			name = "(conformant)"
		}
		fmt.Fprintf(stderr, "  %-36s %-9s %-20s %-16s %5.1fs\n", name, o.Profile, o.Requirement, o.Verdict, o.Seconds)
	}}
	if *only != "" {
		names := strings.Split(*only, ",")
		for _, f := range refserver.Faults() {
			if slices.Contains(names, f.Name) {
				opts.Faults = append(opts.Faults, f)
			}
		}
		if len(opts.Faults) != len(names) {
			fmt.Fprintf(stderr, "mutation: -faults %q names an unknown fault\n", *only)
			return 2
		}
	}
	fmt.Fprintf(stderr, "mutation: running the suite against the conformant reference server and %d faults\n", max(len(opts.Faults), len(refserver.Faults())*btoi(opts.Faults == nil)))
	m, err := mutation.Run(ctx, opts)
	if err != nil {
		fmt.Fprintf(stderr, "mutation: %v\n", err)
		return 2
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintf(stderr, "mutation: create %s: %v\n", *out, err)
		return 2
	}
	var md, js bytes.Buffer
	if err := m.WriteMarkdown(&md); err != nil {
		fmt.Fprintf(stderr, "mutation: %v\n", err)
		return 2
	}
	if err := m.WriteJSON(&js); err != nil {
		fmt.Fprintf(stderr, "mutation: %v\n", err)
		return 2
	}
	for name, b := range map[string][]byte{"mutation.md": md.Bytes(), "mutation.json": js.Bytes()} {
		if err := os.WriteFile(filepath.Join(*out, name), b, 0o644); err != nil {
			fmt.Fprintf(stderr, "mutation: write %s: %v\n", name, err)
			return 2
		}
	}
	conformant := fmt.Sprintf("%s (%s)", m.Conformant.Verdict, m.Conformant.Profile)
	for _, c := range m.ConformantElsewhere {
		conformant += fmt.Sprintf(", %s (%s)", c.Verdict, c.Profile)
	}
	fmt.Fprintf(stdout, "mutation: conformant server %s; %d of %d faults killed by their own requirement's scenario in %.0fs; matrix in %s\n",
		conformant, m.Killed, m.Total, m.Seconds, filepath.Join(*out, "mutation.md"))
	if err := m.Check(); err != nil {
		fmt.Fprintf(stderr, "mutation: %v\n", err)
		return 1
	}
	return 0
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
