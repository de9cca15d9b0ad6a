package refserver

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

var fhirJSONHdr = map[string]string{"Content-Type": "application/fhir+json"}

func anonParams(value string, extra ...string) string {
	ps := []string{`{"name":"anonymization","valueString":"` + value + `"}`}
	ps = append(ps, extra...)
	return `{"resourceType":"Parameters","parameter":[` + strings.Join(ps, ",") + `]}`
}

type testBinary struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         struct {
		VersionID   string `json:"versionId"`
		LastUpdated string `json:"lastUpdated"`
	} `json:"meta"`
	ContentType     string `json:"contentType"`
	SecurityContext struct {
		Identifier struct {
			Value string `json:"value"`
		} `json:"identifier"`
	} `json:"securityContext"`
	Data string `json:"data"`
}

type testBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		FullURL  string `json:"fullUrl"`
		Resource struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
			Parameter    []struct {
				Name string `json:"name"`
				Part []struct {
					Name           string                     `json:"name"`
					ValueString    string                     `json:"valueString"`
					ValueDateTime  string                     `json:"valueDateTime"`
					ValueReference struct{ Reference string } `json:"valueReference"`
					Resource       json.RawMessage            `json:"resource"`
				} `json:"part"`
			} `json:"parameter"`
		} `json:"resource"`
	} `json:"entry"`
}

func (e *env) runReport(token, op, body string) testBinary {
	e.t.Helper()
	r := e.do(req{method: http.MethodPost, url: "/" + op, token: token, headers: fhirJSONHdr, body: body})
	wantStatus(e.t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		e.t.Fatalf("content-type: got %q", ct)
	}
	var b testBinary
	decodeJSON(e.t, r.body, &b)
	return b
}

func (e *env) jobStatus(token string) (testBundle, response) {
	e.t.Helper()
	r := e.do(req{method: http.MethodPost, url: "/$get-report-job-status", token: token, headers: fhirJSONHdr, body: `{"resourceType":"Parameters"}`})
	wantStatus(e.t, r, http.StatusOK)
	if ct := r.header.Get("Content-Type"); ct != "application/fhir+json; charset=utf-8" {
		e.t.Fatalf("content-type: got %q", ct)
	}
	var b testBundle
	decodeJSON(e.t, r.body, &b)
	if b.ResourceType != "Bundle" || b.Type != "collection" {
		e.t.Fatalf("bundle: got %s", r.body)
	}
	return b, r
}

func partsOf(t *testing.T, b testBundle, i int) map[string]string {
	t.Helper()
	res := b.Entry[i].Resource
	if res.ResourceType != "Parameters" || len(res.Parameter) != 1 || res.Parameter[0].Name != "reportJob" {
		t.Fatalf("entry %d: expected Parameters with one reportJob", i)
	}
	if b.Entry[i].FullURL != "urn:uuid:"+res.ID {
		t.Fatalf("entry %d fullUrl: expected urn:uuid:%s, got %s", i, res.ID, b.Entry[i].FullURL)
	}
	out := map[string]string{}
	var names []string
	for _, p := range res.Parameter[0].Part {
		names = append(names, p.Name)
		switch {
		case p.ValueString != "":
			out[p.Name] = p.ValueString
		case p.ValueDateTime != "":
			out[p.Name] = p.ValueDateTime
		case p.ValueReference.Reference != "":
			out[p.Name] = p.ValueReference.Reference
		case p.Resource != nil:
			out[p.Name] = string(p.Resource)
		}
	}
	out["_order"] = strings.Join(names, ",")
	return out
}

func TestReportJobsLifecycle(t *testing.T) {
	e := newEnv(t, Config{ReportDuration: 3 * time.Second})

	// A fresh user has no jobs: no entry key at all.
	_, r := e.jobStatus(tokenA)
	if bytes.Contains(r.body, []byte(`"entry"`)) {
		t.Fatalf("empty bundle: expected no entry key, got %s", r.body)
	}
	wantStatus(t, e.get("/$get-report-job-status", tokenA), http.StatusOK)

	ph := e.runReport(tokenA, "$execute-patient-usage-stats", anonParams("None"))
	if ph.ResourceType != "Binary" || ph.ID != "1" || ph.Meta.VersionID != "1" || ph.ContentType != "text/plain" ||
		ph.Data != "Kk5PVCBHRU5FUkFURUQgWUVUKg==" || ph.SecurityContext.Identifier.Value != DemoUserIDA ||
		ph.Meta.LastUpdated != "2025-12-05T11:33:54.465+00:00" {
		t.Fatalf("placeholder: unexpected %+v", ph)
	}
	e.clock.Advance(time.Second)
	ph2 := e.runReport(tokenA, "$schedule-patient-gdpr", anonParams("ANONYMIZED", `{"name":"patient","valueReference":{"reference":"Patient/pat-1"}}`))
	if ph2.ID != "2" {
		t.Fatalf("second placeholder id: expected 2, got %s", ph2.ID)
	}
	// User B's job is not listed for A.
	e.runReport(tokenB, "$execute-patient-total", anonParams("ANONYMIZED"))

	b, _ := e.jobStatus(tokenA)
	if len(b.Entry) != 2 {
		t.Fatalf("entries: expected 2, got %d", len(b.Entry))
	}
	p0 := partsOf(t, b, 0)
	if p0["_order"] != "reportClass,userId,status,binary,parameters,created,started" {
		t.Fatalf("parts while running: got %s", p0["_order"])
	}
	want := map[string]string{
		"reportClass": "com.systematic.ehealth.reporting.reports.PatientsUsageReport",
		"userId":      DemoUserIDA,
		"status":      "RUNNING",
		"binary":      e.base + "/Binary/1",
		"parameters":  `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"None"}]}`,
		"created":     "2025-12-05T11:33:54+00:00",
		"started":     "2025-12-05T11:33:54+00:00",
	}
	for k, v := range want {
		if p0[k] != v {
			t.Fatalf("part %s: expected %q, got %q", k, v, p0[k])
		}
	}
	if p1 := partsOf(t, b, 1); p1["reportClass"] != reportClassPrefix+"PatientGdprReport" || p1["created"] != "2025-12-05T11:33:55+00:00" {
		t.Fatalf("second entry: got %v", p1)
	}

	// The first job finishes 3 s after creation; the second is still running.
	e.clock.Advance(2 * time.Second)
	b, _ = e.jobStatus(tokenA)
	p0, p1 := partsOf(t, b, 0), partsOf(t, b, 1)
	if p0["status"] != "DONE" || p0["ended"] != "2025-12-05T11:33:57+00:00" || p1["status"] != "RUNNING" || p1["ended"] != "" {
		t.Fatalf("statuses: got %v / %v", p0, p1)
	}

	// The finished report Binary holds a zip with report.json.
	r = e.get("/Binary/1", tokenA)
	wantStatus(t, r, http.StatusOK)
	var done testBinary
	decodeJSON(t, r.body, &done)
	if done.ContentType != "application/zip" || done.Meta.VersionID != "2" || done.Meta.LastUpdated != "2025-12-05T11:33:57.465+00:00" {
		t.Fatalf("report binary: unexpected %+v", done)
	}
	zipped, err := base64.StdEncoding.DecodeString(done.Data)
	if err != nil {
		t.Fatalf("report data: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatalf("report zip: %v", err)
	}
	if len(zr.File) != 1 || zr.File[0].Name != "report.json" {
		t.Fatalf("zip entries: expected report.json only")
	}
	f, err := zr.File[0].Open()
	if err != nil {
		t.Fatalf("open report.json: %v", err)
	}
	content, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatalf("read report.json: %v", err)
	}
	var rep struct {
		Report     string            `json:"report"`
		Parameters []json.RawMessage `json:"parameters"`
		Generated  string            `json:"generated"`
	}
	decodeJSON(t, content, &rep)
	if rep.Report != "patient-usage-stats" || len(rep.Parameters) != 1 || rep.Generated != "2025-12-05T11:33:57+00:00" {
		t.Fatalf("report.json: got %s", content)
	}

	// Report Binaries are owner-only; the running one is still the placeholder.
	wantOO(t, e.get("/Binary/1", tokenB), http.StatusNotFound, sevError, codeNotFound)
	var still testBinary
	decodeJSON(t, e.get("/Binary/2", tokenA).body, &still)
	if still.Data != "Kk5PVCBHRU5FUkFURUQgWUVUKg==" || still.Meta.VersionID != "1" {
		t.Fatalf("running report binary: got %+v", still)
	}
	// Report Binaries are JSON even when NDJSON is asked for.
	r = e.do(req{method: http.MethodGet, url: "/Binary/1", token: tokenA, headers: map[string]string{"Accept": "application/fhir+ndjson"}})
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Fatalf("report binary content-type: got %q", ct)
	}

	b, _ = e.jobStatus(tokenB)
	if len(b.Entry) != 1 || partsOf(t, b, 0)["userId"] != DemoUserIDB {
		t.Fatalf("user B: expected only its own job")
	}
}

func TestReportOperationErrors(t *testing.T) {
	e := newEnv(t, Config{})
	cases := []struct {
		name    string
		token   string
		op      string
		headers map[string]string
		body    string
		status  int
		code    string
	}{
		{"NONE without permission", tokenB, "$execute-patient-usage-stats", fhirJSONHdr, anonParams("NONE"), 403, codeForbidden},
		{"none lower case without permission", tokenB, "$schedule-patient-usage-stats", fhirJSONHdr, anonParams("none"), 403, codeForbidden},
		{"missing anonymization", tokenA, "$execute-patient-usage-stats", fhirJSONHdr, `{"resourceType":"Parameters"}`, 400, codeRequired},
		{"empty body", tokenA, "$execute-patient-usage-stats", fhirJSONHdr, ``, 400, codeRequired},
		{"anonymization not a string", tokenA, "$execute-patient-usage-stats", fhirJSONHdr, `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueCode":"NONE"}]}`, 400, codeInvalid},
		{"anonymization twice", tokenA, "$execute-patient-usage-stats", fhirJSONHdr, anonParams("NONE", `{"name":"anonymization","valueString":"NONE"}`), 400, codeInvalid},
		{"missing patient", tokenA, "$execute-patient-gdpr", fhirJSONHdr, anonParams("NONE"), 400, codeRequired},
		{"missing practitioner", tokenA, "$schedule-practitioner-gdpr", fhirJSONHdr, anonParams("NONE"), 400, codeRequired},
		{"missing organization", tokenA, "$schedule-questionnaireresponses", fhirJSONHdr, anonParams("NONE"), 400, codeRequired},
		{"unknown report", tokenA, "$execute-no-such-report", fhirJSONHdr, anonParams("NONE"), 404, codeNotFound},
		{"malformed JSON", tokenA, "$execute-patient-total", fhirJSONHdr, `{`, 400, codeInvalid},
		{"not Parameters", tokenA, "$execute-patient-total", fhirJSONHdr, `{"resourceType":"Bundle"}`, 400, codeInvalid},
		{"wrong content type", tokenA, "$execute-patient-total", map[string]string{"Content-Type": "text/plain"}, anonParams("NONE"), 415, codeNotSupported},
		{"no token", "", "$execute-patient-total", fhirJSONHdr, anonParams("NONE"), 401, codeLogin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(req{method: http.MethodPost, url: "/" + tc.op, token: tc.token, headers: tc.headers, body: tc.body})
			d := wantOO(t, r, tc.status, sevError, tc.code)
			if tc.code == codeRequired && !strings.Contains(d, "anonymization") && !strings.Contains(d, "patient") &&
				!strings.Contains(d, "practitioner") && !strings.Contains(d, "organization") {
				t.Fatalf("diagnostics: expected the missing parameter's name, got %q", d)
			}
		})
	}
	// Nothing above created a job.
	if _, r := e.jobStatus(tokenA); bytes.Contains(r.body, []byte(`"entry"`)) {
		t.Fatalf("failed requests must not create jobs: %s", r.body)
	}
	// application/json is accepted too.
	wantStatus(t, e.do(req{method: http.MethodPost, url: "/$execute-patient-total", token: tokenA,
		headers: map[string]string{"Content-Type": "application/json; charset=utf-8"}, body: anonParams("NONE")}), http.StatusOK)

	// $get-report-job-status bodies must be Parameters.
	for _, body := range []string{`{`, `{"resourceType":"Patient"}`} {
		r := e.do(req{method: http.MethodPost, url: "/$get-report-job-status", token: tokenA, headers: fhirJSONHdr, body: body})
		wantOO(t, r, http.StatusBadRequest, sevError, codeInvalid)
	}
	wantStatus(t, e.do(req{method: http.MethodPost, url: "/$get-report-job-status", token: tokenA}), http.StatusOK)
	wantOO(t, e.do(req{method: http.MethodDelete, url: "/$get-report-job-status", token: tokenA}), http.StatusMethodNotAllowed, sevError, codeNotSupported)
	r := e.get("/$execute-patient-total", tokenA)
	wantOO(t, r, http.StatusMethodNotAllowed, sevError, codeNotSupported)
	if r.header.Get("Allow") != "POST" {
		t.Fatalf("allow: expected POST, got %q", r.header.Get("Allow"))
	}
}

func TestReportTable(t *testing.T) {
	if len(reportTypes) != 14 {
		t.Fatalf("report table: expected 14 types, got %d", len(reportTypes))
	}
	seen := map[string]bool{}
	for _, rt := range reportTypes {
		if seen[rt.name] || seen[rt.class] || !strings.HasPrefix(rt.class, reportClassPrefix) {
			t.Fatalf("report table: duplicate or malformed %+v", rt)
		}
		seen[rt.name], seen[rt.class] = true, true
	}
}
