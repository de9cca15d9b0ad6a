package harness

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// jobLedger watches the export traffic between the harness and a server: every kick-off and its answer,
// every DELETE, and how many of the harness's jobs were open at once (kicked off, and neither seen complete
// nor deleted by their owner).
type jobLedger struct {
	inner http.Handler
	// before may answer a request itself (true) instead of the server, e.g. with a 429.
	before func(w http.ResponseWriter, r *http.Request, kickoffs int) bool

	mu        sync.Mutex
	kickoffs  int
	locations map[string]string // polling location -> the token of the user who got it
	order     []string          // polling locations in the order the kick-offs got them
	deletes   []deletion
	open      map[string]bool
	maxOpen   int
}

type deletion struct{ location, token string }

func newJobLedger(inner http.Handler) *jobLedger {
	return &jobLedger{inner: inner, locations: map[string]string{}, open: map[string]bool{}}
}

func (l *jobLedger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	kickoff := strings.HasSuffix(r.URL.Path, "/$export")
	if kickoff {
		l.mu.Lock()
		l.kickoffs++
		n := l.kickoffs
		l.mu.Unlock()
		if l.before != nil && l.before(w, r, n) {
			return
		}
	}
	rec := httptest.NewRecorder()
	l.inner.ServeHTTP(rec, r)
	location := "http://" + r.Host + r.URL.RequestURI()
	l.mu.Lock()
	switch {
	case kickoff && rec.Code == http.StatusAccepted:
		loc := rec.Header().Get("Content-Location")
		if _, seen := l.locations[loc]; !seen {
			l.order = append(l.order, loc)
		}
		l.locations[loc] = token
		l.open[loc] = true
		l.maxOpen = max(l.maxOpen, len(l.open))
	case r.Method == http.MethodDelete:
		l.deletes = append(l.deletes, deletion{location, token})
		if l.locations[location] == token {
			delete(l.open, location)
		}
	case r.Method == http.MethodGet && rec.Code == http.StatusOK && l.locations[location] != "":
		delete(l.open, location)
	}
	l.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// A server that reuses the job of an identical kick-off (HAPI's default; the reference server in fut) still
// gives every scenario a running job of its own: no scenario is skipped, every kick-off gets a new job, and
// every job the harness cancels is one its own user kicked off. Also when the server ignores Cache-Control
// (reuse on other grounds): the distinct _since of each kick-off then keeps the jobs apart.
func TestAReusingServerGivesEveryScenarioItsOwnJob(t *testing.T) {
	for _, ignoreNoCache := range []bool{false, true} {
		name := "honours no-cache"
		if ignoreNoCache {
			name = "ignores no-cache"
		}
		t.Run(name, func(t *testing.T) {
			server := refserverHandler(t, refserver.Config{Profile: refserver.ProfileFUT})
			assertReuses(t, server)
			inner := server
			if ignoreNoCache {
				inner = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					r.Header.Del("Cache-Control")
					server.ServeHTTP(w, r)
				})
			}
			ledger := newJobLedger(inner)
			res, out, err := runAgainst(t, ledger, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Features: []string{"export"}})
			if err != nil || !res.Passed {
				t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out)
			}
			if skips := res.Findings.Skips(); len(skips) != 0 {
				t.Errorf("no scenario may be skipped against a reusing server, got %+v", skips)
			}
			ledger.mu.Lock()
			defer ledger.mu.Unlock()
			if len(ledger.order) != ledger.kickoffs {
				t.Errorf("%d kick-offs got %d distinct jobs: the server reused a job", ledger.kickoffs, len(ledger.order))
			}
			for _, d := range ledger.deletes {
				owner, ok := ledger.locations[d.location]
				if !ok {
					t.Errorf("DELETE %s: not a job any kick-off of this run got", d.location)
				}
				if d.token == refserver.DemoTokenA && owner != refserver.DemoTokenA {
					t.Errorf("user A cancelled %s, which is not user A's", d.location)
				}
			}
			if len(ledger.deletes) == 0 {
				t.Errorf("the run cancelled nothing: the cancel scenarios did not run")
			}
		})
	}
}

// assertReuses proves the server under test does reuse identical kick-offs, or the test above proves nothing.
func assertReuses(t *testing.T, h http.Handler) {
	t.Helper()
	var locations []string
	for range 2 {
		req := httptest.NewRequest(http.MethodGet, "/fhir/$export?_outputFormat=application/fhir%2Bndjson", nil)
		req.Header.Set("Authorization", "Bearer "+refserver.DemoTokenA)
		req.Header.Set("Prefer", "respond-async")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			t.Fatalf("kick-off: %d %s", rec.Code, rec.Body)
		}
		locations = append(locations, rec.Header().Get("Content-Location"))
	}
	if locations[0] != locations[1] {
		t.Fatalf("the server must reuse an identical kick-off's job for this test to mean anything: %v", locations)
	}
}

// An export that never finishes fails every scenario that waits on it, with one cause for the scenarios that
// share the user's completed export: one job, polled by the pool, given up once.
func TestAnExportThatNeverFinishesFailsEveryDependentScenarioWithOneCause(t *testing.T) {
	ledger := newJobLedger(refserverHandler(t, refserver.Config{ExportDuration: time.Hour}))
	res, out, err := runAgainst(t, ledger, Config{Token: refserver.DemoTokenA, MaxWait: 2 * time.Second,
		Tags: "@EXP-POLL-200,@EXP-OUTPUT,@EXP-DELETE-DONE"})
	if err != nil || res.Passed {
		t.Fatalf("want a failed run, got passed=%v err=%v\n%s", res.Passed, err, out)
	}
	causes := map[string]string{}
	for _, f := range res.Failures {
		first, _, _ := strings.Cut(f.Message, "\n")
		causes[f.Requirement] = first
		if !strings.Contains(first, "gave up waiting") {
			t.Errorf("%s failed on %q, want the give-up", f.Requirement, first)
		}
	}
	if len(res.Failures) != 3 {
		t.Fatalf("want the 3 scenarios failed, got %+v\n%s", res.Failures, out)
	}
	if causes["EXP-POLL-200"] != causes["EXP-OUTPUT"] {
		t.Errorf("the two scenarios that read the shared export must fail with one cause:\n%s\n%s", causes["EXP-POLL-200"], causes["EXP-OUTPUT"])
	}
	if causes["EXP-DELETE-DONE"] == causes["EXP-OUTPUT"] {
		t.Errorf("the scenario that deletes a completed export must wait on a job of its own")
	}
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if ledger.kickoffs != 2 {
		t.Errorf("want 2 kick-offs (the shared export and DELETE-DONE's own), got %d", ledger.kickoffs)
	}
}

// A server that limits jobs answers a kick-off 429 + Retry-After: the harness waits it out and sends the
// kick-off again, and the scenario passes.
func TestAKickoffAnswered429IsWaitedOutAndSentAgain(t *testing.T) {
	ledger := newJobLedger(refserverHandler(t, refserver.Config{}))
	ledger.before = func(w http.ResponseWriter, _ *http.Request, n int) bool {
		if n > 2 {
			return false
		}
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"throttled","diagnostics":"too many jobs"}]}`))
		return true
	}
	res, out, err := runAgainst(t, ledger, Config{Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF,@EXP-KICKOFF-POST"})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out)
	}
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if ledger.kickoffs != 4 || len(ledger.order) != 2 {
		t.Errorf("want 2 kick-offs answered 429 and sent again, got %d kick-offs and %d jobs", ledger.kickoffs, len(ledger.order))
	}
}

// MAX_JOBS bounds the export jobs the harness keeps open on the server, pooled ones included.
func TestMaxJobsBoundsTheJobsInFlight(t *testing.T) {
	for _, maxJobs := range []int64{1, 2} {
		ledger := newJobLedger(refserverHandler(t, refserver.Config{}))
		res, out, err := runAgainst(t, ledger, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Features: []string{"export"}, MaxJobs: maxJobs})
		if err != nil || !res.Passed {
			t.Fatalf("MAX_JOBS=%d: passed=%v err=%v\n%s", maxJobs, res.Passed, err, out)
		}
		ledger.mu.Lock()
		if ledger.maxOpen > int(maxJobs) || ledger.maxOpen == 0 {
			t.Errorf("MAX_JOBS=%d: %d jobs were open at once", maxJobs, ledger.maxOpen)
		}
		ledger.mu.Unlock()
	}
}

// A report that never finishes: the two scenarios that wait on a report, each on a job the pool started
// ahead, together cost one MAX_WAIT, counted from the jobs' start. The one that runs second finds MAX_WAIT
// already spent: it polls once and gives up.
func TestReportsThatNeverFinishCostOneMaxWaitInAll(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"rjs-never-finishes"}})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, MaxWait: 2 * time.Second,
		Tags: "@RJS-TERMINAL,@RJS-STRUCTURE && ~@RJS-FULLURL"})
	if err != nil || res.Passed || len(res.Failures) != 2 {
		t.Fatalf("want the 2 waiting scenarios failed, got passed=%v err=%v failures=%+v\n%s", res.Passed, err, res.Failures, out)
	}
	single := 0
	for _, f := range res.Failures {
		if !strings.Contains(f.Message, "gave up waiting") {
			t.Errorf("%s failed on %q, want the give-up", f.Requirement, f.Message)
		}
		if strings.Contains(f.Message, "poll history (1 polls)") {
			single++
		}
	}
	if single != 1 {
		t.Errorf("want the second scenario to give up after its one poll, MAX_WAIT spent since its job started; failures:\n%+v", res.Failures)
	}
}

// Ctrl-C ends the run with jobs still running: they are deleted all the same, with a context of the cleanup's
// own since the run's is cancelled.
func TestAnInterruptedRunCancelsThePooledJobs(t *testing.T) {
	server := refserverHandler(t, refserver.Config{Profile: refserver.ProfileFUT, ExportDuration: time.Hour})
	ledger := newJobLedger(server)
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	// Ctrl-C once both pooled exports are running on the server.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ledger.ServeHTTP(w, r)
		ledger.mu.Lock()
		defer ledger.mu.Unlock()
		if len(ledger.order) == 2 {
			interrupt()
		}
	})
	res, out, err := runAgainstContext(ctx, t, h, Config{Token: refserver.DemoTokenA, MaxWait: time.Minute,
		Tags: "@EXP-POLL-200,@EXP-OUTPUT,@EXP-DELETE-DONE"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want the run interrupted, got passed=%v err=%v\n%s", res.Passed, err, out)
	}
	assertEveryJobDeletedAndNoneRunning(t, ledger, server, 2)
}

// assertEveryJobDeletedAndNoneRunning: the run kicked off want jobs, each got a DELETE with its owner's token,
// and none is running on the server (a poll with its owner's token answers 404 cancelled, not 202).
func assertEveryJobDeletedAndNoneRunning(t *testing.T, ledger *jobLedger, server http.Handler, want int) {
	t.Helper()
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if len(ledger.order) != want {
		t.Fatalf("want %d jobs kicked off, got %d: %v", want, len(ledger.order), ledger.order)
	}
	for _, loc := range ledger.order {
		owner := ledger.locations[loc]
		deleted := false
		for _, d := range ledger.deletes {
			deleted = deleted || d.location == loc && d.token == owner
		}
		if !deleted {
			t.Errorf("%s: no DELETE with its owner's token among the run's DELETEs %+v", loc, ledger.deletes)
		}
		req := httptest.NewRequest(http.MethodGet, loc, nil)
		req.Header.Set("Authorization", "Bearer "+owner)
		rec := httptest.NewRecorder()
		server.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s after the run: want 404 (cancelled), got %d (202: still running) %s", loc, rec.Code, rec.Body)
		}
	}
}

// The shared completed export is deleted only once the last scenario has read it, and a cleanup that fails
// changes nothing: the run passes, with one line on stderr per DELETE that failed, no secret in it, and the
// cleanup waits EndRunWait at most, even on a server that never answers (REQUEST_TIMEOUT is ten minutes here,
// past the hang limit: a cleanup that waited REQUEST_TIMEOUT would hang the run).
func TestTheSharedExportIsDeletedAfterItsLastReaderAndAFailedCleanupChangesNothing(t *testing.T) {
	for _, c := range []struct {
		name   string
		delete func(w http.ResponseWriter, r *http.Request)
		line   string
	}{
		{"answered 500", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Echo", r.Header.Get("Authorization"))
			http.Error(w, "no: "+r.Header.Get("Authorization"), http.StatusInternalServerError)
		}, "answered 500 Internal Server Error"},
		{"never answered", func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "no answer within EndRunWait"},
	} {
		t.Run(c.name, func(t *testing.T) {
			server := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData})
			var mu sync.Mutex
			var requests []string // method and request URI, in the order the server got them
			polled := map[string]bool{}
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req := r.Method + " " + r.URL.RequestURI()
				mu.Lock()
				requests = append(requests, req)
				wasPolled := polled[r.URL.RequestURI()]
				if r.Method == http.MethodGet {
					polled[r.URL.RequestURI()] = true
				}
				mu.Unlock()
				// The DELETE of a job that was polled: not preflight's, which cancels its kick-off at once.
				if r.Method == http.MethodDelete && wasPolled {
					c.delete(w, r)
					return
				}
				server.ServeHTTP(w, r)
			})
			var res Result
			var out string
			var err error
			runOrHang(t, hangLimit, func() {
				res, out, err = runAgainst(t, h, Config{Token: refserver.DemoTokenA, Profile: "bulkdata", RequestTimeout: 2 * hangLimit, Tags: "@EXP-POLL-200,@EXP-OUTPUT"})
			})
			if err != nil || !res.Passed || len(res.Failures) != 0 || res.Scenarios != 2 {
				t.Fatalf("want the 2 scenarios passed whatever the cleanup met, got passed=%v err=%v failures=%+v\n%s", res.Passed, err, res.Failures, out)
			}
			var lines []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "could not delete export") {
					lines = append(lines, l)
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], c.line) {
				t.Errorf("want one line on stderr saying %q for the one DELETE that failed, got %q\n%s", c.line, lines, out)
			}
			if strings.Contains(out, refserver.DemoTokenA) {
				t.Errorf("the token was written:\n%s", out)
			}
			mu.Lock()
			defer mu.Unlock()
			// The run's last request deletes the shared export, after every poll of it and every download.
			n := len(requests)
			last := requests[n-1]
			job, isDelete := strings.CutPrefix(last, http.MethodDelete+" ")
			if !isDelete || !polled[job] || !slices.Contains(requests, http.MethodGet+" "+job) {
				t.Fatalf("want the run's last request to be the DELETE of the shared export it polled, got %v", requests)
			}
			for _, r := range requests[:n-1] {
				if r == last {
					t.Errorf("the shared export was deleted before the end of the run: %v", requests)
				}
			}
		})
	}
}
