package refserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// fuzzPaths are the request-handling surfaces the fuzzer drives.
var fuzzPaths = []string{
	"/fhir/$export",
	"/fhir/$export-poll-status",
	"/fhir/$execute-patient-usage-stats",
	"/fhir/$schedule-patient-gdpr",
	"/fhir/$get-report-job-status",
	"/fhir/Binary/1",
	"/fhir/metadata",
	TokenPath,
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPut}

// FuzzHandler sends fuzzed methods, queries, headers and bodies through Handler(). The server must never
// panic (its recovery would answer 500), and every error answer must say what was wrong in the right form:
// an OperationOutcome with an issue under the FHIR base, an RFC 6749 error object at the token endpoint.
func FuzzHandler(f *testing.F) {
	f.Add(uint8(0), uint8(0), "_type=Patient&_since=2024-01-01T00:00:00Z", "", "respond-async", uint8(0), []byte(nil))
	f.Add(uint8(0), uint8(1), "", "application/fhir+json", "respond-async", uint8(0), []byte(`{"resourceType":"Parameters","parameter":[{"name":"_outputFormat","valueString":"text/csv"}]}`))
	f.Add(uint8(0), uint8(1), "", "application/fhir+json", "respond-async, handling=lenient", uint8(0), []byte(`{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"yesterday"}]}`))
	f.Add(uint8(1), uint8(0), "_jobId=0aaca7cd-67c3-48dd-a8c4-0cceecb5d276", "", "", uint8(0), []byte(nil))
	f.Add(uint8(1), uint8(2), "_jobId=%00%ff", "", "", uint8(1), []byte(nil))
	f.Add(uint8(0), uint8(0), "_type=Patient%zz;_since=x", "", "respond-async", uint8(0), []byte(nil))
	f.Add(uint8(1), uint8(1), "_jobId=%zz", "application/fhir+json", "", uint8(0), []byte(`{"resourceType":"Parameters","parameter":[{"name":"_jobId","valueString":"`+"\xff"+`"}]}`))
	f.Add(uint8(2), uint8(1), "", "application/fhir+json", "", uint8(0), []byte(`{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"NONE"}]}`))
	f.Add(uint8(2), uint8(1), "", "application/fhir+json", "", uint8(1), []byte(`{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"NONE"}]}`))
	f.Add(uint8(3), uint8(1), "", "application/json", "", uint8(0), []byte(`{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"},{"name":"patient","valueReference":{"reference":"Patient/1"}}]}`))
	f.Add(uint8(4), uint8(1), "", "text/plain", "", uint8(0), []byte(`{"resourceType":"Parameters"`))
	f.Add(uint8(5), uint8(0), "", "", "", uint8(2), []byte(nil))
	f.Add(uint8(7), uint8(1), "", "application/x-www-form-urlencoded", "", uint8(3), []byte("grant_type=client_credentials&client_id=client-a&client_secret=demo-secret-a"))
	f.Add(uint8(7), uint8(1), "client_secret=x", "application/x-www-form-urlencoded", "", uint8(3), []byte("grant_type=password"))

	clock := newManualClock()
	srv, err := NewServer(Config{Clock: clock, MaxBodyBytes: 4 << 10, Retention: 10 * time.Minute})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, pathIdx, methodIdx uint8, query, contentType, prefer string, auth uint8, body []byte) {
		clock.Advance(time.Minute) // jobs finish and expire as the fuzzer goes, so state stays bounded
		path := fuzzPaths[int(pathIdx)%len(fuzzPaths)]
		r := &http.Request{
			Method: fuzzMethods[int(methodIdx)%len(fuzzMethods)], URL: &url.URL{Path: path, RawQuery: query},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: "refserver.test",
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}
		r = r.WithContext(context.Background())
		r.RequestURI = r.URL.RequestURI()
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		if prefer != "" {
			r.Header.Set("Prefer", prefer)
		}
		switch auth % 4 {
		case 0:
			r.Header.Set("Authorization", "Bearer "+DemoTokenA)
		case 1:
			r.Header.Set("Authorization", "Bearer "+DemoTokenB)
		case 2:
			r.Header.Set("Authorization", "Bearer "+query)
		case 3:
			r.SetBasicAuth(DemoClientIDA, DemoClientSecretA)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		checkAnswer(t, path, rec)
	})
}

func checkAnswer(t *testing.T, path string, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("%d: a server error (a recovered panic?): %s", rec.Code, rec.Body.Bytes())
	}
	if rec.Code < 400 {
		return
	}
	mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
	if path == TokenPath && rec.Code != http.StatusMethodNotAllowed {
		var e struct {
			Error string `json:"error"`
		}
		if mt != "application/json" || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
			t.Fatalf("token endpoint %d: expected an RFC 6749 error object, got %s %s", rec.Code, mt, rec.Body.Bytes())
		}
		return
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity, Code, Diagnostics string
		} `json:"issue"`
	}
	if mt != "application/fhir+json" || json.Unmarshal(rec.Body.Bytes(), &oo) != nil || oo.ResourceType != "OperationOutcome" ||
		len(oo.Issue) == 0 || oo.Issue[0].Severity == "" || oo.Issue[0].Code == "" || oo.Issue[0].Diagnostics == "" {
		t.Fatalf("%d: expected an OperationOutcome that says what was wrong, got %s %s", rec.Code, mt, rec.Body.Bytes())
	}
}
