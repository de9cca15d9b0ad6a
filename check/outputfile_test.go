package check

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
	f, err := ReadOutputFile(ManifestItem{Type: "Patient", URL: "u", Count: &two}, file("application/fhir+ndjson", ndjsonBody))
	if err != nil || f.Resources != 2 || f.Format != "ndjson" {
		t.Fatalf("ndjson: %+v %v", f, err)
	}
	binary := `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + base64.StdEncoding.EncodeToString([]byte(ndjsonBody)) + `"}`
	f, err = ReadOutputFile(ManifestItem{Type: "Patient", URL: "u"}, file("application/fhir+json;charset=utf-8", binary))
	if err != nil || f.Resources != 2 || f.Format != "Binary" {
		t.Fatalf("Binary: %+v %v", f, err)
	}
	for name, c := range map[string]struct {
		item ManifestItem
		x    *Exchange
		want string
	}{
		"wrong type":      {ManifestItem{Type: "Observation", URL: "u"}, file("application/fhir+ndjson", ndjsonBody), `resourceType "Patient"`},
		"wrong count":     {ManifestItem{Type: "Patient", URL: "u", Count: new(int64)}, file("application/fhir+ndjson", ndjsonBody), "0 resources"},
		"not json":        {ManifestItem{Type: "Patient", URL: "u"}, file("application/fhir+ndjson", "{oops\n"), "line 1"},
		"wrong media":     {ManifestItem{Type: "Patient", URL: "u"}, file("text/html", "<html>"), "text/html"},
		"binary bad data": {ManifestItem{Type: "Patient", URL: "u"}, file("application/fhir+json", `{"resourceType":"Binary","contentType":"x","data":"%%%"}`), "base64"},
	} {
		_, err := ReadOutputFile(c.item, c.x)
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want a violation mentioning %q, got %v", name, c.want, err)
		}
	}
}
