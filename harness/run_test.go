package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// The whole suite against the embedded reference server: every scenario passes, with both reports written.
func TestEmbeddedReferenceServerPassesEveryScenario(t *testing.T) {
	var out bytes.Buffer
	dir := t.TempDir()
	res, err := Run(context.Background(), Config{ReportsDir: dir, Out: &out, Log: &out, Randomize: -1})
	if err != nil || !res.Passed {
		t.Fatalf("run: passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
	if want := scenarioCount(t); res.Scenarios != want {
		t.Errorf("ran %d scenarios, want all %d", res.Scenarios, want)
	}
	if len(res.Findings.Skips()) != 0 || len(res.Findings.Warnings()) != 0 {
		t.Errorf("the reference server must pass without skips or warnings: %+v %+v", res.Findings.Skips(), res.Findings.Warnings())
	}
	for _, r := range res.Results {
		if r.Feature == "" || r.File == "" || len(r.Requirements) == 0 || len(r.Tags) <= len(r.Requirements) || r.Status != StatusPassed || r.Failure != nil {
			t.Errorf("scenario result %+v: want its feature, file, tags and requirements, passed", r)
		}
	}
	for _, r := range res.Requirements {
		if r.Verdict != VerdictPass || !r.Selected || r.Severity == "" {
			t.Errorf("requirement %s: %s, want pass", r.ID, r.Verdict)
		}
	}
	assertReports(t, dir, res.Scenarios, 0)
}

func assertReports(t *testing.T, dir string, scenarios, failures int) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if err != nil {
		t.Fatal(err)
	}
	var junit struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(raw, &junit); err != nil || junit.Tests != scenarios || junit.Failures != failures {
		t.Errorf("junit.xml: tests=%d failures=%d err=%v; want %d and %d", junit.Tests, junit.Failures, err, scenarios, failures)
	}
	if p := junitProblems(raw); p != nil {
		t.Errorf("junit.xml does not hold to junit.xsd:\n%s", strings.Join(p, "\n"))
	}
	raw, err = os.ReadFile(filepath.Join(dir, "cucumber.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cucumber []map[string]any
	if err := json.Unmarshal(raw, &cucumber); err != nil || len(cucumber) != 2 {
		t.Errorf("cucumber.json: %d features, err %v; want the 2 features", len(cucumber), err)
	}
}

func refserverHandler(t *testing.T, cfg refserver.Config) http.Handler {
	t.Helper()
	srv, err := refserver.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

// writeRewritten sends a recorded answer that a test rewrote as another server would have answered: header's
// fields, a Content-Length that is the rewritten body's own, code and body.
func writeRewritten(w http.ResponseWriter, header http.Header, code int, body []byte) {
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// runAgainst runs the selected scenarios against handler as a TARGET, the way a vendor's server is run.
func runAgainst(t *testing.T, handler http.Handler, cfg Config) (Result, string, error) {
	t.Helper()
	return runAgainstContext(context.Background(), t, handler, cfg)
}

// runAgainstContext is runAgainst with the caller's context, e.g. one cancelled as Ctrl-C would.
func runAgainstContext(ctx context.Context, t *testing.T, handler http.Handler, cfg Config) (Result, string, error) {
	t.Helper()
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	var out bytes.Buffer
	cfg.Target, cfg.Out, cfg.Log, cfg.ReportsDir = ts.URL+"/fhir", &out, &out, t.TempDir()
	res, err := Run(ctx, cfg)
	return res, out.String(), err
}

func TestWithoutTokenBTheCrossUserScenariosAreSkippedVisibly(t *testing.T) {
	// With a scenario that is checked: a run of skips alone checked nothing (TestARunThatChecksNothingIsNotAPass).
	res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@cross-user,@EXP-UNKNOWN-JOB"})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out)
	}
	want := scenarioCount(t, "cross-user")
	if skips := res.Findings.Skips(); len(skips) != want || !strings.Contains(skips[0].Message, "TOKEN_B") {
		t.Fatalf("want the %d cross-user scenarios skipped for want of TOKEN_B, got %+v", want, skips)
	}
	if !strings.Contains(out, fmt.Sprintf("Skipped, not checked: %d", want)) {
		t.Errorf("the summary must list the skips:\n%s", out)
	}
}

// A server that deviates in one behaviour fails the run, and the failure names the requirement, the request
// and the response, without the token.
func TestADeviationFailsTheRunAndNamesTheRequirement(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{})
	noProgress := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(headerDropper{ResponseWriter: w, drop: "X-Progress"}, r)
	})
	res, out, err := runAgainst(t, noProgress, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@EXP-POLL-202"})
	if err != nil || res.Passed {
		t.Fatalf("want a failed run, got passed=%v err=%v\n%s", res.Passed, err, out)
	}
	for _, want := range []string{"EXP-POLL-202", "requirement EXP-POLL-202 (MUST in profile fut)", "> GET http://", "< 202 Accepted", "curl -i -X GET", "Bearer $TOKEN"} {
		if !strings.Contains(out, want) {
			t.Errorf("failure output lacks %q", want)
		}
	}
	if strings.Contains(out, refserver.DemoTokenA) {
		t.Errorf("the output shows the token")
	}
}

type headerDropper struct {
	http.ResponseWriter
	drop string
}

func (h headerDropper) WriteHeader(code int) {
	h.Header().Del(h.drop)
	h.ResponseWriter.WriteHeader(code)
}

// A server whose export never finishes: the run ends by itself once MAX_WAIT is spent, saying so. Counted
// in polls: with MAX_WAIT 2 s and the reference server's Retry-After of 1 s, the polls due at 0, 1 and 2 s at
// most (a loaded machine sends them later, so fewer, never more).
func TestAJobThatNeverFinishesEndsTheRunWithinMaxWait(t *testing.T) {
	var polls requestCounter
	handler := polls.wrap(refserverHandler(t, refserver.Config{ExportDuration: time.Hour}), func(r *http.Request, _ []byte) string {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "$export-poll-status") {
			return r.URL.RawQuery
		}
		return ""
	})
	var res Result
	var out string
	var err error
	runOrHang(t, hangLimit, func() {
		res, out, err = runAgainst(t, handler, Config{Token: refserver.DemoTokenA, Tags: "@EXP-POLL-200", MaxWait: 2 * time.Second})
	})
	if err != nil || res.Passed {
		t.Fatalf("want a failed run, got passed=%v err=%v\n%s", res.Passed, err, out)
	}
	if job, n := polls.most(); n == 0 || n > 2+1 {
		t.Errorf("%s polled %d times with MAX_WAIT 2s and Retry-After 1, want at most 3", job, n)
	}
	if !strings.Contains(out, "gave up waiting") || !strings.Contains(out, "poll history") {
		t.Errorf("the failure must say it gave up, with the poll history:\n%s", out)
	}
}

// A server that accepts the connection and never answers: the preflight's first request ends at
// REQUEST_TIMEOUT, and the run could not happen. (A server that stops answering within a scenario is
// TestHostileDripFeedEndsAtRequestTimeout.)
func TestAServerThatNeverAnswersEndsAtRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	var res Result
	var out string
	var err error
	// A request not cut at REQUEST_TIMEOUT would never end: the run hangs.
	runOrHang(t, hangLimit, func() {
		res, out, err = runAgainst(t, hang, Config{Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB", RequestTimeout: 500 * time.Millisecond})
	})
	var pe *PreflightError
	if !errors.As(err, &pe) || res.Passed || res.Scenarios != 0 {
		t.Fatalf("want a run that could not happen, got passed=%v scenarios=%d err=%v\n%s", res.Passed, res.Scenarios, err, out)
	}
	if !strings.Contains(pe.Cause, "REQUEST_TIMEOUT") || !strings.Contains(pe.Fix, "REQUEST_TIMEOUT") {
		t.Errorf("the error must name REQUEST_TIMEOUT in its cause and fix: %v", err)
	}
}

func TestATagExpressionSelectingNothingIsAnError(t *testing.T) {
	_, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF && @RJS-BUNDLE"})
	if !errors.Is(err, ErrNoScenario) {
		t.Fatalf("want ErrNoScenario, got %v\n%s", err, out)
	}
}

func TestTokensWithoutTargetAreRefused(t *testing.T) {
	_, err := Run(context.Background(), Config{Token: "x", ReportsDir: t.TempDir(), Out: &bytes.Buffer{}})
	if err == nil || !strings.Contains(err.Error(), "without TARGET") {
		t.Fatalf("want a clear refusal, got %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{"TARGET": " https://fut.example/fhir ", "MAX_WAIT": "90s", "REQUEST_TIMEOUT": "5s", "STRICT": "1", "RANDOM_SEED": "-1"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Target != "https://fut.example/fhir" || cfg.MaxWait != 90*time.Second || cfg.RequestTimeout != 5*time.Second || !cfg.Strict || cfg.Randomize != -1 {
		t.Fatalf("cfg %+v err %v", cfg, err)
	}
	bad := map[string]string{"MAX_WAIT": "ten minutes", "REQUEST_TIMEOUT": "-1s", "STRICT": "maybe", "MAX_BODY": "lots"}
	_, err = ConfigFromEnv(func(k string) string { return bad[k] })
	for name := range bad {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("the error must name %s: %v", name, err)
		}
	}
}

// Staged is told the directory in REPORTS_DIR where the run stages its reports, which it removes when the
// reports are in place.
func TestStagedNamesTheReportsStagingDirectory(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	var staged string
	res, err := Run(context.Background(), Config{ReportsDir: dir, Out: &out, Log: &out, Tags: "@EXP-MISSING-JOB", Staged: func(d string) { staged = d }})
	if err != nil || !res.Passed {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if filepath.Dir(staged) != dir || !strings.HasPrefix(filepath.Base(staged), ".run-") {
		t.Errorf("Staged was told %q, want a .run- directory in %s", staged, dir)
	}
	if _, err := os.Stat(staged); !os.IsNotExist(err) {
		t.Errorf("the staging directory is still there: %v", err)
	}
}

// FHIR_LINES takes sample (the default), a number of first lines, all or none; FHIR_SAMPLE a fraction.
func TestFHIRLinesFromEnv(t *testing.T) {
	for v, want := range map[string]int{"": 0, "sample": 0, "SAMPLE": 0, "3": 3, "all": check.AllLines, "none": steps.NoFHIRLines, "0": steps.NoFHIRLines} {
		cfg, err := ConfigFromEnv(func(k string) string { return map[string]string{"FHIR_LINES": v}[k] })
		if err != nil || cfg.FHIRLines != want {
			t.Errorf("FHIR_LINES=%q: got %d (%v), want %d", v, cfg.FHIRLines, err, want)
		}
	}
	if _, err := ConfigFromEnv(func(k string) string { return map[string]string{"FHIR_LINES": "some"}[k] }); err == nil || !strings.Contains(err.Error(), "expected sample, all, none") {
		t.Errorf("FHIR_LINES=some: want a clear error, got %v", err)
	}
	cfg, err := ConfigFromEnv(func(k string) string { return map[string]string{"FHIR_SAMPLE": "0.01"}[k] })
	if err != nil || cfg.FHIRSample != 0.01 {
		t.Errorf("FHIR_SAMPLE=0.01: got %v (%v)", cfg.FHIRSample, err)
	}
	for _, bad := range []string{"0", "-0.1", "1.5", "often", "NaN"} {
		if _, err := ConfigFromEnv(func(k string) string { return map[string]string{"FHIR_SAMPLE": bad}[k] }); err == nil || !strings.Contains(err.Error(), "FHIR_SAMPLE") {
			t.Errorf("FHIR_SAMPLE=%s: want a clear error, got %v", bad, err)
		}
	}
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL + "/fhir"
}

// The embedded reference server exports what REFSERVER_SYNTHETIC_* and REFSERVER_FILES_PER_TYPE say: a
// generated export split into files, which the output scenario downloads and passes.
func TestEmbeddedReferenceServerServesASyntheticExport(t *testing.T) {
	env := map[string]string{"REFSERVER_SYNTHETIC_RESOURCES": "3000", "REFSERVER_SYNTHETIC_TYPES": "Patient,Observation", "REFSERVER_FILES_PER_TYPE": "3", "TAGS": "@EXP-OUTPUT"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cfg.ReportsDir, cfg.Out, cfg.Log = t.TempDir(), &out, &out
	res, err := Run(context.Background(), cfg)
	if err != nil || !res.Passed || res.Scenarios != 1 {
		t.Fatalf("run: passed=%v scenarios=%d err=%v\n%s", res.Passed, res.Scenarios, err, out.String())
	}
	for _, want := range []string{"Patient", "Observation"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the console does not mention the %s files:\n%s", want, out.String())
		}
	}
}

func TestRefserverExportVariables(t *testing.T) {
	dir := t.TempDir()
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"REFSERVER_DATA_DIR": dir, "REFSERVER_FILES_PER_TYPE": "5"}[k]
	})
	if err != nil || cfg.RefserverExport.DataDir != dir || cfg.RefserverExport.FilesPerType != 5 {
		t.Fatalf("cfg %+v err %v", cfg.RefserverExport, err)
	}
	for name, env := range map[string]map[string]string{
		"REFSERVER_SYNTHETIC_BYTES": {"REFSERVER_SYNTHETIC_BYTES": "huge"},
		"REFSERVER_FILES_PER_TYPE":  {"REFSERVER_FILES_PER_TYPE": "0"},
		"REFSERVER_DATA_DIR":        {"REFSERVER_DATA_DIR": filepath.Join(dir, "missing")},
		"embedded reference server": {"REFSERVER_SYNTHETIC_BYTES": "1GiB", "TARGET": "https://fut.example/fhir"},
	} {
		cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: the error must name %s, got %v", env, name, err)
		}
	}
}

// GATE=1 is the release gate: without TOKEN_B the two MUST cross-user requirements are not checked, and the
// gate fails the run naming them and why; with both users every MUST requirement is checked and it passes.
func TestReleaseGate(t *testing.T) {
	res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Gate: true})
	if err != nil || res.Passed || res.Gate == nil || res.Gate.Passed {
		t.Fatalf("GATE=1 without TOKEN_B: want a failed gate, got passed=%v gate=%+v err=%v\n%s", res.Passed, res.Gate, err, out)
	}
	if len(res.Failures) != 0 {
		t.Errorf("every scenario that ran must pass; the gate alone fails the run: %+v", res.Failures)
	}
	var unchecked []string
	for _, r := range res.Gate.Unchecked {
		unchecked = append(unchecked, r.ID)
		if r.Verdict != VerdictSkipped || !strings.Contains(r.Reason, "TOKEN_B") {
			t.Errorf("%s: want skipped for want of TOKEN_B, got %s %q", r.ID, r.Verdict, r.Reason)
		}
	}
	if strings.Join(unchecked, " ") != "EXP-CROSS-USER RJS-CROSS-USER" {
		t.Errorf("the gate must name exactly the unchecked MUST requirements, got %v", unchecked)
	}
	raw, err := os.ReadFile(filepath.Join(res.Reports[0]))
	if err != nil {
		t.Fatal(err)
	}
	if p := junitProblems(raw); p != nil || !strings.Contains(string(raw), `<failure message="EXP-CROSS-USER (MUST) skipped: user B has no token`) {
		t.Errorf("junit.xml must hold to junit.xsd and show the gate's failures: %v\n%s", p, raw)
	}
	for _, want := range []string{"Release gate (GATE=1): FAILED, 2 MUST requirements not checked and passed", "EXP-CROSS-USER  skipped: user B has no token", "RJS-CROSS-USER  skipped"} {
		if !strings.Contains(out, want) {
			t.Errorf("the console lacks %q:\n%s", want, out)
		}
	}

	res, out, err = runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Gate: true})
	if err != nil || !res.Passed || res.Gate == nil || !res.Gate.Passed || len(res.Gate.Unchecked) != 0 {
		t.Fatalf("GATE=1 with both users against a conformant server: want a pass, got passed=%v gate=%+v err=%v\n%s", res.Passed, res.Gate, err, out)
	}
	if !strings.Contains(out, "Release gate (GATE=1): passed") {
		t.Errorf("the console must say the gate passed:\n%s", out)
	}
}

// A release gate names the server it vouches for: a pipeline whose TARGET did not reach the job (a protected
// variable on an unprotected tag) must not pass its gate on the embedded reference server, the harness's own.
func TestAReleaseGateWithoutATargetIsRefused(t *testing.T) {
	var buf bytes.Buffer
	res, err := Run(context.Background(), Config{Gate: true, ReportsDir: t.TempDir(), Out: &buf, Log: &buf})
	if err == nil || res.Passed || !strings.Contains(err.Error(), "GATE=1 without TARGET or IMAGE") {
		t.Fatalf("GATE=1 with no target: want the run refused naming TARGET, got passed=%v err=%v\n%s", res.Passed, err, buf.String())
	}
	if strings.Contains(buf.String(), "Release gate (GATE=1): passed") {
		t.Errorf("no gate may pass:\n%s", buf.String())
	}
	// the environment as a CI job whose TARGET variable is empty hands it over
	cfg, err := ConfigFromEnv(func(k string) string { return map[string]string{"GATE": "1", "TARGET": ""}[k] })
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "GATE=1 without TARGET or IMAGE") {
		t.Errorf("GATE=1 with an empty TARGET: want it refused, got %v", err)
	}
}

// The gate asks for the MUST requirements of the selected features only, and a requirement TAGS left out
// is "not run", which fails it.
func TestReleaseGateCountsOnlyTheSelectedFeatures(t *testing.T) {
	res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
		Gate: true, Features: []string{"report"}, Tags: "~@RJS-TERMINAL"})
	if err != nil || res.Passed || res.Gate == nil {
		t.Fatalf("want a failed gate: passed=%v err=%v\n%s", res.Passed, err, out)
	}
	if len(res.Gate.Unchecked) != 1 || res.Gate.Unchecked[0].ID != "RJS-TERMINAL" || res.Gate.Unchecked[0].Verdict != VerdictNotRun {
		t.Errorf("want only RJS-TERMINAL unchecked (not run), the export feature's requirements not asked for: %+v", res.Gate.Unchecked)
	}
}

// A run that could not happen leaves the previous run's reports as they were, and no staging directory.
func TestARunThatCouldNotHappenLeavesThePreviousReports(t *testing.T) {
	dir := t.TempDir()
	previous := map[string]string{"junit.xml": "<testsuites/>", "cucumber.json": "[]", "index.html": "<p>previous run</p>"}
	for name, body := range previous {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, cfg := range map[string]Config{
		"TAGS selecting nothing": {Tags: "@EXP-KICKOFF && @RJS-BUNDLE"},
		"an unknown tag":         {Tags: "@no-such-tag"},
		"an unknown profile":     {Profile: "nope"},
		"a bad target":           {Target: "ftp://nowhere"},
	} {
		cfg.ReportsDir, cfg.Out, cfg.Log = dir, io.Discard, io.Discard
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: want an error", name)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != len(previous) {
			t.Errorf("%s: the reports directory holds %d entries, want the %d previous reports only", name, len(entries), len(previous))
		}
		for file, body := range previous {
			if got, err := os.ReadFile(filepath.Join(dir, file)); err != nil || string(got) != body {
				t.Errorf("%s: %s was replaced: %q %v", name, file, got, err)
			}
		}
	}
	// A run that happens replaces them.
	if _, err := Run(context.Background(), Config{Tags: "@EXP-UNKNOWN-JOB", ReportsDir: dir, Out: io.Discard, Log: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "index.html")); string(got) == previous["index.html"] {
		t.Errorf("a run that happened must replace the reports")
	}
}

// GODOG_STOP_ON_FAILURE=1: the first failed scenario stops the run; every later scenario is reported as
// skipped, saying why, and the reports are written (godog's own option made its cucumber formatter panic
// on the scenarios it left unrun).
func TestStopOnFailureSkipsTheRestAndWritesTheReports(t *testing.T) {
	h := refserverHandler(t, refserver.Config{Faults: []string{"unknown-job-400"}})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	var out bytes.Buffer
	dir := t.TempDir()
	res, err := Run(context.Background(), Config{Target: ts.URL + "/fhir", Token: refserver.DemoTokenA, StopOnFailure: true,
		Out: &out, Log: &out, ReportsDir: dir})
	if err != nil || res.Passed || len(res.Failures) != 1 || res.Failures[0].Requirement != "EXP-UNKNOWN-JOB" {
		t.Fatalf("want one failure, EXP-UNKNOWN-JOB; got passed=%v err=%v failures=%+v\n%s", res.Passed, err, res.Failures, out.String())
	}
	failedAt, stopped := -1, 0
	for i, r := range res.Results {
		switch {
		case r.Status == StatusFailed:
			failedAt = i
		case failedAt >= 0 && r.Status == StatusSkipped && strings.Contains(r.Reason, "GODOG_STOP_ON_FAILURE"):
			stopped++
		case failedAt >= 0:
			t.Errorf("scenario %q ran after the failure: %s", r.Name, r.Status)
		}
	}
	if failedAt < 0 || stopped == 0 {
		t.Errorf("want scenarios skipped after the failed one (at %d), got %d skipped", failedAt, stopped)
	}
	for _, name := range []string{"junit.xml", "cucumber.json", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("report %s: %v", name, err)
		}
	}
}

// A misspelt profile is refused by the configuration, with the same message whatever the target, before the
// embedded reference server is started with it; so is a profile the reference server cannot emulate.
func TestAMisspeltProfileIsRefusedWhateverTheTarget(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Profile: "FUT"}, `PROFILE="FUT": expected one of fut, bulkdata, hapi-8.0`},
		{Config{Profile: "hapi", Target: "http://127.0.0.1:1/fhir"}, `PROFILE="hapi": expected one of fut, bulkdata, hapi-8.0`},
		{Config{RefserverProfile: "hapi-7"}, `REFSERVER_PROFILE="hapi-7": expected one of`},
	} {
		c.cfg.ReportsDir, c.cfg.Out = t.TempDir(), &bytes.Buffer{}
		_, err := Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "reference server") {
			t.Errorf("%+v: want the configuration's error %q, got %v", c.cfg, c.want, err)
		}
	}
	for _, p := range []string{"fut", "bulkdata", "hapi-8.0"} {
		if err := (Config{Profile: p, RefserverProfile: p}).Validate(); err != nil {
			t.Errorf("profile %s refused: %v", p, err)
		}
	}
}

// A REPORTS_DIR the run cannot use ends it before the target is contacted (no preflight request, no export
// kicked off for nothing), with an error naming REPORTS_DIR: a path through a file, or one holding a comma,
// which godog would split its format list at (creating, or emptying, a file named by the part before it).
func TestAnUnusableReportsDirEndsTheRunBeforeTheTarget(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(file, "reports"), filepath.Join(base, "file,reports")} {
		var requests atomic.Int64
		h := refserverHandler(t, refserver.Config{})
		target := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			h.ServeHTTP(w, r)
		}))
		var out bytes.Buffer
		_, err := Run(context.Background(), Config{Target: target, Token: refserver.DemoTokenA, Tags: "@EXP-MISSING-JOB", ReportsDir: dir, Out: &out, Log: &out})
		if err == nil || !strings.Contains(err.Error(), "REPORTS_DIR="+fmt.Sprintf("%q", dir)) {
			t.Errorf("REPORTS_DIR=%s: want an error naming REPORTS_DIR, got %v\n%s", dir, err, out.String())
		}
		if n := requests.Load(); n > 0 {
			t.Errorf("REPORTS_DIR=%s: the run sent %d requests to the target before it failed", dir, n)
		}
		if raw, err := os.ReadFile(file); err != nil || string(raw) != "keep" {
			t.Errorf("REPORTS_DIR=%s: the file beside it was changed: %q, %v", dir, raw, err)
		}
	}
	// A missing one is made, parents included.
	dir := filepath.Join(base, "new", "reports")
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Target: serve(t, refserverHandler(t, refserver.Config{})), Token: refserver.DemoTokenA, Tags: "@EXP-MISSING-JOB", ReportsDir: dir, Out: &out, Log: &out})
	if err != nil || !res.Passed {
		t.Fatalf("REPORTS_DIR=%s: passed=%v err=%v\n%s", dir, res.Passed, err, out.String())
	}
	for _, name := range []string{"junit.xml", "cucumber.json", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("REPORTS_DIR=%s: %v", dir, err)
		}
	}
}
