package check

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
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
	if len(text) > 3*transcriptBodyLimit || !strings.Contains(text, "[cut: ") {
		t.Fatalf("body not cut to a readable length (%d bytes)", len(text))
	}
}

func TestCutKeepsTheHeadAndSaysHowMuchWent(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "u", Status: 202, Header: http.Header{}, Body: []byte(strings.Repeat("é", 4<<20))}
	x.Cut()
	if len(x.Body) > TranscriptHead || !utf8.Valid(x.Body) || x.BodyCut != int64(8<<20-len(x.Body)) {
		t.Fatalf("kept %d bytes (valid UTF-8: %v), cut %d", len(x.Body), utf8.Valid(x.Body), x.BodyCut)
	}
	if text := x.Transcript(); !strings.Contains(text, "[cut: 8.0 MiB more]") || len(text) > 3*transcriptBodyLimit {
		t.Errorf("the transcript does not note the cut, or is long (%d bytes):\n%s", len(text), text[len(text)-200:])
	}
}

func TestTranscriptIsValidUTF8WhateverTheServerSent(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"X-Progress": {"half\xffway"}}, Body: []byte("{\"a\":\"\xc3\x28\xfe\"}")}
	if text := x.Transcript(); !utf8.ValidString(text) || !strings.Contains(text, "half\uFFFDway") {
		t.Fatalf("transcript not valid UTF-8: %q", text)
	}
}

func TestTranscriptCutsHugeHeaderValues(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "u", Status: 202, Header: http.Header{"X-Progress": {strings.Repeat("p", 1<<20)}}}
	if text := x.Transcript(); len(text) > 2*transcriptHeaderLimit || !strings.Contains(text, "[cut: 1023.5 KiB more]") {
		t.Fatalf("header value not cut (%d bytes): %.300s", len(text), text)
	}
}

// A transcript names the URL a redirect led to, without its query: a pre-signed URL's signature lets anyone
// who reads the report download the user's exported file until it expires.
func TestATranscriptNamesARedirectWithoutItsSignature(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "http://t/fhir/Binary/1", Status: 403,
		Redirected: "https://store.example/bucket/Patient.ndjson?X-Amz-Credential=AKIA&X-Amz-Signature=f00d"}
	text := x.Transcript()
	if strings.Contains(text, "X-Amz-Signature") || strings.Contains(text, "f00d") {
		t.Errorf("the transcript shows the signature:\n%s", text)
	}
	if !strings.Contains(text, "answered by https://store.example/bucket/Patient.ndjson (its query of 42 bytes not shown") {
		t.Errorf("want the store and path named:\n%s", text)
	}
}

// A request that accepted a content coding (an output file's Accept-Encoding: gzip) is reproduced with curl's
// --compressed, which decodes the answer as the harness did: the header alone would print the gzip bytes.
func TestCurlOfARequestAcceptingGzipDecodesIt(t *testing.T) {
	x := &Exchange{Method: "GET", URL: "https://f.example/fhir/Binary/1", RequestHeader: http.Header{"Accept-Encoding": {"gzip"}}}
	if got, want := x.Curl(), `curl -i -X GET --compressed -H 'Accept-Encoding: gzip' 'https://f.example/fhir/Binary/1'`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	x.RequestHeader = http.Header{}
	if strings.Contains(x.Curl(), "--compressed") {
		t.Errorf("--compressed without an Accept-Encoding: %s", x.Curl())
	}
}
