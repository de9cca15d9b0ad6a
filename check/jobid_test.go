package check

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// The job id is the one part in which the polling locations of two kick-offs differ, wherever the server put
// it and whatever it named it; the rest of the location is kept byte for byte.
func TestUnknownJobURLReplacesThePartTwoKickoffsDifferIn(t *testing.T) {
	for _, tc := range []struct {
		name, location, other string
		prefix, suffix        string // the location around its job id, kept
		shape                 func(id string) bool
	}{
		{"FUT", "https://task.example/fhir/$export-poll-status?_jobId=3854c799-5b71-4d5e-b0ec-6c03e1359f20",
			"https://task.example/fhir/$export-poll-status?_jobId=0b7e5b5c-8a51-4f0e-9f4e-5d1f2d8c4a10",
			"https://task.example/fhir/$export-poll-status?_jobId=", "", uuidRE.MatchString},
		{"IBM job query parameter", "https://ibm.example/fhir-server/api/v4/$bulkdata-status?job=ZMVcxw8GwwV3tdp8n6gDpg",
			"https://ibm.example/fhir-server/api/v4/$bulkdata-status?job=Q2hfZ1wK3x0pLmNv7Rk9aA",
			"https://ibm.example/fhir-server/api/v4/$bulkdata-status?job=", "", alphanumericOfLength(26)},
		{"OpenEMR job query parameter", "https://emr.example/apis/default/fhir/$bulkdata-status?job=5ac6a7c8-1f5e-4e0a-9a3b-6b2f0c9d8e71",
			"https://emr.example/apis/default/fhir/$bulkdata-status?job=e0a41f37-2c8d-4b6a-8f0e-1d2c3b4a5f69",
			"https://emr.example/apis/default/fhir/$bulkdata-status?job=", "", uuidRE.MatchString},
		{"a short number in the path", "https://ms.example/_operations/export/7", "https://ms.example/_operations/export/12",
			"https://ms.example/_operations/export/", "", farAbove(12)},
		{"SMART bulkstatus", "https://bulk.example/fhir/bulkstatus/6e1d1b4c-3c4f-4b79-a6a4-0f1b2c3d4e5f",
			"https://bulk.example/fhir/bulkstatus/9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
			"https://bulk.example/fhir/bulkstatus/", "", uuidRE.MatchString},
		{"an id-named query parameter that is no job id", "https://h.example/fhir/bulkstatus/9f86d081884c7d65?_provider=acme",
			"https://h.example/fhir/bulkstatus/2c26b46b68ffc68f?_provider=acme",
			"https://h.example/fhir/bulkstatus/", "?_provider=acme", hexOfLength(20)},
		{"query order and escapes kept", "https://h.example/fhir/status?_pretty=true&x=a%2Fb&id=77&_format=json",
			"https://h.example/fhir/status?_pretty=true&x=a%2Fb&id=78&_format=json",
			"https://h.example/fhir/status?_pretty=true&x=a%2Fb&id=", "&_format=json", farAbove(78)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnknownJobURL(tc.location, tc.other)
			if err != nil {
				t.Fatal(err)
			}
			id, ok := strings.CutPrefix(got, tc.prefix)
			if ok {
				id, ok = strings.CutSuffix(id, tc.suffix)
			}
			if !ok {
				t.Fatalf("want %s<id>%s, the location with its job id replaced, got %s", tc.prefix, tc.suffix, got)
			}
			if !tc.shape(id) {
				t.Errorf("new job id %q: not of the expected shape", id)
			}
			if strings.Contains(tc.location, id) || strings.Contains(tc.other, id) {
				t.Errorf("new job id %q is one of the kick-offs' own", id)
			}
		})
	}
}

func alphanumericOfLength(n int) func(string) bool {
	return func(id string) bool {
		return len(id) == n && strings.Trim(id, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
	}
}

func hexOfLength(n int) func(string) bool {
	return func(id string) bool { return len(id) == n && strings.Trim(id, "0123456789abcdef") == "" }
}

// farAbove: digits stay digits, more than a hundred thousand times the largest id seen.
func farAbove(seen int) func(string) bool {
	return func(id string) bool {
		n, err := strconv.ParseUint(id, 10, 64)
		return err == nil && id[0] != '0' && n > uint64(seen)*100_000
	}
}

// Where the two locations do not differ in exactly one path segment or query value, nothing tells the job id:
// no location is derived.
func TestUnknownJobURLDoesNotGuess(t *testing.T) {
	for name, pair := range map[string][2]string{
		"two places":         {"https://h.example/fhir/bulkstatus/1?_provider=a", "https://h.example/fhir/bulkstatus/2?_provider=b"},
		"path and query":     {"https://h.example/fhir/a/status?job=1", "https://h.example/fhir/b/status?job=2"},
		"the same location":  {"https://h.example/fhir/bulkstatus/1", "https://h.example/fhir/bulkstatus/1"},
		"other origins":      {"https://a.example/fhir/bulkstatus/1", "https://b.example/fhir/bulkstatus/2"},
		"other path lengths": {"https://h.example/fhir/bulkstatus/1", "https://h.example/fhir/bulkstatus/1/2"},
		"other query names":  {"https://h.example/fhir/status?job=1", "https://h.example/fhir/status?id=2"},
		"other query order":  {"https://h.example/fhir/status?job=1&p=x", "https://h.example/fhir/status?p=x&job=2"},
		"an empty id":        {"https://h.example/fhir/status?job=", "https://h.example/fhir/status?job=2"},
	} {
		if got, err := UnknownJobURL(pair[0], pair[1]); !errors.Is(err, ErrNoJobID) {
			t.Errorf("%s: want an error wrapping ErrNoJobID, got %q, %v", name, got, err)
		}
	}
}

// A location read alone shows where its job id is only in FUT's and HAPI's documented form, a single _jobId
// query parameter: that one is replaced by a UUID for a UUID (the rest kept), any other form is no guess.
func TestUnknownJobURLFromOneLocationReadsOnlyFUTsJobID(t *testing.T) {
	const fut = "https://task.example/fhir/$export-poll-status?_jobId=3854c799-5b71-4d5e-b0ec-6c03e1359f20"
	got, err := UnknownJobURL(fut, "")
	if err != nil {
		t.Fatal(err)
	}
	id, ok := strings.CutPrefix(got, "https://task.example/fhir/$export-poll-status?_jobId=")
	if !ok || !uuidRE.MatchString(id) || strings.Contains(fut, id) {
		t.Errorf("want FUT's location with another UUID as _jobId, got %s", got)
	}
	for _, alone := range []string{
		"https://ibm.example/fhir-server/api/v4/$bulkdata-status?job=ZMVcxw8GwwV3tdp8n6gDpg",
		"https://ms.example/_operations/export/7",
		"https://bulk.example/fhir/bulkstatus/6e1d1b4c-3c4f-4b79-a6a4-0f1b2c3d4e5f",
		"https://h.example/fhir/bulkstatus/9f86d081884c7d65?_provider=acme",
		"https://h.example/fhir/status?id=77",
		"https://h.example/fhir/$export-poll-status?_jobId=1&_jobId=2",
	} {
		if got, err := UnknownJobURL(alone, ""); !errors.Is(err, ErrNoJobID) {
			t.Errorf("%s alone: want an error wrapping ErrNoJobID, got %q, %v", alone, got, err)
		}
	}
}

func TestUnknownJobURLNeedsAbsoluteLocations(t *testing.T) {
	const good = "https://h.example/fhir/bulkstatus/1"
	for _, bad := range []string{"", "bulkstatus/1", "/fhir/bulkstatus/2", "::"} {
		if got, err := UnknownJobURL(bad, good); err == nil {
			t.Errorf("%q: want an error, got %s", bad, got)
		}
		if got, err := UnknownJobURL(good, bad); err == nil {
			t.Errorf("other %q: want an error, got %s", bad, got)
		}
	}
}
