package harness

import (
	"slices"
	"testing"

	"github.com/ehealth-dk/fut-conformance/features"
)

// scenarioCount is the number of scenarios in the given features (export, report; none: every feature), read
// from the feature files: a test that expects "all of them" never writes the number down.
func scenarioCount(t *testing.T, featureTags ...string) int {
	t.Helper()
	scenarios, err := features.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range scenarios {
		if len(featureTags) == 0 || slices.ContainsFunc(featureTags, func(f string) bool { return slices.Contains(s.Tags, f) }) {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no scenario in features %v", featureTags)
	}
	return n
}
