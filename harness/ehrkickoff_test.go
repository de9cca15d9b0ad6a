package harness

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// ehrGroup is the group the EHR-like servers below export; the reference server's own $export serves it.
const ehrGroup = "11ec-d16a-c763b73e-98e8-a31715e6a2bf"

// groupExportLimited answers as an EHR's Group-level Bulk Data server that limits kick-offs: a kick-off at
// Group/<ehrGroup>/$export is served by inner's system-level $export unless refuse, told the token and when
// that token's jobs were kicked off (and not deleted since), answers it instead; refused counts the refusals.
func groupExportLimited(inner http.Handler, refuse func(w http.ResponseWriter, kickoffs []time.Time) bool, refused *atomic.Int64) http.Handler {
	var mu sync.Mutex
	jobs := map[string]map[string]time.Time{} // token -> polling location -> kick-off time
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if r.Method == http.MethodDelete {
			mu.Lock()
			delete(jobs[token], "http://"+r.Host+r.URL.RequestURI())
			mu.Unlock()
		}
		if !strings.HasSuffix(r.URL.Path, "/Group/"+ehrGroup+"/$export") {
			inner.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		var kicked []time.Time
		for _, at := range jobs[token] {
			kicked = append(kicked, at)
		}
		if refuse(w, kicked) {
			refused.Add(1)
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = strings.TrimSuffix(r.URL.Path, "/Group/"+ehrGroup+"/$export") + "/$export"
		r2.URL.RawPath = ""
		rec := &headerRecorder{ResponseWriter: w}
		inner.ServeHTTP(rec, r2)
		if loc := w.Header().Get("Content-Location"); rec.code == http.StatusAccepted && loc != "" {
			if jobs[token] == nil {
				jobs[token] = map[string]time.Time{}
			}
			jobs[token][loc] = time.Now()
		}
	})
}

// headerRecorder passes a response through and keeps its status.
type headerRecorder struct {
	http.ResponseWriter
	code int
}

func (h *headerRecorder) WriteHeader(code int) {
	h.code = code
	h.ResponseWriter.WriteHeader(code)
}

// throttled writes the refusal both EHRs document, and FHIR Works on AWS sends (kickoff_throttle_test.go): 429
// and an OperationOutcome of code throttled.
func throttled(w http.ResponseWriter, retryAfter, says string) {
	if retryAfter != "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	w.Header().Set("Content-Type", "application/fhir+json")
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"throttled","diagnostics":"` + says + `"}]}`))
}

// Oracle Health's Millennium (fhir.cerner.com, content/millennium/bulk-data/group-export.md): "Only one bulk
// export request for a client application and tenant combination may be in-progress at a single time", a
// kick-off meanwhile answered 429, code throttled, with no Retry-After documented. BDA2 "Bulk Data Kick-off
// Request" allows it (429 with Retry-After, SHOULD). Every kick-off of the run is waited out until the
// client's job before it is over, and the export feature passes at the Group level.
func TestAServerThatRunsOneExportOfAClientAtATimeIsWaitedOut(t *testing.T) {
	const duration = time.Second
	var refused atomic.Int64
	h := groupExportLimited(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "jobs", ExportDuration: duration}),
		func(w http.ResponseWriter, kicked []time.Time) bool {
			for _, at := range kicked {
				if time.Since(at) < duration {
					throttled(w, "", "There is already an export job in-progress for the client and tenant combination")
					return true
				}
			}
			return false
		}, &refused)
	res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Features: []string{"export"},
		ExportKickoff: "Group/" + ehrGroup + "/$export"})
	if err != nil || !res.Passed || len(res.Findings.Skips()) > 0 {
		t.Fatalf("passed %v, skips %v, err %v\n%s", res.Passed, res.Findings.Skips(), err, out)
	}
	if refused.Load() == 0 {
		t.Fatal("no kick-off was refused: the test proves nothing")
	}
}

// Epic (Cumulus ETL's vendor notes, smart-on-fhir/cumulus-etl docs: "Epic limits how frequently you can
// perform a bulk export for the same group & client ID. By default, once every 24 hours", refusing "Request
// not allowed: The Client requested this Group too recently"). The run kicks off many exports of one group,
// its own choice; a kick-off throttled for longer than MAX_WAIT was a failure of EXP-KICKOFF and of every
// scenario after it, blaming the server for the IG's own answer (BDA2: 429 with Retry-After). It is a skip
// naming the throttling, with or without a Retry-After, and nothing fails.
func TestAKickoffThrottledPastMaxWaitIsSkippedNotFailed(t *testing.T) {
	for _, retryAfter := range []string{"86400", ""} {
		t.Run("Retry-After "+retryAfter, func(t *testing.T) {
			t.Parallel()
			var refused atomic.Int64
			window := 0
			h := groupExportLimited(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"}),
				func(w http.ResponseWriter, kicked []time.Time) bool {
					if window++; window == 1 {
						return false // the first kick-off of the window, the preflight's or a scenario's
					}
					throttled(w, retryAfter, "Request not allowed: The Client requested this Group too recently.")
					return true
				}, &refused)
			res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF,@EXP-POLL-202,@EXP-POLL-200,@EXP-CANCEL",
				ExportKickoff: "Group/" + ehrGroup + "/$export", MaxWait: 3 * time.Second})
			if err != nil || len(res.Failures) > 0 {
				t.Fatalf("want no failure, got %v, err %v\n%s", failedRequirements(res), err, out)
			}
			skips := res.Findings.Skips()
			if len(skips) == 0 || refused.Load() == 0 {
				t.Fatalf("want the throttled scenarios skipped, got skips %v after %d refusals\n%s", skips, refused.Load(), out)
			}
			for _, s := range skips {
				for _, want := range []string{"throttled the kick-off", "429 Too Many Requests", "too recently", "MAX_WAIT 3s"} {
					if !strings.Contains(s.Message, want) {
						t.Errorf("skip of %s lacks %q: %s", s.Scenario, want, s.Message)
					}
				}
			}
		})
	}
}
