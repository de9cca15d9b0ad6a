package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/refserver"
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
		{"watches a cancelled export", []string{"user A has cancelled a running system export", "user A polls the export status", "the export never completes for user A"}, scenarioNeeds{cancelledExport: "A"}},
		{"cancels without watching", []string{"user A has cancelled a running system export", "user A polls the export status"}, scenarioNeeds{}},
	} {
		for _, profile := range []string{"fut", "bulkdata", "hapi-8.0"} {
			if got := needsOf(profile, c.steps); got != c.want {
				t.Errorf("%s in %s: got %+v, want %+v", c.name, profile, got, c.want)
			}
		}
	}
	// In bulkdata the unknown-job request compares the shared export's polling location with another kick-off's;
	// FUT's defines its own request, for which the scenario's kick-off is all it needs.
	unknown := []string{"user A has kicked off a system export", "user A polls the export status of an unknown job id", "the response is the profile's \"unknown-job\" answer"}
	for profile, want := range map[string]scenarioNeeds{"fut": {}, "hapi-8.0": {}, "bulkdata": {sharedExport: "A", otherKickoff: "A"}} {
		if got := needsOf(profile, unknown); got != want {
			t.Errorf("polls an unknown job in %s: got %+v, want %+v", profile, got, want)
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

// runPooled runs the scenarios tags selects against h, with the jobs they wait on started ahead as the harness
// starts them and a run context the test may cancel, under a severity table of the test's own. It returns
// godog's status and the run's endRun, for the test to call.
func runPooled(t *testing.T, runCtx context.Context, h http.Handler, severity map[string]map[string]features.Severity, tags string) (int, func(context.Context)) {
	t.Helper()
	return runPooledLogged(t, runCtx, h, severity, tags, nil)
}

// runPooledLogged is runPooled with the run's Log (nil discards it).
func runPooledLogged(t *testing.T, runCtx context.Context, h http.Handler, severity map[string]map[string]features.Severity, tags string, log io.Writer) (int, func(context.Context)) {
	t.Helper()
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	profiles.Severity = severity
	feats, err := godog.TestSuite{Options: &godog.Options{FS: features.FS, Paths: []string{"."}, Tags: tags}}.RetrieveFeatures()
	if err != nil {
		t.Fatal(err)
	}
	var selected [][]string
	for _, f := range feats {
		for _, p := range f.Pickles {
			var texts []string
			for _, s := range p.Steps {
				texts = append(texts, s.Text)
			}
			selected = append(selected, texts)
		}
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	init, endRun, err := Scenarios(Target{ExportBaseURL: ts.URL + "/fhir", ReportBaseURL: ts.URL + "/fhir", Profiles: &profiles, Selected: selected,
		RunContext: runCtx, Credentials: StaticTokens(map[string]string{"A": refserver.DemoTokenA}), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	status := godog.TestSuite{ScenarioInitializer: init,
		Options: &godog.Options{FS: features.FS, Paths: []string{"."}, Format: "progress", Output: &strings.Builder{}, Strict: true, Tags: tags}}.Run()
	return status, endRun
}

// deleteDoneNotApplicable makes EXP-DELETE-DONE's scenario end before its first step: the completed export the
// pool starts for it is never taken.
var deleteDoneNotApplicable = map[string]map[string]features.Severity{"EXP-DELETE-DONE": {"fut": features.NotApplicable}}

// exportRecorder serves the reference server and records the polling locations its kick-offs answered and
// the DELETEs it received with user A's token. before, if set, runs first for each kick-off.
type exportRecorder struct {
	srv    *refserver.Server
	before func()

	mu        sync.Mutex
	kickedOff []string
	deleted   []string
	answered  chan struct{} // closed once a kick-off has been answered 202
}

func newExportRecorder(t *testing.T, cfg refserver.Config) *exportRecorder {
	srv, err := refserver.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &exportRecorder{srv: srv, answered: make(chan struct{})}
}

func (e *exportRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kickoff := strings.HasSuffix(r.URL.Path, "/$export")
	if kickoff && e.before != nil {
		e.before()
	}
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, r)
	e.mu.Lock()
	switch {
	case r.Method == http.MethodDelete && r.Header.Get("Authorization") == "Bearer "+refserver.DemoTokenA:
		e.deleted = append(e.deleted, "http://"+r.Host+r.URL.RequestURI())
	case kickoff && rec.Code == http.StatusAccepted:
		if len(e.kickedOff) == 0 {
			defer close(e.answered) // once the answer is written
		}
		e.kickedOff = append(e.kickedOff, rec.Header().Get("Content-Location"))
	}
	e.mu.Unlock()
	maps.Copy(w.Header(), rec.Header())
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// assertOneExportDeletedNoneRunning: the run kicked off one export, deleted it once with its user's token,
// and left no job running on the server (a poll answers anything but 202).
func (e *exportRecorder) assertOneExportDeletedNoneRunning(t *testing.T, what string) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.kickedOff) != 1 || !slices.Equal(e.deleted, e.kickedOff) {
		t.Errorf("%s: want the one pooled export deleted once with user A's token, got kicked off %v, deleted %v", what, e.kickedOff, e.deleted)
	}
	for _, loc := range e.kickedOff {
		req := httptest.NewRequest(http.MethodGet, loc, nil)
		req.Header.Set("Authorization", "Bearer "+refserver.DemoTokenA)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, req)
		if rec.Code == http.StatusAccepted {
			t.Errorf("%s: GET %s after the run: 202, still running", what, loc)
		}
	}
}

// waitClosed fails the test unless ch closes within a deadline.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not within 30s", what)
	}
}

// A scenario that takes no step (here: not applicable in the profile) leaves the export the pool started for
// it untaken. The end of the run deletes it, with its user's token, whether it still runs (an export of an
// hour) or has completed, and no job of the run is left running on the server.
func TestEndRunDeletesAnExportNoScenarioTook(t *testing.T) {
	for _, duration := range []time.Duration{time.Hour, time.Millisecond} {
		what := fmt.Sprintf("export of %s", duration)
		e := newExportRecorder(t, refserver.Config{Profile: refserver.ProfileFUT, ExportDuration: duration})
		status, endRun := runPooled(t, context.Background(), e, deleteDoneNotApplicable, "@EXP-DELETE-DONE")
		if status != 0 {
			t.Fatalf("%s: godog status %d, want 0: the scenario is not applicable", what, status)
		}
		waitClosed(t, e.answered, what+": the pooled kick-off answered") // the run ends after it, as any real run does
		endRun(context.Background())
		e.assertOneExportDeletedNoneRunning(t, what)
	}
}

// A pooled kick-off still waiting for its answer when the run ends is not cut short: the server may have
// started the job already, and the end of the run deletes it once its polling location is known.
func TestEndRunDeletesAnExportKickedOffAsTheRunEnded(t *testing.T) {
	arrived, answer := make(chan struct{}), make(chan struct{})
	e := newExportRecorder(t, refserver.Config{Profile: refserver.ProfileFUT, ExportDuration: time.Hour})
	e.before = func() {
		close(arrived)
		<-answer
	}
	runCtx, endRunCtx := context.WithCancel(context.Background())
	defer endRunCtx()
	status, endRun := runPooled(t, runCtx, e, deleteDoneNotApplicable, "@EXP-DELETE-DONE")
	if status != 0 {
		t.Fatalf("godog status %d, want 0: the scenario is not applicable", status)
	}
	waitClosed(t, arrived, "the pooled kick-off reached the server")
	endRunCtx() // the harness ends the run's context (harness.Run), the kick-off still unanswered
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		endRun(context.Background())
	}()
	close(answer)
	waitClosed(t, ended, "endRun returned")
	e.assertOneExportDeletedNoneRunning(t, "a kick-off answered after the run ended")
}

// lockedLog is a Log the run's goroutines write to at once.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The cleanup honours the caller's context: Ctrl-C during it ends it at once, even against a server that never
// answers the DELETE, instead of waiting EndRunWait. Told by what ended the DELETE, as the cleanup logs it
// ("interrupted", not "no answer within EndRunWait"), not by how long it took.
func TestEndRunEndsWithTheCallersContext(t *testing.T) {
	e := newExportRecorder(t, refserver.Config{ExportDuration: time.Hour})
	ctx, interrupt := context.WithCancel(context.Background())
	defer interrupt()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			interrupt() // Ctrl-C while the DELETE is on its way
			<-r.Context().Done()
			return
		}
		e.ServeHTTP(w, r)
	})
	log := &lockedLog{}
	status, endRun := runPooledLogged(t, context.Background(), h, deleteDoneNotApplicable, "@EXP-DELETE-DONE", log)
	if status != 0 {
		t.Fatalf("godog status %d, want 0: the scenario is not applicable", status)
	}
	waitClosed(t, e.answered, "the pooled kick-off answered")
	endRun(ctx)
	if out := log.String(); !strings.Contains(out, "could not delete export") || !strings.Contains(out, ": interrupted") || strings.Contains(out, "EndRunWait") {
		t.Errorf("want the DELETE ended by the caller's cancel (\"interrupted\"), not by EndRunWait (%s):\n%s", EndRunWait, out)
	}
	if ctx.Err() == nil {
		t.Errorf("the DELETE never reached the server")
	}
}

// A pooled job whose last poll was cut by MAX_WAIT: the scenario that adopts it fails with the give-up and
// its poll history, not with the cut request as if the server had failed to answer.
func TestAdoptedPollsCutByMaxWaitFailWithTheGiveUp(t *testing.T) {
	w, _ := worldWithResponse(t, nil, false)
	profiles, err := features.LoadProfiles()
	if err != nil {
		t.Fatal(err)
	}
	w.profiles = profiles
	gaveUp := fmt.Errorf("export: %w after 8s (MAX_WAIT 8s): the last request was still unanswered at MAX_WAIT; poll history (52 polls): … 40 polls omitted …", check.ErrGaveUp)
	running := &check.Exchange{Method: "GET", URL: "http://fut.example/fhir/$export-poll-status?_jobId=j1", Status: 202,
		Header: http.Header{"X-Progress": {"busy"}, "Content-Type": {"application/fhir+json"}}}
	cut := &check.Exchange{Method: "GET", URL: running.URL, Err: errors.New("no complete response within REQUEST_TIMEOUT: context deadline exceeded")}
	j := &pooledExport{user: "A", done: make(chan struct{}), polls: []*check.Exchange{running, cut}, err: gaveUp}
	close(j.done)
	if err := w.adoptPolls(context.Background(), j); !errors.Is(err, check.ErrGaveUp) {
		t.Fatalf("adoptPolls = %v, want the give-up", err)
	}
}

// Every scenario that reads a pooled export's completed answer shares one check of its manifest (at 210,000
// files each check took a second and hundreds of MB), and still gets a violation of its own, charged to the
// requirement its step names: the step bindings fill in a scenario's requirement on the violation.
func TestAPooledExportsManifestIsCheckedOnceForEveryScenarioThatReadsIt(t *testing.T) {
	answer := func(manifest string) *pooledExport {
		x := &check.Exchange{Method: "GET", URL: "http://fut.example/fhir/$export-poll-status?_jobId=j1", Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(manifest)}
		j := &pooledExport{user: "A", done: make(chan struct{}), polls: []*check.Exchange{x}}
		close(j.done)
		return j
	}
	adopt := func(j *pooledExport, req string) (*World, error) {
		w, _ := worldWithResponse(t, nil, false)
		w.export = exportState{owner: "A", pollURL: j.polls[0].URL, pooled: j}
		if err := w.adoptPolls(context.Background(), j); err != nil {
			t.Fatalf("adoptPolls: %v", err)
		}
		return w, w.checkManifest(req, w.last)
	}

	j := answer(`{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,` +
		`"output":[{"type":"Patient","url":"https://f.example/fhir/Binary/1"}],"error":[]}`)
	first, err := adopt(j, reqPoll200)
	if err != nil {
		t.Fatalf("first scenario: %v", err)
	}
	second, err := adopt(j, "")
	if err != nil {
		t.Fatalf("second scenario: %v", err)
	}
	if first.export.manifest == nil || first.export.manifest != second.export.manifest {
		t.Errorf("two scenarios reading one pooled answer got manifests %p and %p: want one manifest, checked once", first.export.manifest, second.export.manifest)
	}

	bad := answer(`{"transactionTime":"yesterday","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[],"error":[]}`)
	_, err1 := adopt(bad, reqPoll200)
	_, err2 := adopt(bad, "")
	var v1, v2 *check.Violation
	if !errors.As(err1, &v1) || !errors.As(err2, &v2) {
		t.Fatalf("a manifest whose transactionTime is no instant: %v and %v, want two violations", err1, err2)
	}
	if v1 == v2 || v1.Requirement != reqPoll200 || v2.Requirement != "" || !strings.Contains(v1.Got, "transactionTime") {
		t.Errorf("violations %p %+v and %p %+v: want each scenario's own, charged to %s and to the scenario's requirement (\"\")", v1, *v1, v2, *v2, reqPoll200)
	}
	v2.Requirement = "EXP-OUTPUT" // as the step bindings fill it in for the second scenario
	if _, err3 := adopt(bad, ""); !errors.As(err3, &v1) || v1.Requirement != "" {
		t.Errorf("a third scenario got %v: want the requirement left for it to fill in, not the second scenario's", err3)
	}
}
