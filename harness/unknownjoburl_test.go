package harness

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// foreignPolling serves the reference server's export jobs at the polling locations of another server: a
// kick-off's Content-Location becomes location(base, id), and a request to such a location reaches the
// reference server as its own poll of that job. It records the polling requests in that form for an id no
// kick-off got (the unknown-job requests) and every request in no form the server serves (strays).
type foreignPolling struct {
	inner    http.Handler
	location func(base, id string) string
	jobOf    func(r *http.Request) (id string, ok bool) // ok: a request in the form; id "" when it names no job

	mu      sync.Mutex
	unknown []string
	strays  []string
}

func (f *foreignPolling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/$export"):
		rec := httptest.NewRecorder()
		f.inner.ServeHTTP(rec, r)
		if loc, err := url.Parse(rec.Header().Get("Content-Location")); err == nil && loc.Query().Get("_jobId") != "" {
			base := strings.TrimSuffix(loc.Scheme+"://"+loc.Host+loc.Path, "/$export-poll-status")
			rec.Header().Set("Content-Location", f.location(base, loc.Query().Get("_jobId")))
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	case strings.HasSuffix(p, "/metadata"), strings.Contains(p, "/Binary/"):
		f.inner.ServeHTTP(w, r)
		return
	}
	id, ok := f.jobOf(r)
	f.mu.Lock()
	switch {
	case !ok:
		f.strays = append(f.strays, r.Method+" "+r.URL.String())
	case id == "":
		f.unknown = append(f.unknown, r.URL.String())
		id = "00000000-0000-4000-8000-000000000000" // no job of the reference server's
	}
	f.mu.Unlock()
	if !ok {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("<html><body>Cannot GET " + r.URL.Path + "</body></html>"))
		return
	}
	poll := r.Clone(r.Context())
	poll.URL.Path, poll.URL.RawPath, poll.URL.RawQuery = refserver.DefaultBasePath+"/$export-poll-status", "", "_jobId="+url.QueryEscape(id)
	poll.RequestURI = ""
	f.inner.ServeHTTP(w, poll)
}

// In bulkdata the unknown-job request is the server's own polling location with the job id replaced, found as
// the part in which two kick-offs' locations differ, whatever its form: IBM's and OpenEMR's
// $bulkdata-status?job=<id> (the last path segment is the operation there, not the job), Microsoft's
// _operations/export/<n> (a short number: another small one may be a job of the run's own), or a path id
// next to a query parameter whose name holds "id" (_provider), which is no job id.
func TestBulkdataFindsTheJobIDInTheServersOwnPollingForm(t *testing.T) {
	type form struct {
		location func(base, id string) string
		jobOf    func(issued map[string]string) func(r *http.Request) (string, bool)
		unknown  func(u *url.URL) bool // the shape of the unknown-job request
	}
	byName := func(issued map[string]string, name string) (string, bool) {
		for id, n := range issued {
			if n == name {
				return id, true
			}
		}
		return "", false
	}
	var mu sync.Mutex
	forms := map[string]form{
		"$bulkdata-status?job=<id>": {
			location: func(base, id string) string { return base + "/$bulkdata-status?job=" + url.QueryEscape(id) },
			jobOf: func(issued map[string]string) func(r *http.Request) (string, bool) {
				return func(r *http.Request) (string, bool) {
					if !strings.HasSuffix(r.URL.Path, "/$bulkdata-status") {
						return "", false
					}
					id := r.URL.Query().Get("job")
					mu.Lock()
					defer mu.Unlock()
					if _, ok := issued[id]; !ok {
						return "", true
					}
					return id, true
				}
			},
			unknown: func(u *url.URL) bool {
				return strings.HasSuffix(u.Path, "/$bulkdata-status") && u.Query().Get("job") != ""
			},
		},
		"_operations/export/<n>": {
			jobOf: func(issued map[string]string) func(r *http.Request) (string, bool) {
				return func(r *http.Request) (string, bool) {
					n, ok := strings.CutPrefix(r.URL.Path, refserver.DefaultBasePath+"/_operations/export/")
					if _, err := strconv.ParseUint(n, 10, 64); !ok || err != nil {
						return "", false
					}
					mu.Lock()
					defer mu.Unlock()
					id, _ := byName(issued, n)
					return id, true
				}
			},
			unknown: func(u *url.URL) bool {
				n, err := strconv.ParseUint(u.Path[strings.LastIndex(u.Path, "/")+1:], 10, 64)
				return err == nil && n >= 100_000
			},
		},
		"bulkstatus/<id>?_provider=acme": {
			location: func(base, id string) string { return base + "/bulkstatus/" + id + "?_provider=acme" },
			jobOf: func(issued map[string]string) func(r *http.Request) (string, bool) {
				return func(r *http.Request) (string, bool) {
					id, ok := strings.CutPrefix(r.URL.Path, refserver.DefaultBasePath+"/bulkstatus/")
					if !ok || r.URL.RawQuery != "_provider=acme" {
						return "", false
					}
					mu.Lock()
					defer mu.Unlock()
					if _, known := issued[id]; !known {
						return "", true
					}
					return id, true
				}
			},
			unknown: func(u *url.URL) bool { return u.RawQuery == "_provider=acme" },
		},
	}
	for name, f := range forms {
		t.Run(name, func(t *testing.T) {
			issued := map[string]string{} // the reference server's job id -> its name in the form
			location := f.location
			if location == nil { // numbered in the order of the kick-offs
				location = func(base, id string) string {
					mu.Lock()
					defer mu.Unlock()
					issued[id] = strconv.Itoa(len(issued) + 1)
					return base + "/_operations/export/" + issued[id]
				}
			} else {
				inner := location
				location = func(base, id string) string {
					mu.Lock()
					defer mu.Unlock()
					issued[id] = id
					return inner(base, id)
				}
			}
			server := &foreignPolling{inner: refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), location: location, jobOf: f.jobOf(issued)}
			res, out, err := runAgainst(t, server, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB,@EXP-POLL-200"})
			if err != nil || !res.Passed || len(res.Failures) != 0 || len(res.Findings.Skips()) != 0 {
				t.Fatalf("passed=%v failures=%v skips=%+v err=%v\n%s", res.Passed, failedRequirements(res), res.Findings.Skips(), err, out)
			}
			server.mu.Lock()
			defer server.mu.Unlock()
			if len(server.strays) > 0 {
				t.Errorf("requests to no polling location of the server: %q", server.strays)
			}
			if len(server.unknown) != 1 {
				t.Fatalf("want one poll of an unknown job in the server's form, got %q", server.unknown)
			}
			u, _ := url.Parse(server.unknown[0])
			if !f.unknown(u) {
				t.Errorf("the unknown job's location %s: not of the form %s with a new job id", server.unknown[0], name)
			}
		})
	}
}

// Where two kick-offs' polling locations differ in more than the job id, nothing tells which part is the id,
// and where a second kick-off gets no location, a location read alone shows it only as FUT's _jobId: the
// scenario is then skipped, saying why, rather than send a request for a guessed part and judge its answer
// as the unknown job's.
func TestBulkdataSkipsTheUnknownJobWhenNothingTellsTheJobID(t *testing.T) {
	var nonce atomic.Int64
	twoParts := &foreignPolling{
		inner: refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}),
		location: func(base, id string) string {
			return fmt.Sprintf("%s/status/%s?nonce=%d", base, id, nonce.Add(1))
		},
		jobOf: func(r *http.Request) (string, bool) {
			id, ok := strings.CutPrefix(r.URL.Path, refserver.DefaultBasePath+"/status/")
			return id, ok
		},
	}
	// A server that reuses its one live job: every kick-off while a job it handed out has not been deleted
	// answers that job's polling location, so the run has one location however many kick-offs it sends.
	oneJob := func(inner http.Handler) http.Handler {
		var mu sync.Mutex
		live := ""
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case strings.HasSuffix(r.URL.Path, "/$export") && live != "":
				w.Header().Set("Content-Location", live)
				w.WriteHeader(http.StatusAccepted)
				return
			case strings.HasSuffix(r.URL.Path, "/$export"):
				rec := httptest.NewRecorder()
				inner.ServeHTTP(rec, r)
				live = rec.Header().Get("Content-Location")
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				_, _ = w.Write(rec.Body.Bytes())
				return
			case r.Method == http.MethodDelete && live != "" && strings.HasSuffix(live, r.URL.RequestURI()):
				live = ""
			}
			inner.ServeHTTP(w, r)
		})
	}
	for _, tc := range []struct {
		name   string
		server http.Handler
		skip   string // "" : passes
	}{
		{"locations differing in two parts", twoParts, "differ in 2 places"},
		{"one location, [base]/bulkstatus/<id>", oneJob(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"})), "no other kick-off of user A"},
		{"one location, FUT's _jobId", oneJob(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData})), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, out, err := runAgainst(t, tc.server, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB"})
			// skipped, its one scenario leaves the run with nothing checked: not passed, and nothing failed
			if err != nil || !res.Passed && !(tc.skip != "" && res.NothingChecked) || len(res.Failures) != 0 {
				t.Fatalf("passed=%v failures=%v err=%v\n%s", res.Passed, failedRequirements(res), err, out)
			}
			skips := res.Findings.Skips()
			if tc.skip == "" {
				if len(skips) != 0 {
					t.Fatalf("want the scenario checked, got skips %+v\n%s", skips, out)
				}
				return
			}
			if len(skips) != 1 || skips[0].Requirement != "EXP-UNKNOWN-JOB" || !strings.Contains(skips[0].Message, tc.skip) {
				t.Fatalf("want EXP-UNKNOWN-JOB skipped, saying %q, got %+v\n%s", tc.skip, skips, out)
			}
			if !strings.Contains(skips[0].Message, check.ErrNoJobID.Error()) {
				t.Errorf("the skip must say the job id could not be told: %s", skips[0].Message)
			}
		})
	}
}

// With MAX_JOBS=1 the unknown-job scenario of bulkdata still gets its second polling location: it holds no job
// slot of its own while it waits for the other kick-off (it reads the shared export's location), so the wait
// ends when the shared export completes, not at MAX_WAIT. MAX_WAIT is past the hang limit here: a scenario
// that waited on a job slot it held itself would hang the run.
func TestBulkdataUnknownJobWithOneJobSlot(t *testing.T) {
	ledger := newJobLedger(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"}))
	var res Result
	var out string
	var err error
	runOrHang(t, hangLimit, func() {
		res, out, err = runAgainst(t, ledger, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB", MaxJobs: 1, MaxWait: 2 * hangLimit})
	})
	if err != nil || !res.Passed || len(res.Findings.Skips()) != 0 {
		t.Fatalf("passed=%v skips=%+v err=%v\n%s", res.Passed, res.Findings.Skips(), err, out)
	}
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	if ledger.maxOpen > 1 {
		t.Errorf("MAX_JOBS=1: %d jobs were open at once", ledger.maxOpen)
	}
}
