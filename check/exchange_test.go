package check

import (
	"net/http"
	"strings"
	"testing"
)

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
