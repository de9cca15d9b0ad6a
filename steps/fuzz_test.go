package steps

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// Fuzz targets over the code that reads what a server under test sends. Each must never panic, and must
// judge bad input as a deviation (ErrNonConformant) or a plain error, never pass it silently as something
// else. The seed corpora are in testdata/fuzz/<FuzzName>/; `go test` replays them, `make fuzz` explores.

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "0", "", " 5 ", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2025, 12, 5, 11, 33, 54, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, err := ParseRetryAfter(v, now)
		if err == nil && d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s: a negative delay", v, d)
		}
	})
}

func FuzzDecodeReportJobs(f *testing.F) {
	for _, name := range []string{"get-report-job-status.od-example.json", "get-report-job-status.empty.json", "get-report-job-status.failed-example.json"} {
		if b, err := fixtures.Example(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Parameters"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		jobs, err := decodeReportJobs(body)
		if err == nil && jobs == nil {
			t.Fatal("decodeReportJobs: nil jobs without an error")
		}
	})
}

func FuzzReadOutputFile(f *testing.F) {
	f.Add("application/fhir+ndjson", "Patient", []byte(`{"resourceType":"Patient","id":"1"}`+"\n"))
	f.Add("application/fhir+json", "Patient", []byte(`{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"eyJyZXNvdXJjZVR5cGUiOiJQYXRpZW50In0K"}`))
	f.Add("application/ndjson; charset=utf-8", "Observation", []byte("\n\n{}\n"))
	f.Add("text/html", "Patient", []byte("<html>"))
	f.Fuzz(func(t *testing.T, contentType, typ string, body []byte) {
		x := &Exchange{Method: "GET", URL: "http://f/Binary/1", Status: 200, Header: http.Header{"Content-Type": {contentType}}, Body: body}
		_, err := readOutputFile(manifestItem{Type: typ, URL: x.URL}, x)
		if err != nil && !errors.Is(err, ErrNonConformant) {
			t.Fatalf("readOutputFile: bad input must be a deviation, got %v", err)
		}
	})
}

func FuzzCheckManifest(f *testing.F) {
	for _, name := range []string{"export-manifest.fut-example.json", "export-manifest.bulkdata-example.json", "invalid/export-manifest.relative-url.json"} {
		if b, err := fixtures.Example(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"transactionTime":"x","request":"y","requiresAccessToken":true,"output":[],"error":[]}`))
	reqs, err := features.Requirements()
	if err != nil {
		f.Fatal(err)
	}
	target, err := Target{ExportBaseURL: "http://fut.example/fhir", ReportBaseURL: "http://fut.example/fhir"}.withDefaults()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		w := &World{target: &target, requirements: reqs, scenario: "fuzz"}
		w.last = &Exchange{Method: "GET", URL: "http://fut.example/fhir/$export-poll-status?_jobId=1", Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}, "Expires": {"Wed, 21 Oct 2099 07:28:00 GMT"}}, Body: body, Received: time.Now()}
		err := w.checkManifest("")
		if err != nil && !errors.Is(err, ErrNonConformant) {
			t.Fatalf("checkManifest: bad input must be a deviation, got %v", err)
		}
		if err == nil && w.export.manifest == nil {
			t.Fatal("checkManifest passed without keeping the manifest")
		}
	})
}

func FuzzCheckOperationOutcome(f *testing.F) {
	f.Add("application/fhir+json", []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`))
	f.Add("application/json", []byte(`{"resourceType":"OperationOutcome","issue":[]}`))
	f.Add("", []byte(`null`))
	f.Add("text/plain", []byte(`oops`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		x := &Exchange{Method: "GET", URL: "http://f/x", Status: 404, Header: http.Header{"Content-Type": {contentType}}, Body: body}
		if err := checkOperationOutcome("", x); err != nil && !errors.Is(err, ErrNonConformant) {
			t.Fatalf("checkOperationOutcome: bad input must be a deviation, got %v", err)
		}
	})
}
