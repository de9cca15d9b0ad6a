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
