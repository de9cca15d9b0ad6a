package refserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// preemptedClock is the real clock, read by a goroutine that may be preempted right after reading it: it
// pauses up to 1 ms before handing the time back. A server that decides a job's state with a time read before
// taking the job's lock then acts on a time another request has already passed; one that reads the time under
// the lock only waits longer.
type preemptedClock struct{}

func (preemptedClock) Now() time.Time {
	t := time.Now()
	time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond))))
	return t
}

// The DELETE/poll race on the real clock: each export job completes exportTime after its kick-off, and its
// DELETE is sent 0 to 1.2 × exportTime after the kick-off answer, while two pollers poll it without pause. A
// job ends one way only: cancelled (the DELETE answered 202; no poll ever answered 200, no file is readable)
// or completed (every poll after the first 200 is 200, and a DELETE after that answers 404). The manual-clock
// load test cannot see this race, because there the clock does not move between reading it and taking the
// lock; on the real clock it showed in 4 of 4200 jobs, and preemptedClock widens the window (the server before
// the fix failed each of 3 runs with -race). Bounded: raceJobs jobs a round, raceParallel at a time, each
// round within raceDeadline; loopback only.
//
// The DELETEs must land on both sides of completion, or the round did not exercise the race. On a loaded
// machine a request takes longer than a job of raceExportTime: the kick-off's answer arrives after the job has
// completed and every DELETE finds it done (seen with two busy loops beside the test: 0 of 400 cancelled in 1
// of 3 runs). A round whose DELETEs all land on one side is run again on a new server with jobs twice as long,
// up to raceRounds rounds: the time scale follows the machine's speed, the assertions stay the same.
const (
	raceJobs       = 400
	raceParallel   = 12
	raceExportTime = 30 * time.Millisecond // the first round's; a request takes milliseconds under -race
	raceRounds     = 5                     // 30 ms to 480 ms
	raceDeadline   = 90 * time.Second
)

// raceJob is what the clients of one job saw, each answer with when it arrived.
type raceJob struct {
	poll       string
	deleteCode int
	deleteSent time.Time
	polls      []racePoll // both pollers' answers, in arrival order per poller
	manifest   []byte     // a 200 answer's body
}

type racePoll struct {
	code     int
	received time.Time
}

func TestRaceDeletePollOnTheRealClock(t *testing.T) {
	if testing.Short() {
		t.Skip("race load test: skipped with -short")
	}
	exportTime := raceExportTime
	for round := 1; ; round++ {
		cancelled, completed := raceRound(t, exportTime)
		if t.Failed() || cancelled > 0 && completed > 0 {
			return
		}
		if round == raceRounds {
			t.Fatalf("the DELETEs must land on both sides of completion: %d cancelled, %d completed, with jobs of %s in round %d", cancelled, completed, exportTime, round)
		}
		t.Logf("round %d: the DELETEs all landed on one side of completion (%d cancelled, %d completed): again with jobs of %s", round, cancelled, completed, 2*exportTime)
		exportTime *= 2
	}
}

// raceRound runs raceJobs jobs of exportTime on a new server and checks each ended one way only; it returns
// how many were cancelled and how many completed first.
func raceRound(t *testing.T, exportTime time.Duration) (cancelled, completed int) {
	t.Helper()
	aimTo := exportTime * 6 / 5 // DELETEs sent in this window land on both sides of completion
	srv, err := NewServer(Config{Clock: preemptedClock{}, ExportDuration: exportTime, Retention: time.Hour, MaxJobsPerUser: raceJobs})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close() // each round's server, once its round is judged
	ctx, cancel := context.WithTimeout(context.Background(), raceDeadline)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: 4 * raceParallel}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	base := ts.URL + "/fhir"

	do := func(method, u string, header map[string]string) (int, []byte, error) {
		r, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			return 0, nil, err
		}
		r.Header.Set("Authorization", "Bearer "+DemoTokenA)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		resp, err := client.Do(r)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}

	var (
		mu     sync.Mutex
		errs   []string
		jobs   []*raceJob
		failed = func(format string, args ...any) {
			mu.Lock()
			errs = append(errs, fmt.Sprintf(format, args...))
			mu.Unlock()
		}
	)
	run := func() {
		r, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/$export?_type=Patient", nil)
		if err != nil {
			failed("kick-off: %v", err)
			return
		}
		r.Header.Set("Authorization", "Bearer "+DemoTokenA)
		r.Header.Set("Prefer", "respond-async")
		r.Header.Set("Cache-Control", "no-cache") // a job of its own, not an identical running one (reuse.go)
		resp, err := client.Do(r)
		if err != nil {
			failed("kick-off: %v", err)
			return
		}
		resp.Body.Close()
		kicked := time.Now()
		if code := resp.StatusCode; code != http.StatusAccepted {
			failed("kick-off: expected 202, got %d", code)
			return
		}
		j := &raceJob{poll: resp.Header.Get("Content-Location")}
		var pollMu sync.Mutex
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for ctx.Err() == nil {
					code, body, err := do(http.MethodGet, j.poll, nil)
					if err != nil {
						failed("poll %s: %v", j.poll, err)
						return
					}
					pollMu.Lock()
					j.polls = append(j.polls, racePoll{code: code, received: time.Now()})
					if code == http.StatusOK && j.manifest == nil {
						j.manifest = body
					}
					pollMu.Unlock()
					if code != http.StatusAccepted {
						return // settled: 200 complete or 404 cancelled
					}
				}
			})
		}
		wg.Go(func() {
			aim := time.Duration(rand.Int64N(int64(aimTo)))
			timer := time.NewTimer(time.Until(kicked.Add(aim)))
			defer timer.Stop()
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
			sent := time.Now()
			code, body, err := do(http.MethodDelete, j.poll, nil)
			if err != nil {
				failed("delete %s: %v", j.poll, err)
				return
			}
			if code != http.StatusAccepted && code != http.StatusNotFound {
				failed("delete %s: expected 202 or 404, got %d %s", j.poll, code, body)
			}
			pollMu.Lock()
			j.deleteCode, j.deleteSent = code, sent
			pollMu.Unlock()
		})
		wg.Wait()
		mu.Lock()
		jobs = append(jobs, j)
		mu.Unlock()
	}

	sem := make(chan struct{}, raceParallel)
	var all sync.WaitGroup
	for range raceJobs {
		sem <- struct{}{}
		all.Go(func() {
			defer func() { <-sem }()
			run()
		})
	}
	all.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the race load did not finish within %s", raceDeadline)
	}
	for _, e := range errs {
		t.Error(e)
	}

	completedBeforeDelete := 0
	for _, j := range jobs {
		saw200 := false
		var first200 time.Time
		for _, p := range j.polls {
			if p.code == http.StatusOK {
				if !saw200 || p.received.Before(first200) {
					first200 = p.received
				}
				saw200 = true
			}
		}
		// After the load, a poll and a file download agree with the DELETE's answer.
		code, body, err := do(http.MethodGet, j.poll, nil)
		if err != nil {
			t.Fatalf("final poll %s: %v", j.poll, err)
		}
		switch j.deleteCode {
		case http.StatusAccepted:
			cancelled++
			if saw200 {
				t.Errorf("job %s: a poll answered 200 (first at %s), yet the DELETE sent at %s answered 202 cancelled",
					j.poll, first200.Format("15:04:05.000000"), j.deleteSent.Format("15:04:05.000000"))
				var m struct{ Output []struct{ URL string } }
				if json.Unmarshal(j.manifest, &m) == nil && len(m.Output) > 0 {
					if c, _, _ := do(http.MethodGet, m.Output[0].URL, map[string]string{"Accept": "application/fhir+ndjson"}); c == http.StatusOK {
						t.Errorf("job %s: cancelled, yet its output file %s still downloads", j.poll, m.Output[0].URL)
					}
				}
			}
			if code != http.StatusNotFound {
				t.Errorf("job %s: cancelled (202), then a poll answered %d", j.poll, code)
			}
		case http.StatusNotFound:
			completed++
			if code != http.StatusOK || !strings.Contains(string(body), `"output"`) {
				t.Errorf("job %s: the DELETE found it finished (404), then a poll answered %d %s", j.poll, code, body)
			}
			if saw200 && first200.Before(j.deleteSent) {
				completedBeforeDelete++
			}
		}
	}
	t.Logf("%d jobs of %s: %d cancelled, %d completed first (%d of them seen complete by a poll before the DELETE was sent)",
		len(jobs), exportTime, cancelled, completed, completedBeforeDelete)
	if len(jobs) != raceJobs {
		t.Fatalf("expected %d jobs to run, %d did", raceJobs, len(jobs))
	}
	return cancelled, completed
}
