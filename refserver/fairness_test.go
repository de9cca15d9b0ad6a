package refserver

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

const anonymizedParams = `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"}]}`

// One user's jobs are capped (429 with Retry-After until the oldest is forgotten); the other user is not
// affected, and the cap frees up with retention.
func TestJobsPerUserAreCapped(t *testing.T) {
	const retention = 10 * time.Minute
	e := newEnv(t, Config{MaxJobsPerUser: 2, Retention: retention, ExportDuration: time.Second, ReportDuration: time.Second})
	e.kickoff(tokenA, "")
	e.kickoff(tokenA, "")
	r := e.do(req{method: http.MethodGet, url: "/$export", token: tokenA, headers: asyncHdr})
	if diag := wantOO(t, r, http.StatusTooManyRequests, sevError, codeThrottled); !strings.Contains(diag, "2 export jobs") {
		t.Fatalf("429 diagnostics: expected the limit named, got %q", diag)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra != int((time.Second+retention).Seconds()) {
		t.Fatalf("Retry-After: expected when the oldest job is forgotten (%v), got %q", time.Second+retention, r.header.Get("Retry-After"))
	}
	e.kickoff(tokenB, "") // B has its own budget

	e.runReport(tokenA, "$execute-patient-usage-stats", anonymizedParams)
	e.runReport(tokenA, "$schedule-patient-usage-stats", anonymizedParams)
	wantOO(t, e.do(req{method: http.MethodPost, url: "/$execute-patient-usage-stats", token: tokenA, headers: fhirJSONHdr, body: anonymizedParams}),
		http.StatusTooManyRequests, sevError, codeThrottled)
	e.runReport(tokenB, "$execute-patient-usage-stats", anonymizedParams)

	e.clock.Advance(time.Second + retention)
	e.kickoff(tokenA, "")
	e.runReport(tokenA, "$execute-patient-usage-stats", anonymizedParams)
}

// A job keeps only what it needs of its request, and no more than MaxJobRequestBytes: so one user's status
// stays bounded by MaxJobsPerUser × MaxJobRequestBytes whatever was sent.
func TestJobRequestBytesAreCapped(t *testing.T) {
	e := newEnv(t, Config{MaxJobRequestBytes: 512})
	long := "?_type=" + strings.Repeat("Patient,", 80) + "Patient"
	wantOO(t, e.do(req{method: http.MethodGet, url: "/$export" + long, token: tokenA, headers: asyncHdr}), http.StatusRequestEntityTooLarge, sevError, codeTooCostly)
	big := `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"},{"name":"note","valueString":"` + strings.Repeat("x", 600) + `"}]}`
	wantOO(t, e.do(req{method: http.MethodPost, url: "/$execute-patient-usage-stats", token: tokenA, headers: fhirJSONHdr, body: big}), http.StatusRequestEntityTooLarge, sevError, codeTooCostly)
	// A POST kick-off's body is not kept: only the kick-off URL and the _type list.
	body := `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"},{"name":"_outputFormat","valueString":"application/fhir+ndjson"}]}`
	r := e.do(req{method: http.MethodPost, url: "/$export", token: tokenA, headers: map[string]string{"Prefer": "respond-async", "Content-Type": "application/fhir+json"}, body: body + strings.Repeat(" ", 4096)})
	wantStatus(t, r, http.StatusAccepted)
	if b, _ := e.jobStatus(tokenA); len(b.Entry) != 0 {
		t.Fatalf("no report job was created, got %d", len(b.Entry))
	}
}

// Client B exhausting its token budget leaves client A's untouched.
func TestTokenBudgetIsPerClient(t *testing.T) {
	e, srv := newServerEnv(t, Config{})
	srv.tokens.maxPerClient = 3
	token := func(id, secret string) response {
		return e.do(req{method: http.MethodPost, url: e.root + TokenPath, headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
			body: url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}.Encode()})
	}
	for range 3 {
		wantStatus(t, token(DemoClientIDB, DemoClientSecretB), http.StatusOK)
	}
	if r := token(DemoClientIDB, DemoClientSecretB); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "temporarily_unavailable") {
		t.Fatalf("client B beyond its budget: expected 503 temporarily_unavailable, got %d %s", r.status, r.body)
	}
	wantStatus(t, token(DemoClientIDA, DemoClientSecretA), http.StatusOK)
	// The tokens expire, B's budget is back, and the expired ones of both clients are forgotten.
	e.clock.Advance(DefaultTokenLifetime)
	wantStatus(t, token(DemoClientIDB, DemoClientSecretB), http.StatusOK)
	if n := srv.stateSize().tokens; n != 1 {
		t.Fatalf("tokens held: expected only B's fresh one, got %d", n)
	}
}

// rawRequest sends one request with the given Host header and returns the answer.
func rawRequest(t *testing.T, base, method, path, host string, header map[string]string) response {
	t.Helper()
	r, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Host = host
	for k, v := range header {
		r.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// Without PUBLIC_BASE_URL, links name the address the server was reached on (or a loopback Host), never an
// arbitrary Host header.
func TestLinksNeverReflectAnArbitraryHost(t *testing.T) {
	e := newEnv(t, Config{})
	listen := strings.TrimPrefix(e.root, "http://")
	_, port, _ := net.SplitHostPort(listen)
	for host, want := range map[string]string{
		"evil.example":            "http://" + listen + "/fhir",
		"evil.example:" + port:    "http://" + listen + "/fhir",
		"127.0.0.1:1@evil.x":      "http://" + listen + "/fhir",
		"localhost:" + port:       "http://localhost:" + port + "/fhir",
		"[::1]:" + port:           "http://[::1]:" + port + "/fhir",
		"127.0.0.2:" + port:       "http://127.0.0.2:" + port + "/fhir",
		"localhost:" + port + "x": "http://" + listen + "/fhir",
	} {
		r := rawRequest(t, e.root, http.MethodGet, "/fhir/$export", host, map[string]string{"Authorization": "Bearer " + tokenA, "Prefer": "respond-async"})
		if r.status != http.StatusAccepted {
			if r.status == http.StatusBadRequest { // net/http itself refuses a malformed Host
				continue
			}
			t.Fatalf("Host %q: kick-off %d %s", host, r.status, r.body)
		}
		if loc := r.header.Get("Content-Location"); !strings.HasPrefix(loc, want+"/$export-poll-status?_jobId=") {
			t.Errorf("Host %q: expected Content-Location under %s, got %q", host, want, loc)
		}
	}
}

// The mux's redirect of an unclean path and the handler's header limit answer OperationOutcomes.
func TestRouterAnswersAreOperationOutcomes(t *testing.T) {
	e := newEnv(t, Config{})
	r := rawRequest(t, e.root, http.MethodGet, "/fhir//metadata", strings.TrimPrefix(e.root, "http://"), nil)
	if r.status < 300 || r.status > 399 || r.header.Get("Location") != "/fhir/metadata" {
		t.Fatalf("unclean path: expected a redirect to /fhir/metadata, got %d %q", r.status, r.header.Get("Location"))
	}
	wantOO(t, r, r.status, sevInformation, codeInformational)

	big := map[string]string{"X-Big": strings.Repeat("a", MaxRequestHeaderBytes)}
	wantOO(t, rawRequest(t, e.root, http.MethodGet, "/fhir/metadata", strings.TrimPrefix(e.root, "http://"), big), http.StatusRequestHeaderFieldsTooLarge, sevError, codeTooCostly)
}

// OutcomeListener turns net/http's own answers to broken requests into OperationOutcomes.
func TestOutcomeListenerRewritesNetHTTPErrors(t *testing.T) {
	srv, err := NewServer(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Listener = OutcomeListener(ts.Listener)
	ts.Config.MaxHeaderBytes = 4 << 10
	ts.Start()
	t.Cleanup(ts.Close)
	addr := strings.TrimPrefix(ts.URL, "http://")
	for name, c := range map[string]struct {
		raw  string
		want int
	}{
		"headers too large": {"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		"no Host":           {"GET /fhir/metadata HTTP/1.1\r\n\r\n", http.StatusBadRequest},
		"malformed":         {"GARBAGE\r\n\r\n", http.StatusBadRequest},
		"transfer encoding": {"POST /fhir/$export HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", http.StatusNotImplemented},
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		go fmt.Fprint(conn, c.raw)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		conn.Close()
		wantOO(t, response{status: resp.StatusCode, header: resp.Header, body: b}, c.want, sevError, map[int]string{400: codeInvalid, 431: codeTooCostly, 501: codeNotSupported}[c.want])
	}
	// An ordinary answer passes untouched.
	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "ok" {
		t.Fatalf("healthz through the listener: got %d %q", resp.StatusCode, b)
	}
}

// One user's report job status is bounded by the per-user caps, whatever the user sent.
func TestReportStatusIsBoundedPerUser(t *testing.T) {
	const jobs, kept = 5, 2048
	e := newEnv(t, Config{MaxJobsPerUser: jobs, MaxJobRequestBytes: kept})
	params := `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"},{"name":"note","valueString":"` + strings.Repeat("x", kept-150) + `"}]}`
	for range jobs {
		e.runReport(tokenA, "$execute-patient-usage-stats", params)
	}
	wantStatus(t, e.do(req{method: http.MethodPost, url: "/$execute-patient-usage-stats", token: tokenA, headers: fhirJSONHdr, body: params}), http.StatusTooManyRequests)
	b, r := e.jobStatus(tokenA)
	const perEntry = 1 << 10 // the entry's own parts besides the kept parameters
	if len(b.Entry) != jobs || len(r.body) > jobs*(kept+perEntry) {
		t.Fatalf("status: expected %d entries within %d bytes, got %d entries in %d bytes", jobs, jobs*(kept+perEntry), len(b.Entry), len(r.body))
	}
}
