package refserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The load test: many concurrent clients kick off, poll, cancel and download against one server on loopback,
// while the (manual) clock moves under them, so DELETEs race the jobs' completion. Run it under -race
// (make test, make load). It is bounded: loadClients × loadIterations requests each, within loadDeadline.
const (
	loadClients    = 32
	loadIterations = 20
	loadDeadline   = 2 * time.Minute
	loadRetention  = 10 * time.Minute
	loadExportTime = 2 * time.Second       // server clock
	loadClockStep  = 30 * time.Millisecond // 32 clients × 2 iterations ≈ the export time: DELETEs land on both sides of completion
)

// loadJob is what the clients observed of one export job.
type loadJob struct {
	poll        string
	token       string
	deleteCode  int // 0: never cancelled; 202: cancelled; 404: it had finished first
	completions int // 200 answers to its polls
	after404    int // 404 poll answers after a 202 DELETE
}

type loadClient struct {
	t      *testing.T
	ctx    context.Context
	http   *http.Client
	base   string
	token  string
	jobs   []*loadJob
	errors []string
}

func (c *loadClient) do(method, u string, header map[string]string, body string) (int, http.Header, []byte) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, u, rd)
	if err != nil {
		c.fail("new request: %v", err)
		return 0, nil, nil
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.fail("%s %s: %v", method, u, err)
		return 0, nil, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.fail("%s %s: read body: %v", method, u, err)
	}
	return resp.StatusCode, resp.Header, b
}

func (c *loadClient) fail(format string, args ...any) {
	c.errors = append(c.errors, fmt.Sprintf(format, args...))
}

// poll polls j once and checks the answer against what the client saw before.
func (c *loadClient) poll(j *loadJob, download bool) {
	code, _, body := c.do(http.MethodGet, j.poll, nil, "")
	switch {
	case code == http.StatusAccepted && j.deleteCode == 0:
	case code == http.StatusOK && j.deleteCode != http.StatusAccepted:
		j.completions++
		var m struct {
			Output []struct{ URL string } `json:"output"`
		}
		if err := json.Unmarshal(body, &m); err != nil || len(m.Output) == 0 {
			c.fail("poll %s: a manifest with output, got %s", j.poll, body)
			return
		}
		if download {
			if code, _, data := c.do(http.MethodGet, m.Output[0].URL, map[string]string{"Accept": "application/fhir+ndjson"}, ""); code != http.StatusOK || len(data) == 0 {
				c.fail("download %s: expected 200 with NDJSON, got %d", m.Output[0].URL, code)
			}
		}
	case code == http.StatusNotFound && j.deleteCode == http.StatusAccepted:
		j.after404++
	default:
		c.fail("poll %s (DELETE answered %d): unexpected %d %s", j.poll, j.deleteCode, code, body)
	}
}

func (c *loadClient) kickoff() {
	code, h, _ := c.do(http.MethodGet, c.base+"/$export?_type=Patient", asyncHdr, "")
	if code != http.StatusAccepted || h.Get("Content-Location") == "" {
		c.fail("kick-off: expected 202 with Content-Location, got %d", code)
		return
	}
	c.jobs = append(c.jobs, &loadJob{poll: h.Get("Content-Location"), token: c.token})
}

func (c *loadClient) cancel(j *loadJob) {
	if j.deleteCode != 0 {
		return
	}
	code, _, body := c.do(http.MethodDelete, j.poll, nil, "")
	switch code {
	case http.StatusAccepted:
		j.deleteCode = code
	case http.StatusNotFound: // it had completed: the DELETE lost the race
		j.deleteCode = code
	default:
		c.fail("cancel %s: expected 202 or 404, got %d %s", j.poll, code, body)
	}
	c.poll(j, false) // right after the DELETE, the poll agrees with it
}

func (c *loadClient) report() {
	code, _, body := c.do(http.MethodPost, c.base+"/$execute-patient-usage-stats", map[string]string{"Content-Type": "application/fhir+json"},
		`{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"}]}`)
	if code != http.StatusOK {
		c.fail("report: expected 200, got %d %s", code, body)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestLoadConcurrentClientsKeepJobsConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("load test: skipped with -short")
	}
	clock := newManualClock()
	srv, err := NewServer(Config{Clock: clock, ExportDuration: loadExportTime, Retention: loadRetention})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	base := ts.URL + "/fhir"
	ctx, cancel := context.WithTimeout(context.Background(), loadDeadline)
	defer cancel()
	transport := &http.Transport{MaxIdleConnsPerHost: loadClients}
	t.Cleanup(transport.CloseIdleConnections)
	httpClient := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	baseline := heapAlloc()

	// Half the clients authenticate through the token endpoint, so issued tokens are checked concurrently too.
	tokens := make([]string, loadClients)
	for i := range tokens {
		tokens[i] = []string{DemoTokenA, DemoTokenB}[i%2]
		if i%4 >= 2 {
			id, secret := DemoClientIDA, DemoClientSecretA
			if i%2 == 1 {
				id, secret = DemoClientIDB, DemoClientSecretB
			}
			resp, err := httpClient.PostForm(ts.URL+TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
			if err != nil {
				t.Fatal(err)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			err = json.NewDecoder(resp.Body).Decode(&tok)
			resp.Body.Close()
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("token for client %s: %v", id, err)
			}
			tokens[i] = tok.AccessToken
		}
	}

	clients := make([]*loadClient, loadClients)
	var wg sync.WaitGroup
	for i := range clients {
		c := &loadClient{t: t, ctx: ctx, http: httpClient, base: base, token: tokens[i]}
		clients[i] = c
		wg.Go(func() {
			for it := 0; it < loadIterations && ctx.Err() == nil; it++ {
				switch (i + it) % 5 {
				case 0, 1:
					c.kickoff()
				case 2:
					if len(c.jobs) > 0 {
						c.poll(c.jobs[len(c.jobs)-1], true)
					}
				case 3:
					if len(c.jobs) > 0 && (i+it)%2 == 0 {
						c.cancel(c.jobs[len(c.jobs)-1])
					}
				case 4:
					c.report()
				}
				clock.Advance(loadClockStep) // jobs complete while others poll and cancel
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("the load did not finish within %s", loadDeadline)
	}

	// Every job the clients kicked off exists once; none was lost or duplicated.
	seen := map[string]bool{}
	var all []*loadJob
	for _, c := range clients {
		for _, e := range c.errors {
			t.Error(e)
		}
		for _, j := range c.jobs {
			if seen[j.poll] {
				t.Errorf("job %s handed out twice", j.poll)
			}
			seen[j.poll] = true
			all = append(all, j)
		}
	}
	if st := srv.stateSize(); st.exportJobs != len(all) {
		t.Fatalf("server holds %d export jobs, the clients kicked off %d", st.exportJobs, len(all))
	}

	// Once every job has had time to finish: a cancelled job never completes; the others all do. A DELETE
	// had exactly one outcome: 202 then 404 for good, or 404 (it had finished) then 200 with the manifest.
	clock.Advance(loadExportTime)
	var cancelled, raced, completed int
	check := &loadClient{t: t, ctx: ctx, http: httpClient, base: base}
	for _, j := range all {
		check.token = j.token
		before := j.completions
		check.poll(j, true)
		switch j.deleteCode {
		case http.StatusAccepted:
			cancelled++
			if j.completions != 0 {
				t.Errorf("job %s: cancelled (202), yet a poll answered 200", j.poll)
			}
		case http.StatusNotFound:
			raced++
			if j.completions == before {
				t.Errorf("job %s: the DELETE found it finished (404), yet it has no manifest", j.poll)
			}
		default:
			completed++
		}
	}
	for _, e := range check.errors {
		t.Error(e)
	}
	t.Logf("%d jobs: %d cancelled, %d finished before their DELETE, %d never cancelled", len(all), cancelled, raced, completed)
	if cancelled == 0 || completed == 0 {
		t.Errorf("the load must cancel some jobs and complete others: %d cancelled, %d completed", cancelled, completed)
	}

	// After the retention, memory is back to its baseline: no jobs, files or reports; only a fresh token.
	loaded := heapAlloc()
	clock.Advance(loadRetention + time.Hour) // past the retention and the tokens' default lifetime
	check.token = DemoTokenA
	if code, _, _ := check.do(http.MethodGet, base+"/$get-report-job-status", nil, ""); code != http.StatusOK {
		t.Fatalf("status after retention: %d", code)
	}
	resp, err := httpClient.PostForm(ts.URL+TokenPath, url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientIDA}, "client_secret": {DemoClientSecretA}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if st := srv.stateSize(); st != (stateSize{tokens: 1}) {
		t.Fatalf("state after retention: expected only the fresh token, got %+v", st)
	}
	transport.CloseIdleConnections()
	after := heapAlloc()
	t.Logf("heap: baseline %d KiB, loaded %d KiB, after retention %d KiB", baseline>>10, loaded>>10, after>>10)
	const tolerance = 2 << 20 // the exact check is stateSize above; the heap only has to come back near the baseline
	if after > baseline+tolerance {
		t.Errorf("heap after retention %d KiB: expected within %d KiB of the baseline %d KiB", after>>10, tolerance>>10, baseline>>10)
	}
}
