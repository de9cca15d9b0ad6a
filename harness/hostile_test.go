package harness

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/internal/hostiletest"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// Hostile targets: a server that misbehaves at the transport level must end the run by itself, within
// REQUEST_TIMEOUT and MAX_WAIT, with a failed verdict, a message naming the cause, no panic and no goroutine
// left behind. (The server that never answers and the job that never finishes are in run_test.go.)

// hostile runs cfg against handler (or, when handler is nil, against cfg.Target as given) and checks the
// common guarantees: a failed verdict, a run that ends (within hangLimit: not a speed bound), the cause named,
// no goroutine leaked. How much the run did within its bounds, each test counts itself (requests sent).
func hostile(t *testing.T, handler http.Handler, cfg Config, causes ...string) string {
	t.Helper()
	noLeakedGoroutines(t) // registered first, so that it runs after the test servers have closed
	var out bytes.Buffer
	if handler != nil {
		ts := httptest.NewServer(handler)
		t.Cleanup(ts.Close)
		cfg.Target = ts.URL + "/fhir"
	}
	cfg.Out, cfg.Log, cfg.ReportsDir = &out, &out, t.TempDir()
	if cfg.Token == "" {
		cfg.Token, cfg.TokenB = refserver.DemoTokenA, refserver.DemoTokenB
	}
	var res Result
	var err error
	runOrHang(t, hangLimit, func() { res, err = Run(context.Background(), cfg) })
	if err == nil && res.Passed {
		t.Fatalf("a hostile target passed the run:\n%s", out.String())
	}
	if testing.Verbose() {
		t.Log(tailOf(out.String()))
	}
	for _, c := range causes {
		if !strings.Contains(out.String(), c) && (err == nil || !strings.Contains(err.Error(), c)) {
			t.Errorf("the output does not name the cause %q:\n%s", c, tailOf(out.String()))
		}
	}
	if strings.Contains(out.String(), "panic") {
		t.Errorf("the run panicked:\n%s", out.String())
	}
	return out.String()
}

// hangLimit is how long a test's run may take before it is taken as hung: a run that would never end, not a
// slow one. A loaded machine may take any time short of it; what a run did within its bounds is counted.
const hangLimit = 5 * time.Minute

// runOrHang runs fn and fails the test if it has not returned within limit, with every goroutine's stack.
func runOrHang(t *testing.T, limit time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		buf := make([]byte, 1<<20)
		t.Fatalf("the run has not ended after %s: it hangs\n%s", limit, buf[:runtime.Stack(buf, true)])
	}
}

// requestCounter counts the requests a handler serves, by the key of each that key gives ("" is not
// counted).
type requestCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *requestCounter) wrap(h http.Handler, key func(r *http.Request, body []byte) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if k := key(r, body); k != "" {
			c.mu.Lock()
			if c.n == nil {
				c.n = map[string]int{}
			}
			c.n[k]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// most is the largest count of one key, and the key.
func (c *requestCounter) most() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	key, most := "", 0
	for k, n := range c.n {
		if n > most {
			key, most = k, n
		}
	}
	return key, most
}

// noLeakedGoroutines fails the test when, once everything the test started has been cleaned up, more
// goroutines run than before it. It polls with a deadline: connections wind down asynchronously.
func noLeakedGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for runtime.NumGoroutine() > before {
			select {
			case <-deadline.C:
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d before the test, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			case <-tick.C:
			}
		}
	})
}

func tailOf(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// every wraps a handler so that it answers every request, whatever the path, except the metadata: a
// conformant CapabilityStatement lets the run past its preflight, so that the hostility meets the scenarios.
func every(f func(w http.ResponseWriter, r *http.Request)) http.Handler {
	srv, err := refserver.NewServer(refserver.Config{})
	if err != nil {
		panic(err) // the default configuration: cannot fail
	}
	meta := srv.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/metadata") {
			meta.ServeHTTP(w, r)
			return
		}
		f(w, r)
	})
}

// A server that sends its headers, then drips the body one byte at a time: REQUEST_TIMEOUT covers the body
// too, so the drip is cut.
func TestHostileDripFeedEndsAtRequestTimeout(t *testing.T) {
	drip := every(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusNotFound)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
	hostile(t, drip, Config{Tags: "@EXP-UNKNOWN-JOB,@RJS-BUNDLE", RequestTimeout: time.Second}, "REQUEST_TIMEOUT")
}

// A server that announces and streams a body of gigabytes: MAX_BODY cuts it after reading MAX_BODY bytes,
// without ever holding the body in memory.
func TestHostileGigabyteBodyIsCutAtMaxBody(t *testing.T) {
	const size = 4 << 30
	huge := every(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Content-Length", "4294967296")
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	hostile(t, huge, Config{Tags: "@RJS-BUNDLE,@EXP-UNKNOWN-JOB", MaxBodyBytes: 1 << 20, RequestTimeout: 20 * time.Second}, "MAX_BODY")
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
		t.Errorf("the run allocated %d MiB: the body was buffered, not cut at MAX_BODY", alloc>>20)
	}
}

// A server whose every answer is truncated JSON: each check fails and says the JSON is invalid.
func TestHostileInvalidJSONFailsNamingIt(t *testing.T) {
	broken := every(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		status := http.StatusNotFound
		if strings.HasSuffix(r.URL.Path, "$get-report-job-status") {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"resourceType": "OperationOutcome", "issue": [{"severity": "error",`))
	})
	hostile(t, broken, Config{Tags: "@EXP-UNKNOWN-JOB,@RJS-BUNDLE", RequestTimeout: 5 * time.Second}, "JSON")
}

// A server that redirects every request to itself: the client stops after 10 redirects and says so.
func TestHostileRedirectLoopIsStopped(t *testing.T) {
	loop := every(func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, r.URL.String(), http.StatusFound) })
	hostile(t, loop, Config{Tags: "@EXP-UNKNOWN-JOB,@EXP-KICKOFF", RequestTimeout: 5 * time.Second}, "stopped after 10 redirects")
}

// Nothing listens at the target: every scenario fails at once, naming the refused connection.
func TestHostileConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	hostile(t, nil, Config{Target: "http://" + addr + "/fhir", RequestTimeout: 5 * time.Second}, "connection refused")
}

// HTTPS whose handshake fails: a certificate no CA vouches for, and a listener that answers the TLS
// handshake with garbage.
func TestHostileTLSHandshakeFailure(t *testing.T) {
	t.Run("untrusted certificate", func(t *testing.T) {
		noLeakedGoroutines(t)
		ts := httptest.NewTLSServer(refserverHandler(t, refserver.Config{}))
		ts.Config.ErrorLog = nil
		t.Cleanup(ts.Close)
		hostile(t, nil, Config{Target: ts.URL + "/fhir", Tags: "@EXP-UNKNOWN-JOB,@RJS-BUNDLE", RequestTimeout: 5 * time.Second}, "certificate")
	})
	t.Run("garbage instead of a handshake", func(t *testing.T) {
		noLeakedGoroutines(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				_, _ = conn.Write([]byte("SSH-2.0-OpenSSH_9.6 (another service on the HTTPS port)\r\n"))
				conn.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		hostile(t, nil, Config{Target: "https://" + ln.Addr().String() + "/fhir", Tags: "@EXP-UNKNOWN-JOB,@RJS-BUNDLE", RequestTimeout: 5 * time.Second}, "tls:")
	})
}

// A storm of 503s (with the transient issue code that allows a retry): every scenario fails, naming the
// status, and the run ends. Each kick-off (its own _since) is sent once and retried maxTransientRetries (3)
// times, not for as long as MAX_WAIT allows: a server calling a lasting error transient costs seconds.
func TestHostile5xxStorm(t *testing.T) {
	storm := every(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]}`))
	})
	var kickoffs requestCounter
	counted := kickoffs.wrap(storm, func(r *http.Request, body []byte) string {
		if !strings.HasSuffix(r.URL.Path, "/$export") {
			return ""
		}
		return r.Method + " ?" + r.URL.RawQuery + " " + string(body) // one kick-off: its _since is its own
	})
	// MAX_WAIT well above the retries' 3 s: a kick-off retried within MAX_WAIT alone is sent about 10 times.
	out := hostile(t, counted, Config{MaxWait: 10 * time.Second, RequestTimeout: 2 * time.Second}, "503 Service Unavailable")
	if want := fmt.Sprintf("FAIL: %d scenarios", scenarioCount(t)); !strings.Contains(out, want) {
		t.Errorf("want every scenario run and the run failed:\n%s", tailOf(out))
	}
	const sends = 1 + 3 // steps.maxTransientRetries
	key, n := kickoffs.most()
	t.Logf("kick-offs %d, the most sent %d times", len(kickoffs.n), n)
	if n == 0 || n > sends {
		t.Errorf("a kick-off sent %d times, want at most %d: %s", n, sends, key)
	}
}

// A storm of 429s with Retry-After on the polling locations: the poller waits as asked, but gives up at
// MAX_WAIT, the scenario skipped, naming the throttling (never failed: the server broke no rule, and the
// run checked nothing, so it does not pass); a Retry-After beyond MAX_WAIT ends the wait at once. Counted in polls of one job: the 429s a
// poll waits out count within its job's MAX_WAIT (at most MAX_WAIT/Retry-After + 1 polls, one more for
// the drift of a loaded machine), not one MAX_WAIT per poll.
func TestHostile429StormEndsWithinMaxWait(t *testing.T) {
	const maxWait = 3 * time.Second
	for _, c := range []struct {
		retryAfter string
		polls      int // of one job, at most
	}{{"1", 3 + 1 + 1}, {"3600", 1}} {
		t.Run("Retry-After "+c.retryAfter, func(t *testing.T) {
			inner := refserverHandler(t, refserver.Config{ExportDuration: 500 * time.Millisecond, ReportDuration: 500 * time.Millisecond})
			throttled := every(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "$export-poll-status") || strings.HasSuffix(r.URL.Path, "$get-report-job-status") {
					w.Header().Set("Retry-After", c.retryAfter)
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				inner.ServeHTTP(w, r)
			})
			var polls requestCounter
			counted := polls.wrap(throttled, func(r *http.Request, _ []byte) string {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "$export-poll-status") {
					return "export " + r.URL.RawQuery
				}
				return ""
			})
			// Two scenarios wait on a job, one after the other: each within MAX_WAIT.
			hostile(t, counted, Config{Tags: "@EXP-POLL-200,@RJS-TERMINAL", MaxWait: maxWait, RequestTimeout: 2 * time.Second}, "for longer than the run waits (MAX_WAIT 3s)", "429 Too Many Requests")
			key, n := polls.most()
			t.Logf("jobs polled %d, the most polled %d times", len(polls.n), n)
			if n == 0 || n > c.polls {
				t.Errorf("%s polled %d times with MAX_WAIT %s and Retry-After %s, want at most %d", key, n, maxWait, c.retryAfter, c.polls)
			}
		})
	}
}

// A server that passes the preflight, then drops the connection of every kick-off: the scenarios that need an
// export end on a transport error, an error of the run charged to no requirement (issue 12), never a failed
// requirement; the report scenarios, which never meet the dropped connections, still pass.
func TestATransportErrorInAScenarioChargesNoRequirement(t *testing.T) {
	ts := hostiletest.DroppingKickoffs(t)
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Target: ts.URL + "/fhir", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || !res.OnlyRunErrors() {
		t.Fatalf("passed=%v, only run errors=%v; want a failed run whose failures are all errors of the run:\n%s", res.Passed, res.OnlyRunErrors(), tailOf(out.String()))
	}
	for _, f := range res.Failures {
		if !f.Transport || f.Requirement != "" || len(f.Requirements) != 0 || f.NonConformant {
			t.Errorf("failure of %q: transport=%v, charged to %q %v, non-conformant=%v; want a transport error charged to nothing",
				f.Scenario, f.Transport, f.Requirement, f.Requirements, f.NonConformant)
		}
	}
	verdicts := map[string]Verdict{}
	for _, r := range res.Requirements {
		verdicts[r.ID] = r.Verdict
		if r.Verdict == VerdictFail {
			t.Errorf("%s is failed, though no answer of the server was judged: %s", r.ID, r.Reason)
		}
	}
	if verdicts["EXP-KICKOFF"] != VerdictError || verdicts["RJS-BUNDLE"] != VerdictPass {
		t.Errorf("EXP-KICKOFF %q, RJS-BUNDLE %q; want error and pass", verdicts["EXP-KICKOFF"], verdicts["RJS-BUNDLE"])
	}
}
