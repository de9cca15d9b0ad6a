package steps

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
	"golang.org/x/oauth2"
)

// throttlingWorld is a World whose target answers 429 + Retry-After to the first `throttled` requests, then
// 200.
func throttlingWorld(t *testing.T, throttled int32, retryAfter string, maxWait time.Duration) (*World, *atomic.Int32, *strings.Builder) {
	t.Helper()
	var seen atomic.Int32
	w, log := worldAgainst(t, maxWait, func(w http.ResponseWriter, r *http.Request) {
		if seen.Add(1) <= throttled {
			w.Header().Set("Retry-After", retryAfter)
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	return w, &seen, log
}

// worldAgainst is a World of user A (token "secret-a") whose target, for both features, is the handler; its
// log is returned.
func worldAgainst(t *testing.T, maxWait time.Duration, handler http.HandlerFunc) (*World, *strings.Builder) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	log := &strings.Builder{}
	target, err := Target{ExportBaseURL: srv.URL, ReportBaseURL: srv.URL, MaxWait: maxWait, Log: log,
		Credentials: map[string]oauth2.TokenSource{"A": oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "secret-a"})}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return &World{target: &target, scenario: "unit"}, log
}

// A 429 with Retry-After is waited out and asked again, and every attempt is in the transcript.
func TestEveryRequestWaitsOutA429WithRetryAfter(t *testing.T) {
	w, seen, log := throttlingWorld(t, 2, "0", time.Minute)
	x, err := w.request(context.Background(), "A", http.MethodGet, w.exportEndpoint("$export-poll-status?_jobId=x"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != http.StatusOK || seen.Load() != 3 {
		t.Fatalf("want the third attempt's 200, got %d after %d requests", x.Status, seen.Load())
	}
	if len(w.exchanges) != 3 || w.exchanges[0].Status != http.StatusTooManyRequests || w.exchanges[1].Status != http.StatusTooManyRequests {
		t.Fatalf("want the two 429s and the 200 in the transcript, got %d exchanges", len(w.exchanges))
	}
	if w.exchanges[0].RequestHeader.Get("Authorization") != "Bearer secret-a" || w.exchanges[2].RequestHeader.Get("Authorization") != "Bearer secret-a" {
		t.Fatal("every attempt carries the user's token")
	}
	if strings.Count(log.String(), "429 Too Many Requests") != 2 {
		t.Fatalf("want each wait logged, got:\n%s", log)
	}
}

// A Retry-After that would pass MAX_WAIT is not waited for: the 429 comes back at once, for the caller to judge.
func TestA429BeyondMaxWaitComesBackAtOnce(t *testing.T) {
	w, seen, _ := throttlingWorld(t, 100, "3600", 5*time.Second)
	x, err := w.request(context.Background(), "A", http.MethodGet, w.exportEndpoint("metadata"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != http.StatusTooManyRequests || seen.Load() != 1 {
		t.Fatalf("want the one 429 back at once, got %d after %d requests", x.Status, seen.Load())
	}
}

// A 429 without Retry-After still says "too many requests", not "refused" (BDA2: the server SHOULD add a
// Retry-After): it is asked again after a backoff, from 1 s, within MAX_WAIT; a backoff that would pass
// MAX_WAIT brings the 429 back at once, for the caller to judge.
func TestA429WithoutRetryAfterIsAskedAgainAfterABackoff(t *testing.T) {
	w, seen, log := throttlingWorld(t, 1, "", time.Minute)
	x, err := w.request(context.Background(), "A", http.MethodGet, w.exportEndpoint("metadata"), nil, nil)
	if err != nil || x.Status != http.StatusOK || seen.Load() != 2 || !strings.Contains(log.String(), "asking again in 1s") {
		t.Fatalf("want the second attempt's 200 after a 1 s backoff, got %v, status %d after %d requests\n%s", err, x.Status, seen.Load(), log)
	}
	w, seen, _ = throttlingWorld(t, 100, "", 500*time.Millisecond)
	x, err = w.request(context.Background(), "A", http.MethodGet, w.exportEndpoint("metadata"), nil, nil)
	if err != nil || x.Status != http.StatusTooManyRequests || seen.Load() != 1 {
		t.Fatalf("want one 429 back when the backoff passes MAX_WAIT, got %v, %d requests", err, seen.Load())
	}
}

// A 5xx whose OperationOutcome has the transient code (BDA2: retry later), or a 503 with a Retry-After (RFC
// 9110: unavailable for now, as a gateway answers during a deployment), is asked again, a few times at most,
// every attempt in the transcript; a 5xx of another code, and a 503 without a Retry-After, come back at once
// for the caller to judge.
func TestATransientServerErrorIsAskedAgainAFewTimes(t *testing.T) {
	const transient = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient","diagnostics":"try later"}]}`
	const lasting = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`
	for _, c := range []struct {
		name       string
		body       string
		answer     int    // the status of the failing answers
		retryAfter string // their Retry-After
		failures   int32
		status     int
		requests   int32
	}{
		{"transient twice, then 200", transient, http.StatusServiceUnavailable, "0", 2, http.StatusOK, 3},
		{"transient for ever", transient, http.StatusServiceUnavailable, "0", 100, http.StatusServiceUnavailable, 1 + maxTransientRetries},
		{"transient without Retry-After", transient, http.StatusInternalServerError, "", 1, http.StatusOK, 2},
		{"another code", lasting, http.StatusInternalServerError, "0", 100, http.StatusInternalServerError, 1},
		{"503 with Retry-After, no OperationOutcome", "<html>maintenance</html>", http.StatusServiceUnavailable, "0", 1, http.StatusOK, 2},
		{"503 without Retry-After", lasting, http.StatusServiceUnavailable, "", 100, http.StatusServiceUnavailable, 1},
	} {
		var seen atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if seen.Add(1) <= c.failures {
				w.Header().Set("Content-Type", "application/fhir+json")
				if c.retryAfter != "" {
					w.Header().Set("Retry-After", c.retryAfter)
				}
				w.WriteHeader(c.answer)
				_, _ = w.Write([]byte(c.body))
				return
			}
			w.WriteHeader(http.StatusOK)
		}))
		target, err := Target{ExportBaseURL: srv.URL, ReportBaseURL: srv.URL, MaxWait: time.Minute, Log: &strings.Builder{}}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		w := &World{target: &target, scenario: "unit"}
		x, err := w.request(context.Background(), "", http.MethodGet, w.exportEndpoint("metadata"), nil, nil)
		srv.Close()
		if err != nil || x.Status != c.status || seen.Load() != c.requests || len(w.exchanges) != int(c.requests) {
			t.Errorf("%s: got %v, status %d after %d requests (%d in the transcript), want %d after %d", c.name, err, x.Status, seen.Load(), len(w.exchanges), c.status, c.requests)
		}
	}
}

// An answer larger than MAX_BODY (a manifest of tens of thousands of files is megabytes) ends the request
// with a message that names the bound as the run's own, and the value that reads the answer when the server
// announced its length.
func TestABodyOverMaxBodyNamesTheSettingToRaise(t *testing.T) {
	body := strings.Repeat("x", 2048)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("chunked") {
			w.Write([]byte(body[:1024]))
			w.(http.Flusher).Flush()
			w.Write([]byte(body[1024:]))
			return
		}
		w.Header().Set("Content-Length", "2048")
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	target, err := Target{ExportBaseURL: srv.URL, ReportBaseURL: srv.URL, MaxBodyBytes: 1024}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	w := &World{target: &target, scenario: "unit"}
	for query, want := range map[string]string{"": "MAX_BODY=2048 reads it", "?chunked": "a larger MAX_BODY reads it"} {
		_, err := w.request(context.Background(), "", http.MethodGet, srv.URL+"/m"+query, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "MAX_BODY (1024 bytes)") || !strings.Contains(err.Error(), "the harness's bound") || !strings.Contains(err.Error(), want) {
			t.Errorf("GET /m%s: want the bound named with %q, got %v", query, want, err)
		}
	}
}

// A poll answered 429 for ever waits within its job's MAX_WAIT, not a MAX_WAIT of each request's own (the
// request waits out the 429s only up to the poller's deadline, check.WaitUntil): with MAX_WAIT 4 s and
// Retry-After 1, five polls in all, where each request waiting up to MAX_WAIT of its own sent eight. The
// give-up names MAX_WAIT, and is a skip, not a failure: throttling is never one (pollThrottled).
func TestAPollThrottledForEverEndsAtItsJobsMaxWait(t *testing.T) {
	w, seen, _ := throttlingWorld(t, 1<<30, "1", 4*time.Second)
	w.target.RequestTimeout = 10 * time.Second
	w.export = exportState{owner: "A", pollURL: w.exportEndpoint("$export-poll-status?_jobId=x")}
	err := w.pollsExportStatusUntilComplete(context.Background(), "A")
	if !errors.Is(err, godog.ErrSkip) || !strings.Contains(err.Error(), "(MAX_WAIT 4s)") || !strings.Contains(err.Error(), "429 Too Many Requests") || !strings.Contains(err.Error(), " times in ") {
		t.Fatalf("want a skip at MAX_WAIT naming the 429s, got %v", err)
	}
	// 4 s of Retry-After 1 is 5 polls (at 0, 1, 2, 3, 4 s); one more for a slow machine's drift.
	if n := seen.Load(); n > 6 {
		t.Fatalf("%d polls sent: the 429s were waited out past the poller's MAX_WAIT of 4s", n)
	}
}

// A wait whose MAX_WAIT ran out before it began (a report started ahead, waited on by a later scenario:
// Poller.Since) sends its one poll, and a 429 to it ends the wait at once: the request does not wait a
// MAX_WAIT of its own.
func TestAThrottledPollOfAWaitPastMaxWaitIsSentOnce(t *testing.T) {
	w, seen, _ := throttlingWorld(t, 1<<30, "1", 3*time.Second)
	w.report = reportState{owner: "A", binaryID: "b", started: time.Now().Add(-time.Hour)}
	err := w.waitsForReportJob(context.Background(), "A")
	if !errors.Is(err, godog.ErrSkip) || !strings.Contains(err.Error(), "(MAX_WAIT 3s)") || !strings.Contains(err.Error(), "answered 429 Too Many Requests") {
		t.Fatalf("want a skip at MAX_WAIT naming the 429, got %v", err)
	}
	if n := seen.Load(); n != 1 {
		t.Fatalf("%d requests sent, want the one poll: its 429s were waited out for a MAX_WAIT of its own", n)
	}
}

// A cancelled export's watch whose poll is answered 429 with a Retry-After past the watch's window: the 429
// comes back to the watch (check.WaitUntil), which is throttling, not a "poll-cancelled" answer broken, so the
// watch ends without a violation.
func TestACancelWatchThrottledPastItsWindowIsNoViolation(t *testing.T) {
	w, seen, _ := throttlingWorld(t, 1<<30, "10", time.Minute)
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	w.profiles, w.target.Findings = profiles, &Findings{}
	w.export = exportState{owner: "A", pollURL: w.exportEndpoint("$export-poll-status?_jobId=x")}
	if err := w.exportNeverCompletes(context.Background(), "A"); err != nil {
		t.Fatalf("a 429 to the cancel watch failed it: %v", err)
	}
	if n := seen.Load(); n != 1 {
		t.Fatalf("%d polls, want the one whose Retry-After passes the watch's window", n)
	}
}

// A cancelled export's watch whose window from the cancel was spent already (the wait for the user's shared
// export, which never completed, ran to MAX_WAIT) is one poll, judged, and says so: a run against an export
// that never finishes costs one MAX_WAIT, not one and the window.
func TestACancelWatchWhoseWindowWasSpentIsOnePoll(t *testing.T) {
	var polls atomic.Int32
	w, _ := worldAgainst(t, time.Minute, func(rw http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		rw.Header().Set("Content-Type", "application/fhir+json")
		rw.Header().Set("Retry-After", "1")
		rw.WriteHeader(http.StatusNotFound)
		_, _ = rw.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found","diagnostics":"cancelled"}]}`))
	})
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	w.profiles, w.target.Findings = profiles, &Findings{}
	w.export = exportState{owner: "A", pollURL: w.exportEndpoint("$export-poll-status?_jobId=x")}
	w.exchanges = []*check.Exchange{{Method: http.MethodDelete, URL: w.export.pollURL, Status: http.StatusAccepted,
		Received: time.Now().Add(-time.Minute), Duration: time.Millisecond}}
	if err := w.exportNeverCompletes(context.Background(), "A"); err != nil {
		t.Fatalf("a cancelled export answering 404 failed the watch: %v", err)
	}
	if n := polls.Load(); n != 1 {
		t.Fatalf("%d polls, want one: the window counts from the cancel, a minute ago", n)
	}
	if got := w.target.Findings.notChecked; len(got) != 1 || !strings.Contains(got[0].Message, "polled once, 1m0s after its cancel") {
		t.Fatalf("want the one poll named as not checked, got %+v", got)
	}
}
