package refserver

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// asyncHdr is a kick-off's headers: no-cache asks for a job of its own, not an identical one's (reuse.go).
var asyncHdr = map[string]string{"Prefer": "respond-async", "Cache-Control": "no-cache"}

type testManifest struct {
	TransactionTime     string       `json:"transactionTime"`
	Request             string       `json:"request"`
	RequiresAccessToken *bool        `json:"requiresAccessToken"`
	Output              []testOutput `json:"output"`
	Error               []any        `json:"error"`
}

type testOutput struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count *int   `json:"count"` // bulkdata only (Profile.countsOutput)
}

// count is the item's count, which the test's profile must send.
func (o testOutput) count(t *testing.T) int {
	t.Helper()
	if o.Count == nil {
		t.Fatalf("%s: the manifest item has no count", o.URL)
	}
	return *o.Count
}

// resources is how many resources an output file holds: its lines, downloaded as NDJSON; held to the
// manifest's count where the item has one.
func (e *env) resources(o testOutput) int {
	e.t.Helper()
	n := 0
	for _, line := range bytes.Split(e.download(o.URL, false), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	if o.Count != nil && *o.Count != n {
		e.t.Fatalf("%s: manifest count %d, file has %d lines", o.URL, *o.Count, n)
	}
	return n
}

// kickoff starts an export with GET and returns the polling URL.
func (e *env) kickoff(token, query string) string {
	e.t.Helper()
	r := e.do(req{method: http.MethodGet, url: "/$export" + query, token: token, headers: asyncHdr})
	wantStatus(e.t, r, http.StatusAccepted)
	loc := r.header.Get("Content-Location")
	if !strings.HasPrefix(loc, e.base+"/$export-poll-status?_jobId=") {
		e.t.Fatalf("content-location: expected %s/$export-poll-status?_jobId=..., got %q", e.base, loc)
	}
	return loc
}

func (e *env) manifest(poll, token string) (testManifest, response) {
	e.t.Helper()
	r := e.get(poll, token)
	wantStatus(e.t, r, http.StatusOK)
	var m testManifest
	decodeJSON(e.t, r.body, &m)
	return m, r
}

func TestExportKickoffGETAndPOST(t *testing.T) {
	e := newEnv(t, Config{})
	loc := e.kickoff(tokenA, "?_type=Patient&_outputFormat=application%2Ffhir%2Bndjson")
	if _, err := url.Parse(loc); err != nil {
		t.Fatalf("content-location: %v", err)
	}

	for _, body := range []string{
		"",
		`{"resourceType":"Parameters"}`,
		`{"resourceType":"Parameters","parameter":[{"name":"_outputFormat","valueString":"application/fhir+ndjson"},{"name":"_type","valueString":"Patient,Observation"},{"name":"_since","valueInstant":"2024-01-01T00:00:00Z"}]}`,
	} {
		r := e.do(req{method: http.MethodPost, url: "/$export", token: tokenA, body: body,
			headers: map[string]string{"Prefer": "respond-async", "Content-Type": "application/fhir+json"}})
		wantStatus(t, r, http.StatusAccepted)
		if len(r.body) != 0 {
			t.Fatalf("body: expected empty, got %s", r.body)
		}
		if !strings.Contains(r.header.Get("Content-Location"), "/$export-poll-status?_jobId=") {
			t.Fatalf("content-location: got %q", r.header.Get("Content-Location"))
		}
	}
}

func TestExportKickoffRejectsBadRequests(t *testing.T) {
	e := newEnv(t, Config{})
	fhirJSON := map[string]string{"Prefer": "respond-async", "Content-Type": "application/fhir+json"}
	cases := []struct {
		name   string
		r      req
		status int
	}{
		{"no Prefer", req{method: http.MethodGet, url: "/$export"}, 400},
		{"Prefer without respond-async", req{method: http.MethodGet, url: "/$export", headers: map[string]string{"Prefer": "return=minimal"}}, 400},
		{"bad _outputFormat", req{method: http.MethodGet, url: "/$export?_outputFormat=text/csv", headers: asyncHdr}, 400},
		{"bad _type", req{method: http.MethodGet, url: "/$export?_type=patient", headers: asyncHdr}, 400},
		{"empty _type item", req{method: http.MethodGet, url: "/$export?_type=Patient,,CarePlan", headers: asyncHdr}, 400},
		{"bad _since", req{method: http.MethodGet, url: "/$export?_since=yesterday", headers: asyncHdr}, 400},
		{"_since without offset", req{method: http.MethodGet, url: "/$export?_since=2024-01-01T00:00:00", headers: asyncHdr}, 400},
		{"unencoded plus in _since", req{method: http.MethodGet, url: "/$export?_since=2024-01-01T00:00:00+00:00", headers: asyncHdr}, 400},
		{"unsupported parameter", req{method: http.MethodGet, url: "/$export?_typeFilter=Patient%3Factive%3Dtrue", headers: asyncHdr}, 400},
		{"malformed JSON", req{method: http.MethodPost, url: "/$export", headers: fhirJSON, body: `{"resourceType":`}, 400},
		{"not Parameters", req{method: http.MethodPost, url: "/$export", headers: fhirJSON, body: `{"resourceType":"Patient"}`}, 400},
		{"JSON array", req{method: http.MethodPost, url: "/$export", headers: fhirJSON, body: `[]`}, 400},
		{"bad body _since", req{method: http.MethodPost, url: "/$export", headers: fhirJSON, body: `{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"2024"}]}`}, 400},
		{"_type not a string", req{method: http.MethodPost, url: "/$export", headers: fhirJSON, body: `{"resourceType":"Parameters","parameter":[{"name":"_type","valueInteger":1}]}`}, 400},
		{"wrong content type", req{method: http.MethodPost, url: "/$export", headers: map[string]string{"Prefer": "respond-async", "Content-Type": "text/plain"}, body: `{"resourceType":"Parameters"}`}, 415},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.token = tokenA
			r := e.do(tc.r)
			code := codeInvalid
			if tc.status == 415 {
				code = codeNotSupported
			}
			wantOO(t, r, tc.status, sevError, code)
		})
	}

	t.Run("lenient ignores unsupported parameters", func(t *testing.T) {
		r := e.do(req{method: http.MethodGet, url: "/$export?_typeFilter=x", token: tokenA,
			headers: map[string]string{"Prefer": "respond-async, handling=lenient"}})
		wantStatus(t, r, http.StatusAccepted)
	})
}

func TestExportPollingLifecycle(t *testing.T) {
	e := newEnv(t, Config{ExportDuration: 2 * time.Second, RetryAfter: 1500 * time.Millisecond})
	poll := e.kickoff(tokenA, "")

	r := e.get(poll, tokenA)
	wantStatus(t, r, http.StatusAccepted)
	if len(r.body) != 0 || r.header.Get("Content-Type") != "" {
		t.Fatalf("202: expected no body and no content-type, got %q %q", r.header.Get("Content-Type"), r.body)
	}
	xp := r.header.Get("X-Progress")
	if want := "Build in progress - Status set to IN_PROGRESS at 2025-12-05T11:33:54.465+00:00"; xp != want {
		t.Fatalf("x-progress: expected %q, got %q", want, xp)
	}
	if len(xp) >= 100 {
		t.Fatalf("x-progress: expected under 100 characters, got %d", len(xp))
	}
	if ra := r.header.Get("Retry-After"); ra != "2" {
		t.Fatalf("retry-after: expected whole seconds rounded up (2), got %q", ra)
	}

	e.clock.Advance(1999 * time.Millisecond)
	wantStatus(t, e.get(poll, tokenA), http.StatusAccepted)
	e.clock.Advance(time.Millisecond)

	m, r := e.manifest(poll, tokenA)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content-type: expected application/json, got %q", ct)
	}
	if want := "Fri, 05 Dec 2025 13:33:56 GMT"; r.header.Get("Expires") != want {
		t.Fatalf("expires: expected %q, got %q", want, r.header.Get("Expires"))
	}
	if m.TransactionTime != "2025-12-05T11:33:54.465+00:00" {
		t.Fatalf("transactionTime: expected the kick-off instant, got %q", m.TransactionTime)
	}
	if m.Request != e.base+"/$export" {
		t.Fatalf("request: expected %q, got %q", e.base+"/$export", m.Request)
	}
	if m.RequiresAccessToken == nil || !*m.RequiresAccessToken {
		t.Fatalf("requiresAccessToken: expected true")
	}
	if m.Error == nil || len(m.Error) != 0 {
		t.Fatalf("error: expected [], got %v", m.Error)
	}
	wantCounts := map[string]int{"CarePlan": 2, "Observation": 5, "Patient": 3}
	var types []string
	idRE := regexp.MustCompile(`^` + regexp.QuoteMeta(e.base) + `/Binary/[A-Za-z0-9]{32}$`)
	for _, o := range m.Output {
		types = append(types, o.Type)
		if o.Count != nil { // HAPI's manifest items are type and url (Profile.countsOutput)
			t.Fatalf("output %s: expected no count in fut, got %d", o.Type, *o.Count)
		}
		if !idRE.MatchString(o.URL) {
			t.Fatalf("output url: got %q", o.URL)
		}
	}
	if got := strings.Join(types, ","); got != "CarePlan,Observation,Patient" {
		t.Fatalf("output types: expected sorted CarePlan,Observation,Patient, got %s", got)
	}

	// Polling again answers the same manifest (files are created once).
	m2, _ := e.manifest(poll, tokenA)
	if m2.Output[0].URL != m.Output[0].URL {
		t.Fatalf("second poll: expected stable output urls")
	}

	// Download both forms.
	for _, o := range m.Output {
		raw := e.do(req{method: http.MethodGet, url: o.URL, token: tokenA, headers: map[string]string{"Accept": "application/fhir+ndjson"}})
		wantStatus(t, raw, http.StatusOK)
		wantNDJSON(t, "Accept: application/fhir+ndjson", raw, o.Type, wantCounts[o.Type])
		for _, accept := range []string{"application/fhir+json", "application/json+fhir", "application/fhir+json, application/fhir+ndjson;q=0.5"} {
			r := e.do(req{method: http.MethodGet, url: o.URL, token: tokenA, headers: map[string]string{"Accept": accept}})
			wantStatus(t, r, http.StatusOK)
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
				t.Fatalf("binary content-type for Accept %q: got %q", accept, ct)
			}
			var bin struct {
				ResourceType, ID, ContentType string
				Meta                          struct{ LastUpdated string }
				SecurityContext               struct{ Identifier struct{ Value string } }
				Data                          string
			}
			decodeJSON(t, r.body, &bin)
			data, err := base64.StdEncoding.DecodeString(bin.Data)
			if err != nil {
				t.Fatalf("binary data: %v", err)
			}
			if bin.ResourceType != "Binary" || bin.ContentType != "application/fhir+ndjson" ||
				bin.SecurityContext.Identifier.Value != DemoUserIDA || !bytes.Equal(data, raw.body) ||
				bin.Meta.LastUpdated != "2025-12-05T11:33:56.465+00:00" || !strings.HasSuffix(o.URL, "/"+bin.ID) {
				t.Fatalf("binary resource: unexpected %s", r.body)
			}
		}
		// Another user cannot read it; the answer is the unknown-id answer.
		wantOO(t, e.get(o.URL, tokenB), http.StatusNotFound, sevError, codeNotFound)
	}
	wantOO(t, e.get("/Binary/doesnotexist", tokenA), http.StatusNotFound, sevError, codeNotFound)

	// DELETE after completion: 404, and polling still answers 200.
	r = e.do(req{method: http.MethodDelete, url: poll, token: tokenA})
	d := wantOO(t, r, http.StatusNotFound, sevError, codeNotFound)
	if !strings.HasSuffix(d, "was already cancelled or has completed.  Nothing to do.") {
		t.Fatalf("diagnostics: got %q", d)
	}
	e.manifest(poll, tokenA)

	// After the 2 h retention the job and its files are gone.
	e.clock.Advance(2 * time.Hour)
	wantOO(t, e.get(poll, tokenA), http.StatusNotFound, sevError, codeNotFound)
	wantOO(t, e.get(m.Output[0].URL, tokenA), http.StatusNotFound, sevError, codeNotFound)
}

func TestExportTypeAndSinceFilters(t *testing.T) {
	e := newEnv(t, Config{})
	poll := e.kickoff(tokenA, "?_type=Patient,Encounter,Observation&_since="+url.QueryEscape("2025-01-01T00:00:00+00:00"))
	e.clock.Advance(DefaultExportDuration)
	m, r := e.manifest(poll, tokenA)
	if len(m.Output) != 2 || m.Output[0].Type != "Observation" || e.resources(m.Output[0]) != 2 || m.Output[1].Type != "Patient" || e.resources(m.Output[1]) != 1 {
		t.Fatalf("output: expected Observation(2), Patient(1), got %s", r.body)
	}
	if !strings.HasSuffix(m.Request, "/$export?_type=Patient,Encounter,Observation&_since=2025-01-01T00%3A00%3A00%2B00%3A00") {
		t.Fatalf("request: expected the kick-off URL with its query, got %q", m.Request)
	}

	// No data at all: output is [] (never absent).
	poll = e.kickoff(tokenA, "?_type=Encounter")
	e.clock.Advance(DefaultExportDuration)
	_, r = e.manifest(poll, tokenA)
	if !bytes.Contains(r.body, []byte(`"output":[]`)) {
		t.Fatalf("output: expected [], got %s", r.body)
	}
}

func TestExportCancel(t *testing.T) {
	e := newEnv(t, Config{})
	poll := e.kickoff(tokenA, "")
	id := poll[strings.LastIndex(poll, "=")+1:]

	r := e.do(req{method: http.MethodDelete, url: poll, token: tokenA})
	d := wantOO(t, r, http.StatusAccepted, sevInformation, codeInformational)
	if want := "Job instance " + id + " successfully cancelled."; d != want {
		t.Fatalf("diagnostics: expected %q, got %q", want, d)
	}

	for _, advance := range []time.Duration{0, 10 * time.Second} {
		e.clock.Advance(advance)
		d = wantOO(t, e.get(poll, tokenA), http.StatusNotFound, sevError, codeNotFound)
		if want := "Job instance " + id + " was cancelled.  No status to report."; d != want {
			t.Fatalf("diagnostics: expected %q, got %q", want, d)
		}
	}
	wantOO(t, e.do(req{method: http.MethodDelete, url: poll, token: tokenA}), http.StatusNotFound, sevError, codeNotFound)
}

func TestExportPollStatusErrors(t *testing.T) {
	e := newEnv(t, Config{})
	poll := e.kickoff(tokenA, "")
	id := poll[strings.LastIndex(poll, "=")+1:]

	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		for _, u := range []string{"/$export-poll-status", "/$export-poll-status?_jobId="} {
			wantOO(t, e.do(req{method: m, url: u, token: tokenA}), http.StatusBadRequest, sevError, codeRequired)
		}
		unknown := e.do(req{method: m, url: "/$export-poll-status?_jobId=" + id[:len(id)-1] + "x", token: tokenA})
		wantOO(t, unknown, http.StatusNotFound, sevError, codeNotFound)
		// Another user's job answers exactly like an unknown one.
		other := e.do(req{method: m, url: poll, token: tokenB})
		wantOO(t, other, http.StatusNotFound, sevError, codeNotFound)
		if want := strings.ReplaceAll(string(unknown.body), id[:len(id)-1]+"x", id); string(other.body) != want {
			t.Fatalf("cross-user answer leaks existence: %s vs %s", other.body, want)
		}
	}
	// The job was not cancelled by user B's DELETE.
	wantStatus(t, e.get(poll, tokenA), http.StatusAccepted)

	for _, m := range []string{http.MethodPut, http.MethodPatch} { // POST: TestExportPollStatusByPOST
		r := e.do(req{method: m, url: poll, token: tokenA})
		wantOO(t, r, http.StatusMethodNotAllowed, sevError, codeNotSupported)
		if allow := r.header.Get("Allow"); allow != "GET, HEAD, POST, DELETE" {
			t.Fatalf("allow: got %q", allow)
		}
	}
}

func TestRetryAfterIsWholeSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Millisecond: "1", time.Second: "1", 1001 * time.Millisecond: "2", 120 * time.Second: "120"} {
		if got := retryAfterSeconds(d); got != want {
			t.Errorf("retryAfterSeconds(%s): expected %s, got %s", d, want, got)
		}
		if _, err := strconv.Atoi(want); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPublicBaseURLAndBasePath(t *testing.T) {
	e := newEnv(t, Config{BasePath: "/api/fhir/", PublicBaseURL: "https://x.example/fhir/"})
	r := e.do(req{method: http.MethodGet, url: "/$export", token: tokenA, headers: asyncHdr})
	wantStatus(t, r, http.StatusAccepted)
	loc := r.header.Get("Content-Location")
	if !strings.HasPrefix(loc, "https://x.example/fhir/$export-poll-status?_jobId=") {
		t.Fatalf("content-location: expected the public base, got %q", loc)
	}
	e.clock.Advance(DefaultExportDuration)
	m, _ := e.manifest(e.base+loc[len("https://x.example/fhir"):], tokenA)
	if m.Request != "https://x.example/fhir/$export" || !strings.HasPrefix(m.Output[0].URL, "https://x.example/fhir/Binary/") {
		t.Fatalf("manifest urls: expected the public base, got %q / %q", m.Request, m.Output[0].URL)
	}
	wantStatus(t, e.get(e.root+"/fhir/metadata", ""), http.StatusNotFound)
}

// A file request without Accept is the HL7 IG's default (application/fhir+ndjson) and HAPI's raw Binary content,
// in every profile: only a request that names FHIR JSON gets the Binary resource.
func TestOutputFileDefaultAccept(t *testing.T) {
	cases := []struct {
		accept, query string
		resource      bool
	}{
		{accept: "", resource: false},
		{accept: "application/fhir+ndjson", resource: false},
		{accept: "application/ndjson", resource: false},
		{accept: "*/*", resource: false},
		{accept: "application/octet-stream", resource: false},
		{accept: "application/json", resource: false}, // HAPI matches FHIR types strictly for Binary
		{accept: "application/fhir+ndjson, application/fhir+json;q=0.9", resource: false},
		{accept: "application/fhir+json;q=0", resource: false},
		{accept: "application/fhir+json", resource: true},
		{accept: "application/json+fhir", resource: true},
		{accept: "application/fhir+json, application/fhir+ndjson;q=0.5", resource: true},
		{query: "?_format=json", resource: true},
	}
	for _, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			e := newEnv(t, Config{Profile: p, ExportDuration: time.Second})
			poll := e.kickoff(tokenA, "?_type=Patient")
			e.clock.Advance(time.Second)
			m, _ := e.manifest(poll, tokenA)
			if len(m.Output) != 1 {
				t.Fatalf("output: expected one Patient file, got %d", len(m.Output))
			}
			file := m.Output[0]
			lines := e.resources(file)
			for _, c := range cases {
				headers := map[string]string{}
				if c.accept != "" {
					headers["Accept"] = c.accept
				}
				r := e.do(req{method: http.MethodGet, url: file.URL + c.query, token: tokenA, headers: headers})
				wantStatus(t, r, http.StatusOK)
				ct := r.header.Get("Content-Type")
				if c.resource {
					var bin struct{ ResourceType string }
					decodeJSON(t, r.body, &bin)
					if !strings.HasPrefix(ct, "application/fhir+json") || bin.ResourceType != "Binary" {
						t.Fatalf("Accept %q%s: expected the Binary resource as application/fhir+json, got %q %.80s", c.accept, c.query, ct, r.body)
					}
					continue
				}
				wantNDJSON(t, fmt.Sprintf("Accept %q", c.accept), r, "Patient", lines)
			}
		})
	}
}

// Config.FailExports: a job whose time is up has failed, and its polling location answers as HAPI answers a
// FAILED job, to a GET and a DELETE alike: 500 and an OperationOutcome, as HAPI's legacy application/json+fhir
// in fut and hapi-8.0 (issue code processing from HAPI 8.6, none before), application/fhir+json in bulkdata.
// While it runs it answers 202, as any job.
func TestAFailedExportAnswersTheErrorStatus(t *testing.T) {
	for _, c := range []struct {
		profile     Profile
		contentType string
		code        string
	}{
		{ProfileFUT, "application/json+fhir", codeProcessing},
		{ProfileHAPI80, "application/json+fhir", ""},
		{ProfileBulkData, "application/fhir+json", codeProcessing},
	} {
		t.Run(string(c.profile), func(t *testing.T) {
			e := newEnv(t, Config{Profile: c.profile, FailExports: true})
			poll := e.kickoff(tokenA, "")
			id := poll[strings.LastIndex(poll, "=")+1:]
			wantStatus(t, e.get(poll, tokenA), http.StatusAccepted)
			e.clock.Advance(DefaultExportDuration)
			for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodGet} {
				r := e.do(req{method: m, url: poll, token: tokenA})
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
					t.Fatalf("%s: Content-Type %q, want %s", m, ct, c.contentType)
				}
				if d := wantOOBody(t, r, http.StatusInternalServerError, sevError, c.code); !strings.Contains(d, id) {
					t.Fatalf("%s: diagnostics %q do not name the job", m, d)
				}
				if r.header.Get("Expires") != "" {
					t.Fatalf("%s: a failed export has no files to expire", m)
				}
			}
		})
	}
}
