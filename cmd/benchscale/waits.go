package main

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"time"

	"github.com/ehealth-dk/fut-conformance/harness"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The two wall-time rows: waits overlap (the suite costs about one job, not one job per waiting scenario),
// and an export that never finishes costs about one MAX_WAIT, not one per scenario that waits on it.
func init() {
	const job, retryAfter = 30 * time.Second, 3 * time.Second
	figures = append(figures,
		figure{
			name: "suite wall time / (job duration + one Retry-After), jobs of 30 s, Retry-After 3 s",
			goal: "≤ 1.3",
			run: func(ctx context.Context) (float64, string, error) {
				wall, res, err := runSuite(ctx, refserver.Config{ExportDuration: job, ReportDuration: job, RetryAfter: retryAfter}, 0)
				if err != nil {
					return 0, "", err
				}
				if !res.Passed {
					return 0, "", fmt.Errorf("the suite failed against a conformant server: %+v", res.Failures)
				}
				unavoidable := job + retryAfter
				return wall.Seconds() / unavoidable.Seconds(), fmt.Sprintf("%d scenarios passed in %s; one job and one poll interval are %s",
					res.Scenarios, wall.Round(100*time.Millisecond), unavoidable), nil
			},
		},
		figure{
			name: "wall time against an export that never finishes / MAX_WAIT, MAX_WAIT=60s",
			goal: "≤ 1.1",
			run: func(ctx context.Context) (float64, string, error) {
				const maxWait = 60 * time.Second
				wall, res, err := runSuite(ctx, refserver.Config{ExportDuration: 24 * time.Hour, RetryAfter: retryAfter}, maxWait)
				if err != nil {
					return 0, "", err
				}
				if res.Passed {
					return 0, "", fmt.Errorf("the suite passed against an export that never finishes")
				}
				return wall.Seconds() / maxWait.Seconds(), fmt.Sprintf("%d scenarios, %d failed (those that wait on a completed export), in %s",
					res.Scenarios, len(res.Failures), wall.Round(100*time.Millisecond)), nil
			},
		},
	)
}

// runSuite runs every feature, both users, against a reference server with cfg, the way a vendor runs it
// against TARGET, and returns the run's wall time, preflight included.
func runSuite(ctx context.Context, cfg refserver.Config, maxWait time.Duration) (time.Duration, harness.Result, error) {
	srv, err := refserver.NewServer(cfg)
	if err != nil {
		return 0, harness.Result{}, err
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	dir, err := os.MkdirTemp("", "benchscale-")
	if err != nil {
		return 0, harness.Result{}, err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	res, err := harness.Run(ctx, harness.Config{
		Target: ts.URL + "/fhir", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
		MaxWait: maxWait, ReportsDir: dir, Out: io.Discard, Log: io.Discard,
	})
	return time.Since(start), res, err
}
