package steps

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cucumber/godog"
)

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

// A step that ends on a skip its own world did not record (one decided in a pooled job's world) is the
// scenario's skip, with its reason: godog hands the harness no error for a skipped scenario, so an unrecorded
// skip would be reported as a pass with nothing checked.
func TestASkipFromAnotherWorldIsTheScenariosSkip(t *testing.T) {
	w := &World{target: &Target{Findings: &Findings{}}, scenario: "unit"}
	err := w.failure(fmt.Errorf("%w: the pool's reason", godog.ErrSkip))
	if !errors.Is(err, godog.ErrSkip) || !w.skipped || w.skipReason != "the pool's reason" {
		t.Fatalf("got %v, skipped %v, reason %q", err, w.skipped, w.skipReason)
	}
	if skips := w.target.Findings.Skips(); len(skips) != 1 || skips[0].Message != "the pool's reason" {
		t.Fatalf("the run's skips: %+v", skips)
	}
}
