// Command benchscale runs the suite end to end against reference servers it starts itself and prints one line
// per figure of issue 13's benchmark, the ratio first, then what was measured and the goal. It is
// `make bench-scale`, not part of `make test`: the figures take minutes of wall time.
//
// Each figure is a row (a file of this package adds its rows to figures from init); -only runs the rows
// whose name contains the given text. The rows run side by side, in the same run, on the same machine.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
)

// figure is one row of the benchmark.
type figure struct {
	name string
	goal string // e.g. "≤ 1.3"
	// run measures the figure: its ratio and a line saying what was measured.
	run func(ctx context.Context) (ratio float64, detail string, err error)
}

var figures []figure

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" { // a measured side of a streaming row (streams.go)
		if err := child(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "benchscale child:", err)
			os.Exit(1)
		}
		return
	}
	only := flag.String("only", "", "run only the figures whose name contains this text")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var selected []figure
	for _, f := range figures {
		if strings.Contains(f.name, *only) {
			selected = append(selected, f)
		}
	}
	if len(selected) == 0 {
		fmt.Fprintf(os.Stderr, "benchscale: no figure matches -only %q\n", *only)
		os.Exit(2)
	}
	fmt.Println(machine())
	lines := make([]string, len(selected))
	failed := false
	var wg sync.WaitGroup
	for i, f := range selected {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ratio, detail, err := f.run(ctx)
			if err != nil {
				lines[i], failed = fmt.Sprintf("ERROR  %s: %v", f.name, err), true
				return
			}
			lines[i] = fmt.Sprintf("%.2f  %s (goal %s): %s", ratio, f.name, f.goal, detail)
		}()
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
	if failed {
		os.Exit(1)
	}
}

// machine names what the figures were measured on: they differ from one CPU to another (the small-files row
// measured 1.6 on an AMD EPYC VM and 2.1 on an Intel Xeon VM with the same code).
func machine() string {
	model := "CPU model unknown"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		defer f.Close()
		for sc := bufio.NewScanner(f); sc.Scan(); {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("# %s/%s, %d CPUs (%s), %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), model, runtime.Version())
}
