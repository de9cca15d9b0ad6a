package check

import (
	"net/url"
	"strings"
	"testing"
)

func TestUnknownJobURLReplacesOnlyTheJobID(t *testing.T) {
	for _, tc := range []struct{ location, keep, id string }{
		{"http://h/fhir/$export-poll-status?_jobId=3854c799-5b71-4d5e-b0ec-6c03e1359f20", "http://h/fhir/$export-poll-status?_jobId=", "3854c799-5b71-4d5e-b0ec-6c03e1359f20"},
		{"https://bulk.example/fhir/bulkstatus/a1b2c3d4e5", "https://bulk.example/fhir/bulkstatus/", "a1b2c3d4e5"},
		{"https://bulk.example/fhir/bulkstatus/Job_42/", "https://bulk.example/fhir/bulkstatus/", "Job_42"},
		{"http://h/fhir/status?_format=json&id=77", "http://h/fhir/status?_format=json&id=", "77"},
	} {
		got, err := UnknownJobURL(tc.location)
		if err != nil {
			t.Fatalf("%s: %v", tc.location, err)
		}
		if !strings.HasPrefix(got, tc.keep) {
			t.Errorf("%s: want the location up to its job id kept (%s), got %s", tc.location, tc.keep, got)
			continue
		}
		other, _ := url.QueryUnescape(strings.TrimPrefix(got, tc.keep))
		if other == tc.id || len(other) != len(tc.id) {
			t.Errorf("%s: want another id of the same length than %q, got %q", tc.location, tc.id, other)
		}
		if uuidRE.MatchString(tc.id) != uuidRE.MatchString(other) {
			t.Errorf("%s: a UUID is replaced by a UUID (and only then), got %q", tc.location, other)
		}
		for i := range other {
			if isDigit(tc.id[i]) != isDigit(other[i]) && !uuidRE.MatchString(tc.id) || tc.id[i] == '_' && other[i] != '_' {
				t.Errorf("%s: character %d changed class: %q → %q", tc.location, i, tc.id, other)
			}
		}
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func TestUnknownJobURLNeedsAnAbsoluteLocationWithAnID(t *testing.T) {
	for _, bad := range []string{"", "bulkstatus/1", "http://h", "http://h/", "::"} {
		if got, err := UnknownJobURL(bad); err == nil {
			t.Errorf("%q: want an error, got %s", bad, got)
		}
	}
}
