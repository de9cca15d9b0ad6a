package harness

import (
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A server that throttles every status request past MAX_WAIT (BDA2 "Bulk Data Status Request": a client
// polling too frequently SHOULD be answered 429 with a Retry-After) keeps the harness from ever seeing the
// export's answer; it broke no rule, since the harness polled as it asked. Here, as SMART's reference server
// answers a client over its rate limit (60 requests a minute from one address), the Retry-After is an epoch
// time read as delay-seconds: decades. Every scenario that needed an answer of the polling location is
// skipped, naming the 429, never failed; the kick-offs, answered, are judged as ever.
func TestStatusRequestsThrottledPastMaxWaitAreSkippedNotFailed(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, ExportDuration: time.Second})
	var mu sync.Mutex
	locations := map[string]bool{}
	var throttledPolls atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		known := locations["http://"+r.Host+r.URL.RequestURI()]
		mu.Unlock()
		if known && r.Method == http.MethodGet {
			throttledPolls.Add(1)
			throttled(w, "1764880000", "Too many requests, please try again later")
			return
		}
		inner.ServeHTTP(w, r)
		if loc := w.Header().Get("Content-Location"); loc != "" && strings.HasSuffix(r.URL.Path, "$export") {
			mu.Lock()
			locations[loc] = true
			mu.Unlock()
		}
	})
	res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
		Features: []string{"export"}, MaxWait: 3 * time.Second})
	if err != nil || len(res.Failures) != 0 {
		t.Fatalf("want no failure, got err=%v failures=%+v\n%s", err, res.Failures, tailOf(out))
	}
	skips := res.Findings.Skips()
	if throttledPolls.Load() == 0 || len(skips) == 0 {
		t.Fatalf("want the status requests throttled and their scenarios skipped, got %d throttled, skips %+v\n%s", throttledPolls.Load(), skips, tailOf(out))
	}
	named := 0
	for _, f := range skips {
		if strings.Contains(f.Message, "throttled the export's status requests") && strings.Contains(f.Message, `Retry-After "1764880000"`) {
			named++
		}
	}
	if named == 0 {
		t.Errorf("no skip names the throttled status requests and their Retry-After: %+v", skips)
	}
	for _, want := range []string{"EXP-POLL-200", "EXP-OUTPUT", "EXP-POLL-202"} {
		found := false
		for _, f := range skips {
			found = found || f.Requirement == want
		}
		if !found {
			t.Errorf("%s not among the skipped requirements %+v", want, skips)
		}
	}
}

// Throttling is never a failure, nor a pass: a server that throttles every request of the scenarios past
// MAX_WAIT (its CapabilityStatement answered, so that the preflight lets the run go on) leaves every scenario
// skipped or not applicable in every profile, none failed, and none passed on a 429 taken for the refusal a
// step asks for (a 429 is a 4xx: an unknown job's "client error", a user kept out).
func TestAServerThrottlingEveryRequestFailsAndPassesNothing(t *testing.T) {
	for _, p := range []refserver.Profile{refserver.ProfileFUT, refserver.ProfileBulkData, refserver.ProfileHAPI80} {
		t.Run(string(p), func(t *testing.T) {
			inner := refserverHandler(t, refserver.Config{Profile: p, ExportDuration: time.Second, ReportDuration: time.Second})
			var refused atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/metadata") || strings.Contains(r.URL.Path, "/.well-known/") {
					inner.ServeHTTP(w, r)
					return
				}
				refused.Add(1)
				throttled(w, "3600", "Rate limit exceeded")
			})
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, MaxWait: 2 * time.Second})
			if err != nil || len(res.Failures) != 0 {
				t.Fatalf("want no failure, got err=%v failures=%+v\n%s", err, res.Failures, tailOf(out))
			}
			if refused.Load() == 0 {
				t.Fatalf("no request was throttled\n%s", tailOf(out))
			}
			if passed := regexp.MustCompile(`\b[A-Z0-9-]+\s+(MUST|SHOULD|MAY)\s+pass\b`).FindAllString(out, -1); len(passed) != 0 || res.Passed {
				t.Errorf("requirements passed on 429s %q (run passed: %v):\n%s", passed, res.Passed, tailOf(out))
			}
		})
	}
}

// A server that throttles every DELETE past MAX_WAIT cancels nothing the run can see: EXP-CANCEL,
// EXP-CANCELLED-404 and EXP-DELETE-DONE neither fail nor pass on the 429, in any profile.
func TestAThrottledDeleteIsNeitherACancelNorARefusal(t *testing.T) {
	for _, p := range []refserver.Profile{refserver.ProfileFUT, refserver.ProfileBulkData} {
		t.Run(string(p), func(t *testing.T) {
			inner := refserverHandler(t, refserver.Config{Profile: p, ExportDuration: time.Second})
			var refused atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete {
					refused.Add(1)
					throttled(w, "3600", "Rate limit exceeded")
					return
				}
				inner.ServeHTTP(w, r)
			})
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
				Tags: "@EXP-CANCEL,@EXP-CANCELLED-404,@EXP-DELETE-DONE", MaxWait: 3 * time.Second})
			if err != nil || len(res.Failures) != 0 {
				t.Fatalf("want no failure, got err=%v failures=%+v\n%s", err, res.Failures, tailOf(out))
			}
			if refused.Load() == 0 {
				t.Fatalf("no DELETE was sent\n%s", tailOf(out))
			}
			for _, req := range []string{"EXP-CANCEL", "EXP-CANCELLED-404", "EXP-DELETE-DONE"} {
				if regexp.MustCompile(`\b` + req + `\s+MUST\s+pass\b`).MatchString(out) {
					t.Errorf("%s passed on a throttled DELETE:\n%s", req, tailOf(out))
				}
			}
		})
	}
}
