package harness

import (
	"bytes"
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The profile matrix: the suite passes against each emulation of the reference server in its own profile,
// and fails against the others on exactly the requirements where the profiles differ (features/PROFILES.md).
// A bulkdata server sends no X-Progress, which fails EXP-POLL-202 wherever the suite polls, so its
// delete-finished difference is not reached under fut or hapi-8.0: the scenarios stop at the first deviation.
func TestProfileMatrix(t *testing.T) {
	want := map[[2]string][]string{ // {emulation, profile} → the requirements the failures name
		{"fut", "fut"}:           nil,
		{"fut", "bulkdata"}:      {"EXP-DELETE-DONE"},
		{"fut", "hapi-8.0"}:      nil,
		{"bulkdata", "fut"}:      {"EXP-POLL-202"},
		{"bulkdata", "bulkdata"}: nil,
		{"bulkdata", "hapi-8.0"}: {"EXP-POLL-202"},
		{"hapi-8.0", "fut"}:      {"EXP-CANCELLED-404", "EXP-DELETE-DONE"},
		{"hapi-8.0", "bulkdata"}: {"EXP-CANCELLED-404", "EXP-DELETE-DONE"},
		{"hapi-8.0", "hapi-8.0"}: nil,
	}
	for _, emulation := range refserver.Profiles {
		for _, profile := range refserver.Profiles {
			cell := [2]string{string(emulation), string(profile)}
			expected, ok := want[cell]
			if !ok {
				t.Fatalf("no expectation for emulation %s in profile %s", cell[0], cell[1])
			}
			t.Run(cell[0]+"-server-in-"+cell[1]+"-profile", func(t *testing.T) {
				t.Parallel()
				var out bytes.Buffer
				res, err := Run(context.Background(), Config{Profile: cell[1], RefserverProfile: cell[0], Out: &out, Log: &out, ReportsDir: t.TempDir()})
				if err != nil {
					t.Fatalf("run: %v\n%s", err, out.String())
				}
				got := failedRequirements(res)
				if !slices.Equal(got, expected) {
					t.Fatalf("failures name %v, want %v\n%s", got, expected, out.String())
				}
				if res.Passed != (len(expected) == 0) {
					t.Errorf("passed=%v with failures %v", res.Passed, got)
				}
				if cell == [2]string{"hapi-8.0", "hapi-8.0"} {
					var known []string
					for _, k := range res.Findings.KnownDeviations() {
						known = append(known, k.Requirement)
					}
					if !slices.Contains(known, "EXP-CANCELLED-404") || !slices.Contains(known, "EXP-DELETE-DONE") {
						t.Errorf("HAPI 8.0's 202 after a cancel and its OperationOutcome without a code must be reported as known deviations, got %v", known)
					}
				}
				if !strings.Contains(out.String(), "in profile "+cell[1]) {
					t.Errorf("the summary must name the profile")
				}
			})
		}
	}
}

func failedRequirements(res Result) []string {
	set := map[string]bool{}
	for _, f := range res.Failures {
		set[f.Requirement] = true
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func TestUnknownProfileIsAClearError(t *testing.T) {
	_, err := Run(context.Background(), Config{Profile: "hapi-9", Out: &bytes.Buffer{}, ReportsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "bulkdata") {
		t.Fatalf("want an error listing the profiles, got %v", err)
	}
}
