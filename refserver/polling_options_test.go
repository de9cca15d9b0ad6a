package refserver

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// An _type naming no resource type the server knows is refused at kick-off, naming it; a known type without
// data is not an error; lenient handling drops the unknown ones.
func TestUnsupportedTypeIsRefusedNamingIt(t *testing.T) {
	e := newEnv(t, Config{})
	fhirJSON := map[string]string{"Prefer": "respond-async", "Content-Type": "application/fhir+json"}
	for name, r := range map[string]req{
		"GET":  {method: http.MethodGet, url: "/$export?_type=Nope", headers: asyncHdr},
		"POST": {method: http.MethodPost, url: "/$export", headers: fhirJSON, body: `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient,Nope"}]}`},
	} {
		r.token = tokenA
		d := wantOO(t, e.do(r), http.StatusBadRequest, sevError, codeNotSupported)
		if !strings.Contains(d, "Nope") || strings.Contains(d, "Patient,") {
			t.Errorf("%s: the diagnostics must name the unsupported type (and only it), got %q", name, d)
		}
	}

	// Thousands of unknown types, or one of kilobytes: the answer names a few, clipped, and says how many more.
	names := []string{strings.Repeat("X", 5000)}
	for i := range 2000 {
		names = append(names, "Nope"+string(rune('A'+i/26/26%26))+string(rune('A'+i/26%26))+string(rune('A'+i%26)))
	}
	d := wantOO(t, e.do(req{method: http.MethodGet, url: "/$export?_type=" + strings.Join(names, ",") + ",Nope0", headers: asyncHdr, token: tokenA}), http.StatusBadRequest, sevError, codeInvalid)
	if len(d) > 1100 || !strings.Contains(d, "bytes more]") {
		t.Errorf("the diagnostics of a huge _type must stay short and say what was cut, got %d bytes: %.300q", len(d), d)
	}
	names = names[1:] // type names, each unknown: named five at a time, clipped, and counted
	d = wantOO(t, e.do(req{method: http.MethodGet, url: "/$export?_type=" + strings.Join(names, ","), headers: asyncHdr, token: tokenA}), http.StatusBadRequest, sevError, codeNotSupported)
	if len(d) > 600 || !strings.Contains(d, "and 1995 more") {
		t.Errorf("the diagnostics of 2,000 unknown types must name a few and count the rest, got %d bytes: %.300q", len(d), d)
	}

	e.kickoff(tokenA, "?_type=Encounter") // an R4 type with no data: 202, and an empty output (TestExportTypeAndSinceFilters)

	lenient := map[string]string{"Prefer": "respond-async, handling=lenient"}
	for query, want := range map[string]string{"?_type=Nope,Patient": `"type":"Patient"`, "?_type=Nope": `"output":[]`} {
		r := e.do(req{method: http.MethodGet, url: "/$export" + query, token: tokenA, headers: lenient})
		wantStatus(t, r, http.StatusAccepted)
		e.clock.Advance(DefaultExportDuration)
		m, body := e.manifest(r.header.Get("Content-Location"), tokenA)
		if !strings.Contains(string(body.body), want) || len(m.Output) > 1 {
			t.Errorf("lenient %s: expected a manifest with %s only, got %s", query, want, body.body)
		}
	}
}

// With Throttle, a poll before the Retry-After the server announced (on the kick-off or on a 202) is answered
// 429 + Retry-After (the time left) + OperationOutcome; a poll on time gets the normal answer.
func TestThrottleAnswers429ToEarlyPolls(t *testing.T) {
	e := newEnv(t, Config{Throttle: true, RetryAfter: 3 * time.Second, ExportDuration: 10 * time.Second})
	r := e.do(req{method: http.MethodGet, url: "/$export", token: tokenA, headers: asyncHdr})
	wantStatus(t, r, http.StatusAccepted)
	if got := r.header.Get("Retry-After"); got != "3" {
		t.Fatalf("kick-off with throttling: expected Retry-After 3, got %q", got)
	}
	poll := r.header.Get("Content-Location")

	wantThrottled := func(step, retryAfter string) {
		t.Helper()
		r := e.get(poll, tokenA)
		wantOO(t, r, http.StatusTooManyRequests, sevError, codeThrottled)
		if got := r.header.Get("Retry-After"); got != retryAfter {
			t.Errorf("%s: expected Retry-After %s (the time left), got %q", step, retryAfter, got)
		}
	}
	wantThrottled("first poll at once", "3")
	e.clock.Advance(2500 * time.Millisecond)
	wantThrottled("first poll 2.5 s early", "1")
	e.clock.Advance(500 * time.Millisecond)
	wantStatus(t, e.get(poll, tokenA), http.StatusAccepted)
	wantThrottled("second poll at once", "3")
	if got := e.get(poll, tokenB); got.status != http.StatusNotFound {
		t.Errorf("another user's poll is not the owner's: expected 404, got %d", got.status)
	}
	e.clock.Advance(3 * time.Second)
	wantStatus(t, e.get(poll, tokenA), http.StatusAccepted)

	e.clock.Advance(10 * time.Second)
	e.manifest(poll, tokenA)
	e.manifest(poll, tokenA) // a 200 announces no delay: an immediate second poll is answered too

	// A DELETE is not a poll: it is never throttled.
	r = e.do(req{method: http.MethodGet, url: "/$export", token: tokenA, headers: asyncHdr})
	wantOO(t, e.do(req{method: http.MethodDelete, url: r.header.Get("Content-Location"), token: tokenA}), http.StatusAccepted, sevInformation, codeInformational)

	// Without Throttle, no poll is refused however early.
	e = newEnv(t, Config{RetryAfter: 3 * time.Second})
	poll = e.kickoff(tokenA, "")
	for range 3 {
		if r := e.get(poll, tokenA); r.status != http.StatusAccepted || r.header.Get("Retry-After") != "3" {
			t.Fatalf("without throttling: expected 202 with Retry-After 3, got %d %q", r.status, r.header.Get("Retry-After"))
		}
	}
}

// With PollPath "bulkstatus" the polling location has an independent HL7 Bulk Data server's shape,
// [base]/bulkstatus/<id>; GET and DELETE there behave as the polling location, and $export-poll-status is
// not served.
func TestPollPathServesTheBulkDataShape(t *testing.T) {
	e := newEnv(t, Config{PollPath: "bulkstatus", Profile: ProfileBulkData})
	r := e.do(req{method: http.MethodGet, url: "/$export?_type=Patient", token: tokenA, headers: asyncHdr})
	wantStatus(t, r, http.StatusAccepted)
	poll := r.header.Get("Content-Location")
	if !regexp.MustCompile(`^` + regexp.QuoteMeta(e.base) + `/bulkstatus/[0-9a-f-]{36}$`).MatchString(poll) {
		t.Fatalf("Content-Location: expected %s/bulkstatus/<uuid>, got %q", e.base, poll)
	}
	id := poll[strings.LastIndex(poll, "/")+1:]

	wantStatus(t, e.get(poll, tokenA), http.StatusAccepted)
	for _, r := range []req{
		{method: http.MethodGet, url: "/$export-poll-status?_jobId=" + url.QueryEscape(id)},
		{method: http.MethodDelete, url: "/$export-poll-status?_jobId=" + url.QueryEscape(id)},
		{method: http.MethodGet, url: "/$export-poll-status"},
	} {
		r.token = tokenA
		wantOO(t, e.do(r), http.StatusNotFound, sevError, codeNotFound)
	}
	for _, unknown := range []string{"/bulkstatus/00000000-0000-4000-8000-000000000000", "/bulkstatus/not%20an%20id"} {
		wantOO(t, e.get(unknown, tokenA), http.StatusNotFound, sevError, codeNotFound)
		wantOO(t, e.do(req{method: http.MethodDelete, url: unknown, token: tokenA}), http.StatusNotFound, sevError, codeNotFound)
	}
	wantOO(t, e.get(poll, tokenB), http.StatusNotFound, sevError, codeNotFound)

	e.clock.Advance(DefaultExportDuration)
	if m, _ := e.manifest(poll, tokenA); len(m.Output) != 1 || m.Output[0].Type != "Patient" {
		t.Fatalf("manifest at the bulkstatus location: expected one Patient file, got %+v", m.Output)
	}

	// Cancel at the polling location, then it is gone.
	r = e.do(req{method: http.MethodGet, url: "/$export", token: tokenA, headers: asyncHdr})
	poll = r.header.Get("Content-Location")
	wantOO(t, e.do(req{method: http.MethodDelete, url: poll, token: tokenA}), http.StatusAccepted, sevInformation, codeInformational)
	wantOO(t, e.get(poll, tokenA), http.StatusNotFound, sevError, codeNotFound)

	for _, bad := range []string{"a/b", "$export-poll-status", "Binary", "bulk status"} {
		if _, err := NewServer(Config{PollPath: bad}); err == nil || !strings.Contains(err.Error(), "poll path") {
			t.Errorf("PollPath %q: expected a config error naming the poll path, got %v", bad, err)
		}
	}
}
