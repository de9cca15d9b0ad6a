package harness

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// counting wraps h and counts the answers with status.
func counting(h http.Handler, status int, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(&statusSpy{ResponseWriter: w, status: status, n: n}, r)
	})
}

type statusSpy struct {
	http.ResponseWriter
	status int
	n      *atomic.Int64
}

func (s *statusSpy) WriteHeader(code int) {
	if code == s.status {
		s.n.Add(1)
	}
	s.ResponseWriter.WriteHeader(code)
}

// Throttling is never a failure: the reference server started with its throttle option answers 429 +
// Retry-After to every poll that comes before the Retry-After it announced, and the suite still passes, in
// every profile, every scenario run, none failed, none skipped.
func TestAThrottlingServerPassesInEveryProfile(t *testing.T) {
	for _, p := range refserver.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			var throttled atomic.Int64
			h := counting(refserverHandler(t, refserver.Config{Profile: p, Throttle: true}), http.StatusTooManyRequests, &throttled)
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
			if err != nil || !res.Passed || len(res.Failures) != 0 {
				t.Fatalf("passed=%v failures=%d err=%v\n%s", res.Passed, len(res.Failures), err, out)
			}
			if skips := res.Findings.Skips(); len(skips) != 0 {
				t.Errorf("no scenario may be skipped, got %+v", skips)
			}
			if throttled.Load() == 0 {
				t.Fatal("the server never throttled: the test proves nothing")
			}
			if !strings.Contains(out, "429 Too Many Requests") {
				t.Errorf("each 429 waited out is logged:\n%s", out)
			}
		})
	}
}
