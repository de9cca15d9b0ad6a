package steps

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
)

// Valid FHIR R4 that the strict decoder's library refuses (a resource in a Parameters) passes, judged around
// the gap, and each file's log says once how many lines met it: the confirmed false EXP-OUTPUT failure.
func TestOutputLinesTheFHIRLibraryRefusesWronglyPassAndAreLoggedOncePerFile(t *testing.T) {
	const line = `{"resourceType":"Parameters","parameter":[{"name":"patient","resource":{"resourceType":"Patient","id":"x"}}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", check.NDJSON)
		fmt.Fprint(w, strings.Repeat(line+"\n", 3))
	}))
	defer srv.Close()
	w := downloadWorld(t, 2)
	var log strings.Builder
	w.target.Log = &log
	m := manifestOf(srv.URL, 2, 3)
	for i := range m.Output {
		m.Output[i].Type = "Parameters"
	}
	w.export.manifest = m
	if err := w.downloadsOutputFiles(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	if err := w.outputFilesHoldTheirType(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, item := range m.Output {
		want := "  output file " + item.URL + ": valid FHIR R4 that github.com/google/fhir/go v0.7.4 refuses: 3 lines judged around a resource in Parameters.parameter\n"
		if strings.Count(log.String(), want) != 1 {
			t.Errorf("want the log to say once %q, got:\n%s", want, log.String())
		}
	}
}
