package steps

import (
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
)

// What each kind of scenario takes from the job pool, read from its steps: only scenarios that read a
// completed export share one; a scenario that must see a job running, or that changes it, never does.
func TestNeedsOf(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []string
		want  scenarioNeeds
	}{
		{"polls until complete", []string{"user A has kicked off a system export", "user A polls the export status until it completes", "the response status is 200"}, scenarioNeeds{sharedExport: "A"}},
		{"reads the output files", []string{"user A has a completed system export", "user A downloads every output file of the manifest"}, scenarioNeeds{sharedExport: "A"}},
		{"deletes a completed export", []string{"user A has a completed system export", "user A cancels the export", "user A polls the export status"}, scenarioNeeds{ownedExport: "A"}},
		{"must see it running", []string{"user A has kicked off a system export", "user A polls the export status while it runs"}, scenarioNeeds{}},
		{"cancels a running export", []string{"user A has kicked off a system export that is still running", "user A cancels the export"}, scenarioNeeds{}},
		{"another user cancels", []string{"user A has kicked off a system export", "user B polls the export status", "user B cancels the export"}, scenarioNeeds{}},
		{"polls another user's export", []string{"user A has kicked off a system export", "user B polls the export status until it completes"}, scenarioNeeds{}},
		{"kick-off by GET", []string{"user A kicks off a system export by GET", "the response status is 202"}, scenarioNeeds{}},
		{"waits on a report", []string{"user A has started a report", "user A waits until the report job has finished"}, scenarioNeeds{waitedReports: "A"}},
		{"starts a report only", []string{"user A has started a report", "user A requests the report job status"}, scenarioNeeds{}},
	} {
		if got := needsOf(c.steps); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

// Every kick-off carries a different _since, a valid FHIR instant long before any data.
func TestKickoffSinceIsDistinctAndEarly(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := kickoffSince()
		if seen[s] {
			t.Fatalf("_since %s sent twice", s)
		}
		seen[s] = true
		at, err := check.ParseFHIRInstant(s)
		if err != nil {
			t.Fatalf("_since %q: %v", s, err)
		}
		if at.Year() < 1970 || at.Year() > 1980 || !strings.HasSuffix(s, "Z") {
			t.Fatalf("_since %s: want an instant of the 1970s in UTC", s)
		}
	}
}

// A violation shared by the scenarios of a pooled job is copied for each, since a failure report fills in
// its requirement.
func TestDetachCopiesAViolation(t *testing.T) {
	shared := check.Violationf("", "status", "200", "500")
	got := detach(shared)
	got.(*check.Violation).Requirement = "EXP-OUTPUT"
	if shared.Requirement != "" {
		t.Errorf("the shared violation was changed")
	}
}
