package steps

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A profile's severity table decides: a requirement that is n/a ends its scenario as not applicable before
// any request, and a MAY requirement's deviation is a warning, never a failure, even under STRICT.
func TestProfileSeveritiesMakeScenariosNotApplicableOrWarnings(t *testing.T) {
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	profiles.Severity = map[string]map[string]features.Severity{
		"EXP-MISSING-JOB": {"fut": features.NotApplicable},
		"EXP-UNKNOWN-JOB": {"fut": features.May},
	}
	srv, err := refserver.NewServer(refserver.Config{Faults: []string{"unknown-job-400", "missing-job-500"}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	findings := &Findings{}
	init, err := Scenarios(Target{ExportBaseURL: ts.URL + "/fhir", ReportBaseURL: ts.URL + "/fhir", Strict: true, Profiles: &profiles, Findings: findings,
		Credentials: StaticTokens(map[string]string{"A": refserver.DemoTokenA})})
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		reason                 string
		notApplicable, skipped bool
		err                    error
	}
	var mu sync.Mutex
	got := map[string]outcome{}
	suite := godog.TestSuite{
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
				reason, na, skipped := ScenarioSkip(ctx)
				mu.Lock()
				defer mu.Unlock()
				got[RequirementTags(s)[0]] = outcome{reason, na, skipped, err}
				return ctx, nil
			})
			init(sc)
		},
		Options: &godog.Options{FS: features.FS, Paths: []string{"."}, Format: "progress", Output: &strings.Builder{}, Strict: true,
			Tags: "@EXP-MISSING-JOB,@EXP-UNKNOWN-JOB"},
	}
	if status := suite.Run(); status != 0 {
		t.Errorf("godog status %d, want 0: neither scenario may fail", status)
	}
	if o := got["EXP-MISSING-JOB"]; !o.notApplicable || !o.skipped || !strings.Contains(o.reason, "does not apply in profile fut") || o.err != nil {
		t.Errorf("EXP-MISSING-JOB: want not applicable, got %+v", o)
	}
	if o := got["EXP-UNKNOWN-JOB"]; o.skipped || o.err != nil {
		t.Errorf("EXP-UNKNOWN-JOB: want passed with a warning, got %+v", o)
	}
	if w := findings.Warnings(); len(w) == 0 || w[0].Requirement != "EXP-UNKNOWN-JOB" || !strings.Contains(w[0].Message, "MAY in profile fut") {
		t.Errorf("want the MAY deviation as a warning, got %+v", w)
	}
	if len(findings.Skips()) != 0 {
		t.Errorf("not applicable is no skip: %+v", findings.Skips())
	}
}
