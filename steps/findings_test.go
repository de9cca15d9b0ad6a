package steps

import "testing"

// A deviation seen on every poll of one job is one warning of the step that polled, attached once to its
// report, as it is one finding of the run; another deviation is another warning.
func TestAWarningSeenOnEveryPollIsOneWarningOfTheStep(t *testing.T) {
	w := &World{target: &Target{Findings: &Findings{}}, scenario: "unit"}
	for range 3 {
		w.recordWarning(Finding{Scenario: "unit", Requirement: "EXP-PROGRESS-LENGTH", Message: "X-Progress of 120 characters"})
		w.knownDeviation("EXP-CANCELLED-404", "202 after a cancel")
	}
	w.recordWarning(Finding{Scenario: "unit", Requirement: "EXP-EXPIRES", Message: "no Expires"})
	if len(w.warnings) != 3 {
		t.Fatalf("the step's warnings %+v: want each deviation once", w.warnings)
	}
	if n := len(w.target.Findings.Warnings()) + len(w.target.Findings.KnownDeviations()); n != 3 {
		t.Errorf("the run's findings: %d, want 3", n)
	}
}
