package mutation

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/harness"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The kill matrix: the conformant reference server passes cleanly, every fault is killed by the scenario of
// its own requirement, and every requirement (MUST and SHOULD) has a fault. `make test` runs it; `make
// mutation` writes the same matrix to reports/.
func TestEveryFaultIsKilledByItsOwnRequirement(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole suite once per fault; skipped under -short")
	}
	m, err := Run(context.Background(), Options{WorkDir: t.TempDir(), Progress: func(o Outcome) {
		t.Logf("%-36s %-20s %-16s %5.1fs", nameOr(o.Fault), o.Requirement, o.Verdict, o.Seconds)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(); err != nil {
		for _, o := range append([]Outcome{m.Conformant}, m.Faults...) {
			if o.Verdict != Killed && o.Verdict != Pass {
				t.Logf("output of %s:\n%s", nameOr(o.Fault), tail(o.Output))
			}
		}
		t.Fatalf("the harness's verdicts cannot be trusted:\n%v", err)
	}
	t.Logf("%d of %d faults killed in %.0fs", m.Killed, m.Total, m.Seconds)

	var md strings.Builder
	if err := m.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Conformant server: **pass**", "100%", "`no-x-progress`", "EXP-POLL-202 (MUST)"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("the Markdown matrix lacks %q", want)
		}
	}
}

// Every requirement has a fault, every fault names a requirement of the table, and fault names are unique.
func TestEveryRequirementHasAFault(t *testing.T) {
	reqs, err := features.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	covered, names := map[string]bool{}, map[string]bool{}
	for _, f := range refserver.Faults() {
		if _, ok := reqs[f.Requirement]; !ok {
			t.Errorf("fault %s names requirement %s, which is not in REQUIREMENTS.md", f.Name, f.Requirement)
		}
		if names[f.Name] {
			t.Errorf("fault %s is listed twice", f.Name)
		}
		names[f.Name], covered[f.Requirement] = true, true
	}
	for id := range reqs {
		if !covered[id] {
			t.Errorf("requirement %s has no fault in refserver/faults.go", id)
		}
	}
}

func TestFailedScenariosReadTheRunsResult(t *testing.T) {
	res := harness.Result{Results: []harness.ScenarioResult{
		{Name: "s0", Requirements: []string{"EXP-KICKOFF"}, Status: harness.StatusPassed},
		{Name: "s1", Requirements: []string{"EXP-POLL-202", "EXP-PROGRESS-LENGTH"}, Status: harness.StatusFailed,
			Failure: &harness.Failure{Requirement: "EXP-PROGRESS-LENGTH", Requirements: []string{"EXP-PROGRESS-LENGTH"}, Step: "bad", Summary: "EXP-PROGRESS-LENGTH: header X-Progress: expected x, got y"}},
		{Name: "s2", Requirements: []string{"EXP-OUTPUT"}, Status: harness.StatusFailed,
			Failure: &harness.Failure{Requirement: "EXP-POLL-200", Requirements: []string{"EXP-POLL-200"}, Step: "g", Summary: "status of GET: expected 200"}},
		{Name: "s3", Requirements: []string{"EXP-CROSS-USER"}, Status: harness.StatusSkipped, Reason: "no TOKEN_B"},
	}}
	failed := failedScenarios(res)
	if len(failed) != 2 {
		t.Fatalf("failed %+v, want s1 and s2", failed)
	}
	if got := failed[0]; strings.Join(got.Tags, " ") != "EXP-POLL-202 EXP-PROGRESS-LENGTH" || strings.Join(got.Requirements, " ") != "EXP-PROGRESS-LENGTH" || got.Step != "bad" {
		t.Errorf("first: %+v", got)
	}
	o := Outcome{Fault: "f", Requirement: "EXP-PROGRESS-LENGTH", Failed: failed}
	if v := classify(o, false); v != Killed {
		t.Errorf("verdict %s, want killed", v)
	}
	o.Requirement = "EXP-OUTPUT" // its scenario failed, but for another requirement's reason
	if v := classify(o, false); v != KilledByOther {
		t.Errorf("verdict %s, want killed-by-other", v)
	}
	if v := classify(Outcome{Fault: "f"}, true); v != Survived {
		t.Errorf("verdict %s, want survived", v)
	}
}

func nameOr(fault string) string {
	if fault == "" {
		return "(conformant)"
	}
	return fault
}

func tail(s string) string {
	if len(s) > 6000 {
		return "..." + s[len(s)-6000:]
	}
	return s
}

// Every fault runs in a profile where its requirement is MUST or SHOULD (a MAY, or n/a, can kill no fault),
// and a fault given a profile where it is not is refused before any run.
func TestEveryFaultRunsInAProfileWhereItCanBeKilled(t *testing.T) {
	reqs, err := features.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range refserver.Faults() {
		if !slices.Contains(refserver.Profiles, f.Profile) {
			t.Errorf("fault %s: profile %q, want one of %v", f.Name, f.Profile, refserver.Profiles)
			continue
		}
		if sev := profiles.SeverityOf(reqs[f.Requirement], string(f.Profile)); sev != features.Must && sev != features.Should {
			t.Errorf("fault %s runs in profile %s, where %s is %s", f.Name, f.Profile, f.Requirement, sev)
		}
	}
	getOnly := refserver.Fault{Name: "kickoff-post-refused", Requirement: "EXP-KICKOFF-POST", Profile: refserver.ProfileBulkData}
	if _, err := Run(context.Background(), Options{Faults: []refserver.Fault{getOnly}, WorkDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "EXP-KICKOFF-POST is MAY") {
		t.Errorf("kickoff-post-refused in bulkdata, where EXP-KICKOFF-POST is MAY: %v; want it refused", err)
	}
}
