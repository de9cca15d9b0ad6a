package steps

import (
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
)

// A completed export polled again must answer the same files (EXP-RETAINED), in whatever order: HAPI builds
// the output list from a map, and BDA2 orders nothing. A file gone, or another one, still fails.
func TestTheSameManifestMayListItsFilesInAnotherOrder(t *testing.T) {
	const (
		first = `{"transactionTime":"2026-01-01T00:00:00Z","request":"r","requiresAccessToken":true,"output":[` +
			`{"type":"Patient","url":"http://f/Binary/1"},{"type":"Observation","url":"http://f/Binary/2"}],"error":[]}`
		reordered = `{"transactionTime":"2026-01-01T00:00:00Z","request":"r","requiresAccessToken":true,"output":[` +
			`{"type":"Observation","url":"http://f/Binary/2"},{"type":"Patient","url":"http://f/Binary/1"}],"error":[]}`
		another = `{"transactionTime":"2026-01-01T00:00:00Z","request":"r","requiresAccessToken":true,"output":[` +
			`{"type":"Observation","url":"http://f/Binary/2"},{"type":"Patient","url":"http://f/Binary/3"}],"error":[]}`
	)
	w, _ := worldWithResponse(t, []byte(first), false)
	w.last.Method, w.last.URL = "GET", "http://fut.example/fhir/$export-poll-status?_jobId=1"
	w.last.Header.Set("Content-Type", "application/json")
	m, err := check.CheckManifest("", w.last)
	if err != nil {
		t.Fatal(err)
	}
	w.export.manifest = m
	w.last.Body = []byte(reordered)
	if err := w.responseIsSameManifest(w.last); err != nil {
		t.Errorf("the same files in another order: %v", err)
	}
	w.last.Body = []byte(another)
	if err := w.responseIsSameManifest(w.last); err == nil || !strings.Contains(err.Error(), "Binary/3") {
		t.Errorf("another file must fail naming it, got %v", err)
	}
}
