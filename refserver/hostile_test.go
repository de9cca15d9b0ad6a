package refserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/internal/proccpu"
)

// hostileDeadline stops a hostile request whose handler blocks: far beyond any answer, on a loaded machine too.
const hostileDeadline = 2 * time.Minute

// hostileCPU bounds the CPU time the test process spends on one hostile request, the server's work and the
// client's: a handler that does work out of proportion to what it was sent (a request it answers in
// milliseconds took minutes before its fix) passes it. Wall-clock time cannot tell that on a shared machine:
// the kick-off with 50,000 parameters, about 2 s of CPU under -race, took more than the former 20 s bound
// beside busy loops.
const hostileCPU = 15 * time.Second

// hostileCase is one malformed or hostile request and the answer the project's standard asks of it: a 4xx
// OperationOutcome, as application/fhir+json, that says what was wrong.
type hostileCase struct {
	name     string
	method   string
	target   string // relative to the server root
	header   http.Header
	body     string
	status   int
	code     string // the issue code
	contains string // in the diagnostics
}

// distinctTypeNames returns n distinct names that look like resource types ("Aa", "Ab", ...): none is one.
func distinctTypeNames(n int) []string {
	names := make([]string, 0, n)
	for i := 0; len(names) < n; i++ {
		name := []byte("Aq")
		for x := i; ; x /= 26 {
			name = append(name, byte('a'+x%26))
			if x < 26 {
				break
			}
		}
		names = append(names, string(name))
	}
	return names
}

func hostileCases() []hostileCase {
	async := http.Header{"Prefer": {"respond-async"}, "Authorization": {"Bearer " + tokenA}}
	lenientJSON := http.Header{"Prefer": {"respond-async, handling=lenient"}, "Authorization": {"Bearer " + tokenA}, "Content-Type": {"application/fhir+json"}}
	authA := http.Header{"Authorization": {"Bearer " + tokenA}}
	manyTypes := `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"` + strings.Join(distinctTypeNames(120_000), ",") + `"}]}`
	var manyParams strings.Builder
	manyParams.WriteString(`{"resourceType":"Parameters","parameter":[`)
	for i, n := range distinctTypeNames(50_000) {
		if i > 0 {
			manyParams.WriteByte(',')
		}
		manyParams.WriteString(`{"name":"` + strings.ToLower(n) + `"}`)
	}
	manyParams.WriteString(`]}`)
	return []hostileCase{
		{name: "a kick-off _type of 120000 distinct names (a body under the cap)", method: http.MethodPost, target: "/fhir/$export",
			header: lenientJSON, body: manyTypes, status: http.StatusRequestEntityTooLarge, code: codeTooCostly, contains: "keeps at most"},
		{name: "a lenient kick-off with 50000 unsupported parameters", method: http.MethodPost, target: "/fhir/$export",
			header: lenientJSON, body: manyParams.String(), status: http.StatusRequestEntityTooLarge, code: codeTooCostly, contains: "keeps at most"},
		{name: "a kick-off _type with a percent-encoding error", method: http.MethodGet, target: "/fhir/$export?_type=Patient%zz",
			header: async, status: http.StatusBadRequest, code: codeInvalid, contains: "query"},
		{name: "a kick-off query with a ';' separator", method: http.MethodGet, target: "/fhir/$export?_since=2020-01-01T00:00:00Z;_type=Patient",
			header: async, status: http.StatusBadRequest, code: codeInvalid, contains: "query"},
		{name: "a poll _jobId with a percent-encoding error", method: http.MethodGet, target: "/fhir/$export-poll-status?_jobId=%zz",
			header: authA, status: http.StatusBadRequest, code: codeInvalid, contains: "query"},
		{name: "a DELETE _jobId with a percent-encoding error", method: http.MethodDelete, target: "/fhir/$export-poll-status?_jobId=%zz",
			header: authA, status: http.StatusBadRequest, code: codeInvalid, contains: "query"},
		{name: "two Authorization headers naming two users", method: http.MethodGet, target: "/fhir/$get-report-job-status",
			header: http.Header{"Authorization": {"Bearer " + tokenA, "Bearer " + tokenB}}, status: http.StatusBadRequest, code: codeInvalid, contains: "Authorization"},
		{name: "two Authorization headers on a Binary", method: http.MethodGet, target: "/fhir/Binary/1",
			header: http.Header{"Authorization": {"Bearer " + tokenB, "Bearer " + tokenA}}, status: http.StatusBadRequest, code: codeInvalid, contains: "Authorization"},
		// Already right when written; kept so that they stay so.
		{name: "Bearer without a token", method: http.MethodGet, target: "/fhir/$get-report-job-status",
			header: http.Header{"Authorization": {"Bearer"}}, status: http.StatusUnauthorized, code: codeLogin, contains: "bearer"},
		{name: "a token that is not UTF-8", method: http.MethodGet, target: "/fhir/$get-report-job-status",
			header: http.Header{"Authorization": {"Bearer \xff\xfe"}}, status: http.StatusUnauthorized, code: codeLogin, contains: "bearer"},
		{name: "a deeply nested body", method: http.MethodPost, target: "/fhir/$execute-patient-total",
			header: http.Header{"Authorization": {"Bearer " + tokenA}, "Content-Type": {"application/fhir+json"}}, body: strings.Repeat("[", 100_000),
			status: http.StatusBadRequest, code: codeInvalid, contains: "JSON"},
		{name: "a body of another resource type", method: http.MethodPost, target: "/fhir/$get-report-job-status",
			header: http.Header{"Authorization": {"Bearer " + tokenA}, "Content-Type": {"application/fhir+json"}}, body: `{"resourceType":"Patient"}`,
			status: http.StatusBadRequest, code: codeInvalid, contains: "Parameters"},
		{name: "a body over the cap", method: http.MethodPost, target: "/fhir/$execute-patient-total",
			header: http.Header{"Authorization": {"Bearer " + tokenA}, "Content-Type": {"application/fhir+json"}}, body: strings.Repeat(" ", 2<<20),
			status: http.StatusRequestEntityTooLarge, code: codeTooCostly, contains: "limit"},
		{name: "a Binary id that climbs out", method: http.MethodGet, target: "/fhir/Binary/..%2F..%2Fetc%2Fpasswd",
			header: authA, status: http.StatusNotFound, code: codeNotFound, contains: "Binary"},
		{name: "a Binary id that is not UTF-8", method: http.MethodGet, target: "/fhir/Binary/%FF%00",
			header: authA, status: http.StatusNotFound, code: codeNotFound, contains: "Binary"},
	}
}

// panicGuard wraps a handler and counts the panics that leave it: net/http would recover them silently.
type panicGuard struct {
	h      http.Handler
	panics atomic.Int32
}

func (g *panicGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			g.panics.Add(1)
			panic(v)
		}
	}()
	g.h.ServeHTTP(w, r)
}

// Every hostile request gets its 4xx OperationOutcome, in every profile, within hostileDeadline, and the
// server never panics.
func TestHostileRequestsGetOperationOutcomes(t *testing.T) {
	for _, profile := range Profiles {
		srv, err := NewServer(Config{Profile: profile, Clock: newManualClock()})
		if err != nil {
			t.Fatal(err)
		}
		guard := &panicGuard{h: srv.Handler()}
		ts := httptest.NewServer(guard)
		t.Cleanup(ts.Close)
		for _, c := range hostileCases() {
			t.Run(string(profile)+"/"+c.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), hostileDeadline)
				defer cancel()
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				r, err := http.NewRequestWithContext(ctx, c.method, ts.URL+c.target, body)
				if err != nil {
					t.Fatal(err)
				}
				for k, vs := range c.header {
					r.Header[k] = vs
				}
				before, _ := proccpu.Used()
				resp, err := ts.Client().Do(r)
				if err != nil {
					t.Fatalf("%s %s: no answer within %s: %v", c.method, c.target, hostileDeadline, err)
				}
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("read answer: %v", err)
				}
				if after, ok := proccpu.Used(); ok && after-before > hostileCPU {
					t.Errorf("%s %s: %s of CPU for one answer, more than %s", c.method, c.target, after-before, hostileCPU)
				}
				if n := guard.panics.Load(); n > 0 {
					t.Fatalf("the handler panicked (%d so far)", n)
				}
				if resp.StatusCode != c.status {
					t.Fatalf("status: expected %d, got %d: %.300s", c.status, resp.StatusCode, got)
				}
				if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/fhir+json" {
					t.Fatalf("Content-Type: expected application/fhir+json, got %q", resp.Header.Get("Content-Type"))
				}
				var oo testOO
				if err := json.Unmarshal(got, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 {
					t.Fatalf("expected a one-issue OperationOutcome, got %.300s", got)
				}
				if is := oo.Issue[0]; is.Severity != sevError || is.Code != c.code || !strings.Contains(is.Diagnostics, c.contains) {
					t.Fatalf("issue: expected error/%s saying %q, got %s/%s %q", c.code, c.contains, is.Severity, is.Code, is.Diagnostics)
				}
			})
		}
	}
}

// A HEAD of an output file answers the GET's status and headers without producing the file: the file may be
// gigabytes generated on the fly (Synthetic), and net/http would only throw the bytes away.
func TestHeadOfAnOutputFileWritesNoContent(t *testing.T) {
	e, srv := newServerEnv(t, Config{ExportDuration: time.Second})
	poll := e.kickoff(tokenA, "?_type=Patient")
	e.clock.Advance(time.Second)
	m, _ := e.manifest(poll, tokenA)
	if len(m.Output) != 1 {
		t.Fatalf("output: expected one Patient file, got %d", len(m.Output))
	}
	for _, accept := range []string{"application/fhir+ndjson", "application/fhir+json"} {
		get := e.do(req{method: http.MethodGet, url: m.Output[0].URL, token: tokenA, headers: map[string]string{"Accept": accept}})
		wantStatus(t, get, http.StatusOK)
		// A recorder keeps what the handler writes, even for HEAD, where net/http would drop it.
		r := httptest.NewRequest(http.MethodHead, m.Output[0].URL, nil)
		r.Header.Set("Authorization", "Bearer "+tokenA)
		r.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Fatalf("HEAD, Accept %s: expected 200 without content, got %d with %d bytes", accept, rec.Code, rec.Body.Len())
		}
		for _, h := range []string{"Content-Type", "Content-Length"} {
			if got, want := rec.Header().Get(h), get.header.Get(h); got != want {
				t.Fatalf("HEAD, Accept %s: %s expected %q as for GET, got %q", accept, h, want, got)
			}
		}
	}
}

// A body declared larger than the cap is refused before it is asked for: with "Expect: 100-continue" the
// client hears 413 instead of "100 Continue" and sends none of it.
func TestDeclaredOversizedBodyIsRefusedBeforeItIsSent(t *testing.T) {
	for _, profile := range Profiles {
		srv, err := NewServer(Config{Profile: profile, Clock: newManualClock()})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		t.Cleanup(ts.Close)
		for _, c := range []struct{ target, headers string }{
			{"/fhir/$export", "Prefer: respond-async\r\nContent-Type: application/fhir+json\r\n"},
			{"/fhir/$execute-patient-total", "Content-Type: application/fhir+json\r\n"},
			{"/fhir/$get-report-job-status", "Content-Type: application/fhir+json\r\n"},
			{"/fhir/$export-poll-status", "Content-Type: application/fhir+json\r\n"},
			{TokenPath, "Content-Type: application/x-www-form-urlencoded\r\n"},
		} {
			if c.target == "/fhir/$export-poll-status" && !profile.pollsByPost() {
				continue
			}
			t.Run(string(profile)+c.target, func(t *testing.T) {
				conn, err := net.Dial("tcp", ts.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if err := conn.SetDeadline(time.Now().Add(hostileDeadline)); err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n%sContent-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n", c.target, tokenA, c.headers)
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("expected 413 before the body, got %d", resp.StatusCode)
				}
			})
		}
	}
}

// A HEAD of $export starts no job: HEAD is safe (RFC 9110 §9.3.2) and a kick-off is a GET or a POST. It is
// answered 405 with the methods that kick off, and the user's one job slot stays free for the GET after it.
func TestHeadOfExportStartsNoJob(t *testing.T) {
	e, srv := newServerEnv(t, Config{MaxJobsPerUser: 1})
	r := httptest.NewRequest(http.MethodHead, e.base+"/$export", nil)
	r.Header.Set("Authorization", "Bearer "+tokenA)
	r.Header.Set("Prefer", "respond-async")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, POST" || rec.Header().Get("Content-Location") != "" {
		t.Fatalf("HEAD $export: expected 405, Allow GET, POST and no polling location, got %d, Allow %q, Content-Location %q", rec.Code, rec.Header().Get("Allow"), rec.Header().Get("Content-Location"))
	}
	if poll := e.kickoff(tokenA, ""); poll == "" {
		t.Fatal("the GET kick-off after the HEAD found no job slot free")
	}
	put := e.do(req{method: http.MethodPut, url: "/$export", token: tokenA})
	if got := put.header.Get("Allow"); put.status != http.StatusMethodNotAllowed || strings.Contains(got, "HEAD") {
		t.Fatalf("PUT $export: expected 405 whose Allow does not offer HEAD, got %d, Allow %q", put.status, got)
	}
}
