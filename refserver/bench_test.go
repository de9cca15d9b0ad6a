package refserver

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func benchServer(b *testing.B) http.Handler {
	b.Helper()
	srv, err := NewServer(Config{Clock: newManualClock()})
	if err != nil {
		b.Fatal(err)
	}
	return srv.Handler()
}

func serve(h http.Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	return benchCall(h, method, target, DemoTokenA, header, body)
}

// One poll of a running export: the request the harness repeats most.
func BenchmarkPollRunningExport(b *testing.B) {
	h := benchServer(b)
	kick := serve(h, http.MethodGet, "/fhir/$export", "", map[string]string{"Prefer": "respond-async"})
	poll := kick.Header().Get("Content-Location")
	if kick.Code != http.StatusAccepted || poll == "" {
		b.Fatalf("kick-off: %d %s", kick.Code, kick.Body)
	}
	for b.Loop() {
		if rec := serve(h, http.MethodGet, poll, "", nil); rec.Code != http.StatusAccepted {
			b.Fatalf("poll: %d", rec.Code)
		}
	}
}

// The report job status of a user with 100 jobs.
func BenchmarkReportJobStatus(b *testing.B) {
	h := benchServer(b)
	params := `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"}]}`
	ct := map[string]string{"Content-Type": "application/fhir+json"}
	for range 100 {
		if rec := serve(h, http.MethodPost, "/fhir/$execute-patient-usage-stats", params, ct); rec.Code != http.StatusOK {
			b.Fatalf("execute: %d %s", rec.Code, rec.Body)
		}
	}
	for b.Loop() {
		if rec := serve(h, http.MethodPost, "/fhir/$get-report-job-status", `{"resourceType":"Parameters"}`, ct); rec.Code != http.StatusOK {
			b.Fatalf("status: %d", rec.Code)
		}
	}
}
