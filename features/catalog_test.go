package features

import (
	"slices"
	"strings"
	"testing"
)

func TestRequirementIDGrammar(t *testing.T) {
	for _, id := range []string{"EXP-POLL-202", "RJS-CROSS-USER", "A-1", "X2-Y"} {
		if !IsRequirementID(id) {
			t.Errorf("IsRequirementID(%q) = false, want true", id)
		}
	}
	for _, tag := range []string{"export", "cross-user", "EXP", "EXP-", "-EXP", "EXP--1", "1EXP-A", "EXP-poll", "EXP_POLL", ""} {
		if IsRequirementID(tag) {
			t.Errorf("IsRequirementID(%q) = true, want false", tag)
		}
	}
	got := RequirementIDs([]string{"@export", "@EXP-POLL-202", "cross-user", "EXP-PROGRESS-LENGTH"})
	if !slices.Equal(got, []string{"EXP-POLL-202", "EXP-PROGRESS-LENGTH"}) {
		t.Errorf("RequirementIDs: got %v", got)
	}
}

// The scenarios as godog runs them: an outline's Examples rows each count, the feature's tags are inherited.
func TestScenariosExpandOutlinesAndInheritFeatureTags(t *testing.T) {
	scenarios, err := Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	perFile, outlineRows := map[string]int{}, 0
	for _, s := range scenarios {
		perFile[s.File]++
		if s.Feature == "" || s.Name == "" || len(s.Requirements) == 0 {
			t.Errorf("scenario %+v: expected a feature, a name and a requirement", s)
		}
		if strings.Contains(s.Name, "<") {
			t.Errorf("scenario %q: placeholders not filled in", s.Name)
		}
		feature := map[string]string{"export_poll_status.feature": "export", "get_report_job_status.feature": "report"}[s.File]
		if !slices.Contains(s.Tags, feature) {
			t.Errorf("scenario %q lacks its feature's tag %q: %v", s.Name, feature, s.Tags)
		}
		if slices.Contains(s.Requirements, "RJS-LISTED") { // an outline: $schedule and $execute
			outlineRows++
		}
	}
	if len(perFile) != 2 || outlineRows < 2 {
		t.Errorf("want 2 feature files and the 2 Examples rows of the RJS-LISTED outline, got %v and %d rows", perFile, outlineRows)
	}
	names, err := FeatureNames()
	if err != nil || !strings.HasPrefix(names["export_poll_status.feature"], "$export-poll-status") {
		t.Errorf("FeatureNames: %v %v", names, err)
	}
}

func TestSeverityPerProfile(t *testing.T) {
	const table = "| Behaviour | Requirement | fut | bulkdata | Sources |\n|---|---|---|---|---|\n| running | EXP-POLL-202 | 202 | 202 | s |\n\n" +
		"| Requirement | fut | bulkdata | Sources |\n|---|---|---|---|\n| EXP-CROSS-USER | MUST | MAY | s |\n| EXP-MISSING-JOB | MUST | n/a | s |\n"
	p, err := parseProfiles([]byte(table))
	if err != nil {
		t.Fatal(err)
	}
	cross := Requirement{ID: "EXP-CROSS-USER", Severity: Must}
	other := Requirement{ID: "EXP-POLL-202", Severity: Should}
	for _, c := range []struct {
		r       Requirement
		profile string
		want    Severity
	}{
		{cross, "fut", Must}, {cross, "bulkdata", May}, {Requirement{ID: "EXP-MISSING-JOB", Severity: Must}, "bulkdata", NotApplicable},
		{other, "fut", Should}, {other, "bulkdata", Should},
	} {
		if got := p.SeverityOf(c.r, c.profile); got != c.want {
			t.Errorf("SeverityOf(%s, %s) = %s, want %s", c.r.ID, c.profile, got, c.want)
		}
	}
	for name, bad := range map[string]string{
		"bad severity":   "| Requirement | fut | bulkdata | Sources |\n|---|---|---|---|\n| EXP-X | MUST | OPTIONAL | s |\n",
		"other profiles": "| Requirement | fut | hapi-8.0 | Sources |\n|---|---|---|---|\n| EXP-X | MUST | MAY | s |\n",
		"not an ID":      "| Requirement | fut | bulkdata | Sources |\n|---|---|---|---|\n| cross-user | MUST | MAY | s |\n",
		"twice":          "| Requirement | fut | bulkdata | Sources |\n|---|---|---|---|\n| EXP-X | MUST | MAY | s |\n| EXP-X | MUST | MAY | s |\n",
	} {
		prefix := "| Behaviour | Requirement | fut | bulkdata | Sources |\n|---|---|---|---|---|\n| running | EXP-POLL-202 | 202 | 202 | s |\n\n"
		if _, err := parseProfiles([]byte(prefix + bad)); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}
