package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// A completed export polled again must answer the same files (EXP-RETAINED), in whatever order: HAPI builds
// the output list from a map, and BDA2 orders nothing. A file gone, or another one, still fails.
func TestTheSameManifestMayListItsFilesInAnotherOrder(t *testing.T) {
	const (
		first = `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[` +
			`{"type":"Patient","url":"http://f/Binary/1"},{"type":"Observation","url":"http://f/Binary/2"}],"error":[]}`
		reordered = `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[` +
			`{"type":"Observation","url":"http://f/Binary/2"},{"type":"Patient","url":"http://f/Binary/1"}],"error":[]}`
		another = `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[` +
			`{"type":"Observation","url":"http://f/Binary/2"},{"type":"Patient","url":"http://f/Binary/3"}],"error":[]}`
	)
	w := worldWithManifest(t, "http://fut.example/fhir/$export-poll-status?_jobId=1", first)
	w.last.Body = []byte(reordered)
	if err := w.responseIsSameManifest(w.last); err != nil {
		t.Errorf("the same files in another order: %v", err)
	}
	w.last.Body = []byte(another)
	if err := w.responseIsSameManifest(w.last); err == nil || !strings.Contains(err.Error(), "Binary/3") {
		t.Errorf("another file must fail naming it, got %v", err)
	}
}

// Files that need no token come by URLs that authorize themselves (pre-signed, BDA2's Amazon S3 example),
// signed again on each status request: with requiresAccessToken false the same files under a new signature
// are the same manifest; another file, or a new query where a token is required, is not.
func TestARetainedManifestMaySignItsFileURLsAgain(t *testing.T) {
	manifest := func(token bool, files ...string) string {
		var items []string
		for _, f := range files {
			items = append(items, `{"type":"Patient","url":"https://files.example/`+f+`"}`)
		}
		return fmt.Sprintf(`{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":%v,"output":[%s],"error":[]}`, token, strings.Join(items, ","))
	}
	for _, c := range []struct {
		name         string
		first, again string
		same         bool
	}{
		{"re-signed, no token", manifest(false, "p1.ndjson?X-Amz-Signature=aa"), manifest(false, "p1.ndjson?X-Amz-Signature=bb"), true},
		{"another file, no token", manifest(false, "p1.ndjson?X-Amz-Signature=aa"), manifest(false, "p2.ndjson?X-Amz-Signature=bb"), false},
		{"another query, token required", manifest(true, "p1.ndjson?part=1"), manifest(true, "p1.ndjson?part=2"), false},
	} {
		w, _ := worldWithResponse(t, []byte(c.first), false)
		w.last.Method, w.last.URL = "GET", "https://f.example/fhir/$export-poll-status?_jobId=1"
		w.last.Header.Set("Content-Type", "application/json")
		m, err := check.CheckManifest("", w.last)
		if err != nil {
			t.Fatal(err)
		}
		w.export.manifest = m
		w.last.Body = []byte(c.again)
		if err := w.responseIsSameManifest(w.last); (err == nil) != c.same {
			t.Errorf("%s: got %v, want the same manifest: %v", c.name, err, c.same)
		}
	}
}

// An error OperationOutcome in HAPI's media types (its legacy application/json+fhir, none, or a gateway's
// application/json) is a known deviation in fut and hapi-8.0, the rest of it still checked, and a failure in
// bulkdata, whose IG asks for application/fhir+json; any other media type fails in every profile.
func TestOutcomeMediaTypeIsAToleranceOfTheProfile(t *testing.T) {
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	const oo = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`
	for _, c := range []struct {
		profile, mediaType, body string
		pass, known              bool // known: the media type reported as a known deviation
	}{
		{"fut", "application/json+fhir", oo, true, true},
		{"fut", "", oo, true, true},
		{"hapi-8.0", "application/json", oo, true, true},
		{"bulkdata", "application/json+fhir", oo, false, false},
		{"bulkdata", "", oo, false, false},
		{"fut", "text/html", oo, false, false},
		{"fut", "application/json+fhir", `{"resourceType":"Patient"}`, false, true},
		{"bulkdata", "application/fhir+json", oo, true, false},
	} {
		w, findings := worldWithResponse(t, []byte(c.body), false)
		w.profiles, w.target.Profile = profiles, c.profile
		w.last.Header.Del("Content-Type")
		if c.mediaType != "" {
			w.last.Header.Set("Content-Type", c.mediaType+"; charset=UTF-8")
		}
		err := w.checkOutcome("EXP-DELETE-DONE", w.last)
		if (err == nil) != c.pass {
			t.Errorf("%s, %q, %s: passed %v, want %v (%v)", c.profile, c.mediaType, c.body, err == nil, c.pass, err)
		}
		if known := findings.KnownDeviations(); c.known != (len(known) == 1 && strings.Contains(known[0].Message, "operation-outcome-media-type")) {
			t.Errorf("%s, %q: known deviations %+v", c.profile, c.mediaType, known)
		}
	}
}

// With EXPORT_TYPES the kick-off sends _type, and an output file of a type not asked for is the server
// ignoring it (BDA2 "_type"); without EXPORT_TYPES any type is the export's.
func TestOutputTypesStayWithinTheKickoffsType(t *testing.T) {
	const manifest = `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[` +
		`{"type":"Patient","url":"http://f/Binary/1"},{"type":"Observation","url":"http://f/Binary/2"}],"error":[]}`
	for _, c := range []struct {
		types string
		pass  bool
	}{{"", true}, {"Patient, Observation", true}, {"Patient", false}} {
		w, _ := worldWithResponse(t, []byte(manifest), false)
		w.target.ExportTypes = c.types
		w.last.Method, w.last.URL = "GET", "http://fut.example/fhir/$export-poll-status?_jobId=1"
		w.last.Header.Set("Content-Type", "application/json")
		err := w.checkManifest("", w.last)
		if (err == nil) != c.pass || !c.pass && !strings.Contains(err.Error(), `"Observation"`) {
			t.Errorf("EXPORT_TYPES %q: %v, want pass %v", c.types, err, c.pass)
		}
	}
}

// A retained manifest of thousands of files that differs in every URL fails with a bounded message: how
// many files are gone and new in each list, with a few of each, never a diff of every item (20,000 items
// made a diff of 3 MB, written into every report).
func TestARetainedManifestOfThousandsOfFilesFailsWithABoundedMessage(t *testing.T) {
	const n = 5000
	manifest := func(query string) string {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf(`{"type":"Patient","url":"https://files.example/p%d.ndjson?%s","count":10}`, i, query)
		}
		return `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[` + strings.Join(items, ",") + `],"error":[]}`
	}
	w := worldWithManifest(t, "https://f.example/fhir/$export-poll-status?_jobId=1", manifest("part=1"))
	w.last.Body = []byte(manifest("part=2"))
	err := w.responseIsSameManifest(w.last)
	if err == nil {
		t.Fatal("every URL changed, and the manifest passed as the same")
	}
	msg := err.Error()
	if len(msg) > 8<<10 {
		t.Errorf("the failure is %d bytes for %d changed files", len(msg), n)
	}
	for _, want := range []string{"5000 of the first manifest's 5000 output files gone", "5000 of the 5000 output files of the answer not in the first", "https://files.example/p0.ndjson?part=2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failure does not say %q:\n%s", want, msg)
		}
	}
}

// A later answer byte for byte the pooled export's completed one is the manifest the pool checked, and is not
// checked again (at 210,000 files a check costs about a second of CPU): here its Date, a year before the
// transactionTime, would fail the check, which it is not put to. Its media type is still judged, and any other
// answer is checked and compared.
func TestARetainedAnswerIdenticalToTheCompletedOneIsNotCheckedAgain(t *testing.T) {
	const (
		poll     = "http://fut.example/fhir/$export-poll-status?_jobId=j1"
		manifest = `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,` +
			`"output":[{"type":"Patient","url":"https://f.example/fhir/Binary/1"}],"error":[]}`
	)
	answer := func(mediaType, body string) *check.Exchange {
		return &check.Exchange{Method: "GET", URL: poll, Status: 200, Body: []byte(body),
			Header: http.Header{"Content-Type": {mediaType}, "Date": {"Wed, 01 Jan 2025 00:00:00 GMT"}}}
	}
	completed := answer("application/json", manifest)
	completed.Header.Del("Date")
	j := &pooledExport{user: "A", done: make(chan struct{}), polls: []*check.Exchange{completed}}
	close(j.done)
	w, _ := worldWithResponse(t, nil, false)
	w.export = exportState{owner: "A", pollURL: poll, pooled: j}
	if err := w.adoptPolls(context.Background(), j); err != nil {
		t.Fatal(err)
	}
	if err := w.checkManifest(reqPoll200, w.last); err != nil {
		t.Fatal(err)
	}

	same := answer("application/json; charset=utf-8", manifest)
	if _, err := check.CheckManifest("", same); err == nil {
		t.Fatal("the test's later answer passes the manifest check: it proves nothing")
	}
	if err := w.responseIsSameManifest(same); err != nil {
		t.Errorf("the completed answer again, byte for byte: %v", err)
	}
	if err := w.responseIsSameManifest(answer("text/plain", manifest)); err == nil || !strings.Contains(err.Error(), "text/plain") {
		t.Errorf("the completed answer again as text/plain: %v, want its media type failed", err)
	}
	other := answer("application/json", strings.Replace(manifest, "Binary/1", "Binary/2", 1))
	other.Header.Del("Date")
	if err := w.responseIsSameManifest(other); err == nil || !strings.Contains(err.Error(), "Binary/2") {
		t.Errorf("another file: %v, want it compared and failed, naming it", err)
	}
	w.export.manifest, j.manifest = nil, nil // neither the scenario nor the pool read a manifest
	if w.sameAnswerAsCompleted(same) {
		t.Error("the completed answer again is taken as the manifest checked, though none was read")
	}
}

// worldWithManifest is a world whose export completed with manifest, read from a 200 to a GET of poll.
func worldWithManifest(t *testing.T, poll, manifest string) *World {
	t.Helper()
	w, _ := worldWithResponse(t, []byte(manifest), false)
	w.last.Method, w.last.URL = "GET", poll
	w.last.Header.Set("Content-Type", "application/json")
	m, err := check.CheckManifest("", w.last)
	if err != nil {
		t.Fatal(err)
	}
	w.export.manifest = m
	return w
}

// BDA2's error status (a 4xx or 5xx, "returned by the server if the export operation fails") while the
// harness waits for an export to complete is an export the server failed, which the sources allow: no
// violation, but an *exportFailedError naming the answer, which skips the scenario (exportEnded). The answer's
// form is EXP-POLL-ERROR's (SHOULD): an OperationOutcome, as application/fhir+json (HAPI's legacy
// application/json+fhir a known deviation in fut). Retried errors stay retried, and a status of neither source
// still breaks EXP-POLL-200.
func TestAnExportThatFailsIsSkippedAndItsErrorAnswerJudged(t *testing.T) {
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	const poll = "http://fhir.example/$export-poll-status?_jobId=1"
	outcome := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Export failed: the disk is full"}]}`)
	transient := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"transient"}]}`)
	for _, c := range []struct {
		name, profile string
		strict        bool
		reqs          []string // the scenario's requirement tags
		status        int
		header        http.Header
		body          []byte
		verdict       check.Verdict
		failed        string // the *exportFailedError's message holds it; "" : no such error
		violation     string // the requirement of the violation returned; "" : none
		warning       bool   // a warning of EXP-POLL-ERROR
		known         bool   // a known deviation of EXP-POLL-ERROR
	}{
		{name: "HAPI's FAILED job, bulkdata's media type", profile: "bulkdata", reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"application/fhir+json"}}, body: outcome,
			verdict: check.Done, failed: `answered 500 Internal Server Error, its OperationOutcome saying "Export failed: the disk is full"`},
		{name: "HAPI's FAILED job as application/json+fhir in fut", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"application/json+fhir"}}, body: outcome,
			verdict: check.Done, failed: "the server failed the export", known: true},
		{name: "application/json+fhir in bulkdata", profile: "bulkdata", reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"application/json+fhir"}}, body: outcome,
			verdict: check.Done, failed: "the server failed the export", warning: true},
		{name: "SMART's 400", profile: "bulkdata", reqs: []string{"EXP-POLL-200", "EXP-POLL-ERROR"}, status: 400, header: http.Header{"Content-Type": {"application/fhir+json"}}, body: outcome,
			verdict: check.Done, failed: "answered 400 Bad Request"},
		{name: "a job gone before any DELETE: the polling location names nothing", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 404, header: http.Header{"Content-Type": {"application/fhir+json"}}, body: outcome,
			verdict: check.Done, violation: "EXP-POLL-200"},
		{name: "the owner's token refused", profile: "bulkdata", reqs: []string{"EXP-OUTPUT"}, status: 403, header: http.Header{"Content-Type": {"application/fhir+json"}}, body: outcome,
			verdict: check.Done, violation: "EXP-POLL-200"},
		{name: "an HTML page", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"text/html"}}, body: []byte("<html>oops</html>"),
			verdict: check.Done, failed: "answered 500 Internal Server Error, with no OperationOutcome", warning: true},
		{name: "an HTML page under STRICT in another requirement's scenario", profile: "fut", strict: true, reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"text/html"}}, body: []byte("<html>oops</html>"),
			verdict: check.Done, failed: "with no OperationOutcome", warning: true},
		{name: "an HTML page under STRICT in EXP-POLL-ERROR's scenario", profile: "fut", strict: true, reqs: []string{"EXP-POLL-200", "EXP-POLL-ERROR"}, status: 500, header: http.Header{"Content-Type": {"text/html"}}, body: []byte("<html>oops</html>"),
			verdict: check.Done, violation: "EXP-POLL-ERROR"},
		{name: "an OperationOutcome as text/plain", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"text/plain"}}, body: outcome,
			verdict: check.Done, failed: "the server failed the export", warning: true},
		{name: "a transient 5xx", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 500, header: http.Header{"Content-Type": {"application/fhir+json"}}, body: transient, verdict: check.Throttle},
		{name: "a 503 with Retry-After", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 503, header: http.Header{"Retry-After": {"1"}}, verdict: check.Throttle},
		{name: "a 429", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 429, header: http.Header{"Retry-After": {"1"}}, verdict: check.Throttle},
		{name: "a 204", profile: "fut", reqs: []string{"EXP-OUTPUT"}, status: 204, header: http.Header{}, verdict: check.Done, violation: "EXP-POLL-200"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, findings := worldWithResponse(t, nil, c.strict)
			w.profiles, w.scenarioReqs, w.target.Profile = profiles, c.reqs, c.profile
			x := &check.Exchange{Method: "GET", URL: poll, Status: c.status, Header: c.header, Body: c.body}
			verdict, err := w.judgeExportPoll(x)
			if verdict != c.verdict {
				t.Errorf("verdict %v, want %v", verdict, c.verdict)
			}
			var failed *exportFailedError
			var v *check.Violation
			switch {
			case c.failed != "":
				if !errors.As(err, &failed) || !strings.Contains(failed.cause, c.failed) || !strings.Contains(failed.cause, poll) {
					t.Fatalf("want the export failed, saying %q, got %v", c.failed, err)
				}
				if skip := w.exportEnded(err); !errors.Is(skip, godog.ErrSkip) || !w.export.settled {
					t.Errorf("a failed export must skip the scenario, nothing left to cancel; got %v", skip)
				}
				if s := findings.Skips(); len(s) != 1 || s[0].Message != failed.cause {
					t.Errorf("want one skip with the cause, got %+v", s)
				}
			case c.violation != "":
				if !errors.As(err, &v) || v.Requirement != c.violation {
					t.Fatalf("want a violation of %s, got %v", c.violation, err)
				}
			case err != nil:
				t.Fatalf("want no error, got %v", err)
			}
			warned := slices.ContainsFunc(findings.Warnings(), func(f Finding) bool { return f.Requirement == "EXP-POLL-ERROR" })
			known := slices.ContainsFunc(findings.KnownDeviations(), func(f Finding) bool { return f.Requirement == "EXP-POLL-ERROR" })
			if warned != c.warning || known != c.known {
				t.Errorf("warning of EXP-POLL-ERROR %v (want %v), known deviation %v (want %v): %+v %+v", warned, c.warning, known, c.known, findings.Warnings(), findings.KnownDeviations())
			}
		})
	}
}

// Every in-progress answer of a poll is held to EXP-RETRY-AFTER as the scenario's own step holds it: one
// value, delay-seconds or an HTTP-date; an empty one or two of them are no Retry-After a client can follow.
func TestEveryInProgressAnswerHoldsRetryAfterToOneValidValue(t *testing.T) {
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string][]string{"two values": {"1", "2"}, "empty": {""}, "invalid": {"soon"}} {
		w, _ := worldWithResponse(t, nil, false)
		w.profiles, w.scenarioReqs = profiles, []string{"EXP-OUTPUT"}
		x := &check.Exchange{Method: "GET", URL: "http://fut.example/fhir/$export-poll-status?_jobId=1", Status: 202,
			Header: http.Header{"X-Progress": {"IN_PROGRESS"}, "Retry-After": values}}
		var v *check.Violation
		if _, err := w.judgeExportPoll(x); !errors.As(err, &v) || v.Requirement != "EXP-RETRY-AFTER" {
			t.Errorf("%s %q: want a violation of EXP-RETRY-AFTER, got %v", name, values, err)
		}
	}
	w, _ := worldWithResponse(t, nil, false)
	w.profiles = profiles
	ok := &check.Exchange{Method: "GET", URL: "http://fut.example/fhir/$export-poll-status?_jobId=1", Status: 202,
		Header: http.Header{"X-Progress": {"IN_PROGRESS"}, "Retry-After": {"120"}}}
	if _, err := w.judgeExportPoll(ok); err != nil {
		t.Errorf("Retry-After 120: %v", err)
	}
}

// Pathling (aehrc/pathling, ExportOperationHelper) sends the complete status's Expires as Java's
// DateTimeFormatter.RFC_1123_DATE_TIME writes it, "Fri, 4 Dec 2026 18:57:10 GMT": a time in the future, but
// with a one-digit day from the 1st to the 9th of a month, no HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, day =
// 2DIGIT), which a cache reads as already expired (RFC 9111 §5.3). EXP-EXPIRES warns, as before, and now says
// that the header is no HTTP-date rather than that it is not in the future; its own scenario fails under
// STRICT. The same time written with two digits, Pathling's answer from the 10th on, passes.
func TestAnExpiresWithAOneDigitDayIsNoHTTPDate(t *testing.T) {
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	complete := func(expires string) *check.Exchange {
		return &check.Exchange{Method: "GET", URL: "http://pathling.example/fhir/$job?id=7f3a9c1e-2b4d-4b8a-9c0d-1e2f3a4b5c6d", Status: http.StatusOK,
			Header: http.Header{"Content-Type": {"application/json"}, "Date": {"Fri, 04 Dec 2026 16:57:10 GMT"}, "Expires": {expires}}}
	}
	for _, c := range []struct {
		name, expires string
		strict        bool
		reqs          []string
		warning       string // a word the EXP-EXPIRES warning holds; "" : none
		violation     bool
	}{
		{name: "Pathling's one-digit day", expires: "Fri, 4 Dec 2026 18:57:10 GMT", reqs: []string{"EXP-POLL-200"}, warning: "IMF-fixdate"},
		{name: "Pathling's one-digit day, STRICT, EXP-EXPIRES's scenario", expires: "Fri, 4 Dec 2026 18:57:10 GMT", strict: true, reqs: []string{"EXP-EXPIRES"}, violation: true},
		{name: "two digits", expires: "Fri, 04 Dec 2026 18:57:10 GMT", reqs: []string{"EXP-POLL-200"}},
		{name: "two digits, in the past", expires: "Fri, 04 Dec 2026 14:57:10 GMT", reqs: []string{"EXP-POLL-200"}, warning: "in the future"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, findings := worldWithResponse(t, nil, c.strict)
			w.profiles, w.scenarioReqs, w.target.Profile = profiles, c.reqs, "bulkdata"
			err := w.checkExpires(complete(c.expires))
			var v *check.Violation
			if c.violation {
				if !errors.As(err, &v) || v.Requirement != "EXP-EXPIRES" || !strings.Contains(v.Error(), "IMF-fixdate") {
					t.Fatalf("want a violation of EXP-EXPIRES naming the IMF-fixdate, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			var got []string
			for _, f := range findings.Warnings() {
				if f.Requirement == "EXP-EXPIRES" {
					got = append(got, f.Message)
				}
			}
			switch {
			case c.warning == "" && len(got) != 0:
				t.Errorf("want no EXP-EXPIRES warning, got %q", got)
			case c.warning != "" && (len(got) != 1 || !strings.Contains(got[0], c.warning)):
				t.Errorf("want one EXP-EXPIRES warning saying %q, got %q", c.warning, got)
			case c.warning == "IMF-fixdate" && strings.Contains(got[0], "in the future"):
				t.Errorf("a future time that is no HTTP-date is not \"not in the future\": %q", got[0])
			}
		})
	}
}
