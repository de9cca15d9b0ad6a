package steps

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

type scenarioOutcome struct {
	reason                 string
	notApplicable, skipped bool
	err                    error
}

// runWithSeverities runs the scenarios tags selects against a reference server with faults, under a severity
// table of its own, and returns godog's status and each scenario's outcome by its primary requirement.
func runWithSeverities(t *testing.T, severity map[string]map[string]features.Severity, faults []string, tags string, strict bool) (int, map[string]scenarioOutcome, *Findings) {
	t.Helper()
	srv, err := refserver.NewServer(refserver.Config{Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	return runWithSeveritiesOn(t, severity, srv.Handler(), tags, strict)
}

// runWithSeveritiesOn is runWithSeverities against handler, for a deviation no fault of the reference server's
// makes alone.
func runWithSeveritiesOn(t *testing.T, severity map[string]map[string]features.Severity, handler http.Handler, tags string, strict bool) (int, map[string]scenarioOutcome, *Findings) {
	t.Helper()
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	profiles.Severity = severity
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	findings := &Findings{}
	init, endRun, err := Scenarios(Target{ExportBaseURL: ts.URL + "/fhir", ReportBaseURL: ts.URL + "/fhir", Strict: strict, Profiles: &profiles, Findings: findings,
		Credentials: StaticTokens(map[string]string{"A": refserver.DemoTokenA, "B": refserver.DemoTokenB})})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]scenarioOutcome{}
	suite := godog.TestSuite{
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
				reason, na, skipped := ScenarioSkip(ctx)
				mu.Lock()
				defer mu.Unlock()
				got[RequirementTags(s)[0]] = scenarioOutcome{reason, na, skipped, err}
				return ctx, nil
			})
			init(sc)
		},
		Options: &godog.Options{FS: features.FS, Paths: []string{"."}, Format: "progress", Output: &strings.Builder{}, Strict: true, Tags: tags},
	}
	status := suite.Run()
	endRun(context.Background())
	return status, got, findings
}

// A profile's severity table decides: a requirement that is n/a ends its scenario as not applicable before
// any request, and a MAY requirement's deviation is a warning, never a failure, even under STRICT.
func TestProfileSeveritiesNotApplicableAndMay(t *testing.T) {
	status, got, findings := runWithSeverities(t, map[string]map[string]features.Severity{
		"EXP-MISSING-JOB": {"fut": features.NotApplicable},
		"EXP-UNKNOWN-JOB": {"fut": features.May},
	}, []string{"unknown-job-400", "missing-job-202"}, "@EXP-MISSING-JOB,@EXP-UNKNOWN-JOB", true)
	if status != 0 {
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

// A SHOULD requirement raised to MUST in the profile fails where it would only warn, without STRICT.
func TestProfileSeverityRaisedToMustFails(t *testing.T) {
	status, got, findings := runWithSeverities(t, map[string]map[string]features.Severity{"RJS-FULLURL": {"fut": features.Must}},
		[]string{"rjs-bare-fullurl"}, "@RJS-FULLURL", false)
	if o := got["RJS-STRUCTURE"]; status != 1 || o.err == nil || !strings.Contains(o.err.Error(), "RJS-FULLURL") {
		t.Errorf("want the scenario failed naming RJS-FULLURL, got status %d, %+v", status, o)
	}
	if len(findings.Warnings()) != 0 {
		t.Errorf("a MUST deviation is no warning: %+v", findings.Warnings())
	}
}

// A failure states the requirement's severity in the run's profile, not the one REQUIREMENTS.md gives it in
// general: a SHOULD of the profile failed under STRICT says so, rather than reading as a MUST.
func TestAFailureStatesTheSeverityOfTheProfile(t *testing.T) {
	status, got, _ := runWithSeverities(t, map[string]map[string]features.Severity{"EXP-UNKNOWN-JOB": {"fut": features.Should}},
		[]string{"unknown-job-400"}, "@EXP-UNKNOWN-JOB", true)
	o := got["EXP-UNKNOWN-JOB"]
	if status != 1 || o.err == nil {
		t.Fatalf("want the scenario failed under STRICT, got status %d, %+v", status, o)
	}
	msg := o.err.Error()
	if !strings.Contains(msg, "requirement EXP-UNKNOWN-JOB (SHOULD in profile fut, failed under STRICT=1), source: ") {
		t.Errorf("want the failure to state SHOULD in profile fut, failed under STRICT=1; got:\n%s", msg)
	}
	if strings.Contains(msg, "(MUST") {
		t.Errorf("the failure states MUST, the severity of REQUIREMENTS.md, not the profile's:\n%s", msg)
	}
}

// Under STRICT a SHOULD deviation fails the scenarios that check its requirement; a scenario that only meets
// it on the way (a completed export's missing Expires, seen by the file download scenario) reports it as a
// warning and goes on to check its own requirement, rather than ending blocked on another's SHOULD.
func TestUnderStrictAShouldFailsOnlyTheScenariosThatCheckIt(t *testing.T) {
	status, got, findings := runWithSeverities(t, nil, []string{"no-expires"}, "@EXP-OUTPUT,@EXP-EXPIRES", true)
	if status != 1 {
		t.Errorf("godog status %d, want 1: the EXP-EXPIRES scenario fails under STRICT", status)
	}
	if o := got["EXP-EXPIRES"]; o.err == nil || !strings.Contains(o.err.Error(), "EXP-EXPIRES") {
		t.Errorf("the scenario tagged EXP-EXPIRES: want failed naming EXP-EXPIRES, got %+v", o)
	}
	if o := got["EXP-OUTPUT"]; o.err != nil || o.skipped {
		t.Errorf("EXP-OUTPUT: want passed, its files checked, got %+v", o)
	}
	var warned bool
	for _, f := range findings.Warnings() {
		warned = warned || f.Requirement == "EXP-EXPIRES" && strings.Contains(f.Message, "fails the scenarios that check EXP-EXPIRES")
	}
	if !warned {
		t.Errorf("want the missing Expires of the EXP-OUTPUT scenario among the warnings, got %+v", findings.Warnings())
	}
}

// EXP-EXPIRES has a scenario of its own: under STRICT a complete status without Expires fails it, and the
// manifest scenario, which checked EXP-POLL-200 whole, passes with the warning rather than failing on a
// requirement it does not check (which would leave EXP-POLL-200 blocked).
func TestUnderStrictAMissingExpiresLeavesTheManifestScenarioPassed(t *testing.T) {
	_, got, _ := runWithSeverities(t, nil, []string{"no-expires"}, "@EXP-POLL-200,@EXP-EXPIRES", true)
	if o, ok := got["EXP-POLL-200"]; !ok || o.err != nil || o.skipped {
		t.Errorf("EXP-POLL-200's scenario: want passed, got %+v (ran: %v)", o, ok)
	}
	if o, ok := got["EXP-EXPIRES"]; !ok || o.err == nil || !strings.Contains(o.err.Error(), "EXP-EXPIRES") {
		t.Errorf("EXP-EXPIRES's own scenario: want failed naming EXP-EXPIRES, got %+v (ran: %v)", o, ok)
	}
}

// A deviation in a running export's answers that the profile ranks below failing (here X-Progress missing,
// with EXP-POLL-202 lowered to SHOULD) is a warning, and the wait goes on to the completed export: the
// scenarios that read it judge their own requirements. Ending the wait there failed the first of them on the
// export it never saw complete ("no complete status to read"), under a requirement that never fails in fut
// (EXP-EXPIRES, MAY).
func TestAnInProgressDeviationRankedBelowFailingIsWarnedAndTheWaitGoesOn(t *testing.T) {
	status, got, findings := runWithSeverities(t, map[string]map[string]features.Severity{"EXP-POLL-202": {"fut": features.Should}},
		[]string{"no-x-progress"}, "@EXP-POLL-202,@EXP-EXPIRES,@EXP-OUTPUT", false)
	if status != 0 {
		t.Errorf("godog status %d, want 0", status)
	}
	for _, req := range []string{"EXP-POLL-202", "EXP-EXPIRES", "EXP-OUTPUT"} {
		if o, ok := got[req]; !ok || o.err != nil || o.skipped {
			t.Errorf("%s: want passed, got %+v (ran: %t)", req, o, ok)
		}
	}
	warned := false
	for _, w := range findings.Warnings() {
		warned = warned || w.Requirement == "EXP-POLL-202" && strings.Contains(w.Message, "X-Progress") && strings.Contains(w.Message, "SHOULD in profile fut")
	}
	if !warned {
		t.Errorf("want the missing X-Progress warned of under EXP-POLL-202, got %+v", findings.Warnings())
	}
}

// So with a report job: a deviation in the status Bundles read while waiting that the profile ranks below
// failing (here a created that is no FHIR dateTime, with RJS-STRUCTURE lowered to SHOULD) is warned of, and the
// wait goes on until the job has finished; ended there, RJS-TERMINAL failed on a job it never saw finish.
func TestAReportStatusDeviationRankedBelowFailingIsWarnedAndTheWaitGoesOn(t *testing.T) {
	status, got, findings := runWithSeverities(t, map[string]map[string]features.Severity{"RJS-STRUCTURE": {"fut": features.Should}},
		[]string{"rjs-bad-created"}, "@RJS-TERMINAL", false)
	if o, ok := got["RJS-TERMINAL"]; status != 0 || !ok || o.err != nil || o.skipped {
		t.Errorf("RJS-TERMINAL: want passed, got godog status %d, %+v (ran: %t)", status, o, ok)
	}
	warned := false
	for _, w := range findings.Warnings() {
		warned = warned || w.Requirement == "RJS-STRUCTURE" && strings.Contains(w.Message, "SHOULD in profile fut")
	}
	if !warned {
		t.Errorf("want the invalid created warned of under RJS-STRUCTURE, got %+v", findings.Warnings())
	}
}

// So with the completed export's manifest, with EXP-POLL-200 lowered to SHOULD. A manifest that cannot be read
// (its schema broken) is warned of, and each scenario that needs it ends not checked, naming the deviation:
// before, EXP-OUTPUT and EXP-RETAINED failed their own requirements with "no manifest …: a completed export
// must come first", blaming the feature file. A manifest read but not answering its kick-off (its request the
// polling location) is read on, as past an earlier scenario's failure, by every scenario but EXP-CROSS-USER
// (a manifest of another kick-off may list another user's files) and EXP-DELETE-DONE, which sends no DELETE
// (it may be another scenario's job). Before, a lone EXP-OUTPUT failed on it, and EXP-DELETE-DONE went on.
func TestAManifestDeviationRankedBelowFailingIsWarnedAndTheReadersGoOnOrAreNotChecked(t *testing.T) {
	lowered := map[string]map[string]features.Severity{"EXP-POLL-200": {"fut": features.Should}}
	const unread, noDelete = "manifest was not read", "no DELETE sent"
	for _, tc := range []struct {
		fault       string
		tags        string
		passed      []string
		notChecked  map[string]string // requirement: what its reason says
		deviationIn string
	}{
		{"manifest-no-error", "@EXP-POLL-200,@EXP-OUTPUT,@EXP-RETAINED,@EXP-CROSS-USER,@EXP-DELETE-DONE", []string{"EXP-POLL-200", "EXP-DELETE-DONE"},
			map[string]string{"EXP-OUTPUT": unread, "EXP-RETAINED": unread, "EXP-CROSS-USER": unread}, "missing properties: 'error'"},
		{"manifest-request-poll-url", "@EXP-OUTPUT", []string{"EXP-OUTPUT"}, nil, "manifest request"},
		{"manifest-request-poll-url", "@EXP-OUTPUT,@EXP-RETAINED,@EXP-CROSS-USER,@EXP-DELETE-DONE", []string{"EXP-OUTPUT", "EXP-RETAINED"},
			map[string]string{"EXP-CROSS-USER": unread, "EXP-DELETE-DONE": noDelete}, "manifest request"},
	} {
		t.Run(tc.fault+" "+tc.tags, func(t *testing.T) {
			status, got, findings := runWithSeverities(t, lowered, []string{tc.fault}, tc.tags, false)
			if status != 0 {
				t.Errorf("godog status %d, want 0", status)
			}
			for _, req := range tc.passed {
				if o, ok := got[req]; !ok || o.err != nil || o.skipped {
					t.Errorf("%s: want passed, got %+v (ran: %t)", req, o, ok)
				}
			}
			for req, says := range tc.notChecked {
				o, ok := got[req]
				if !ok || o.err != nil || !o.skipped || o.notApplicable || !strings.Contains(o.reason, says) || !strings.Contains(o.reason, "EXP-POLL-200: manifest") || !strings.Contains(o.reason, tc.deviationIn) {
					t.Errorf("%s: want not checked, %q, naming EXP-POLL-200's %q, got %+v (ran: %t)", req, says, tc.deviationIn, o, ok)
				}
			}
			warned := false
			for _, w := range findings.Warnings() {
				warned = warned || w.Requirement == "EXP-POLL-200" && strings.HasPrefix(w.Message, "manifest") && strings.Contains(w.Message, tc.deviationIn) && strings.Contains(w.Message, "SHOULD in profile fut")
			}
			if !warned {
				t.Errorf("want the deviation warned of under EXP-POLL-200, its ID not repeated in the message, got %+v", findings.Warnings())
			}
		})
	}
}

// So with the watch of a cancelled export, with EXP-CANCELLED-404 lowered to SHOULD: a 404 without its
// OperationOutcome is warned of and the watch goes on, to see the export complete anyway. Before, the watch
// ended at its first such 404, and the completion went unseen. Here the cancelled export completes a poll
// later than the reference server's fault makes it (the watch's first poll is when it would have completed).
func TestACancelledExportsDeviationRankedBelowFailingIsWarnedAndTheWatchGoesOn(t *testing.T) {
	srv, err := refserver.NewServer(refserver.Config{Faults: []string{"cancelled-completes"}})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	var mu sync.Mutex
	cancelled, late := map[string]bool{}, map[string]bool{}
	bare404 := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		mu.Lock()
		u := r.URL.String()
		if r.Method == http.MethodDelete {
			cancelled[u] = true
		}
		bare := r.Method == http.MethodGet && cancelled[u] && (rec.Code == http.StatusNotFound || rec.Code == http.StatusOK && !late[u])
		late[u] = late[u] || bare && rec.Code == http.StatusOK
		mu.Unlock()
		if bare {
			w.WriteHeader(http.StatusNotFound) // no OperationOutcome
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
	status, got, findings := runWithSeveritiesOn(t, map[string]map[string]features.Severity{"EXP-CANCELLED-404": {"fut": features.Should}}, bare404, "@EXP-CANCELLED-404", false)
	if o, ok := got["EXP-CANCELLED-404"]; status != 0 || !ok || o.err != nil || o.skipped {
		t.Errorf("EXP-CANCELLED-404: want passed with warnings, got godog status %d, %+v (ran: %t)", status, o, ok)
	}
	var bare, completed bool
	for _, w := range findings.Warnings() {
		bare = bare || w.Requirement == "EXP-CANCELLED-404" && strings.Contains(w.Message, "OperationOutcome")
		completed = completed || w.Requirement == "EXP-CANCELLED-404" && strings.Contains(w.Message, "for good") && strings.Contains(w.Message, "200")
	}
	if !bare || !completed {
		t.Errorf("want the bare 404 (%t) and the completion of the cancelled export (%t) warned of under EXP-CANCELLED-404, got %+v", bare, completed, findings.Warnings())
	}
	if len(late) == 0 {
		t.Error("the cancelled export never completed: the test proves nothing")
	}
}
