package steps

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func file(contentType, body string) *Exchange {
	return &Exchange{Method: "GET", URL: "http://f/Binary/1", Status: 200, Header: http.Header{"Content-Type": {contentType}}, Body: []byte(body)}
}

func TestOutputFilesInBothFormsAreCountedAndHeldToTheirType(t *testing.T) {
	ndjsonBody := `{"resourceType":"Patient","id":"1"}` + "\n" + `{"resourceType":"Patient","id":"2"}` + "\n"
	two := int64(2)
	f, err := readOutputFile(manifestItem{Type: "Patient", URL: "u", Count: &two}, file("application/fhir+ndjson", ndjsonBody))
	if err != nil || f.resources != 2 || f.format != "ndjson" {
		t.Fatalf("ndjson: %+v %v", f, err)
	}
	binary := `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + base64.StdEncoding.EncodeToString([]byte(ndjsonBody)) + `"}`
	f, err = readOutputFile(manifestItem{Type: "Patient", URL: "u"}, file("application/fhir+json;charset=utf-8", binary))
	if err != nil || f.resources != 2 || f.format != "Binary" {
		t.Fatalf("Binary: %+v %v", f, err)
	}
	for name, c := range map[string]struct {
		item manifestItem
		x    *Exchange
		want string
	}{
		"wrong type":      {manifestItem{Type: "Observation", URL: "u"}, file("application/fhir+ndjson", ndjsonBody), `resourceType "Patient"`},
		"wrong count":     {manifestItem{Type: "Patient", URL: "u", Count: new(int64)}, file("application/fhir+ndjson", ndjsonBody), "0 resources"},
		"not json":        {manifestItem{Type: "Patient", URL: "u"}, file("application/fhir+ndjson", "{oops\n"), "line 1"},
		"wrong media":     {manifestItem{Type: "Patient", URL: "u"}, file("text/html", "<html>"), "text/html"},
		"binary bad data": {manifestItem{Type: "Patient", URL: "u"}, file("application/fhir+json", `{"resourceType":"Binary","contentType":"x","data":"%%%"}`), "base64"},
	} {
		_, err := readOutputFile(c.item, c.x)
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want a violation mentioning %q, got %v", name, c.want, err)
		}
	}
}

func TestTranscriptAndCurlNeverShowTheToken(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "http://t/fhir/$export-poll-status?_jobId=1",
		RequestHeader: http.Header{"Authorization": {"Bearer s3cr3t-token"}, "Accept": {"application/json"}},
		Status:        202, Header: http.Header{"X-Progress": {"running"}, "Set-Cookie": {"session=abc"}}}
	for name, text := range map[string]string{"transcript": x.Transcript(), "curl": x.Curl()} {
		if strings.Contains(text, "s3cr3t-token") || strings.Contains(text, "session=abc") {
			t.Errorf("%s leaks a secret:\n%s", name, text)
		}
	}
	if !strings.Contains(x.Curl(), `"Authorization: Bearer $TOKEN"`) || !strings.Contains(x.Transcript(), "Authorization: Bearer [redacted]") {
		t.Errorf("want the token shown as $TOKEN / [redacted]:\n%s\n%s", x.Curl(), x.Transcript())
	}
}

func TestTranscriptCutsLongBodies(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{}, Body: []byte(strings.Repeat("é", 5000))}
	text := x.Transcript()
	if len(text) > 3*transcriptBodyLimit || !strings.Contains(text, "more bytes]") {
		t.Fatalf("body not cut to a readable length (%d bytes)", len(text))
	}
}
