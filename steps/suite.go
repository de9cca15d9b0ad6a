// Package steps binds the Gherkin features to HTTP requests against one target.
//
// Every phrase, with an example (user is A, or B for the cross-user scenarios):
//
// Requests (export.go, report.go):
//
//	When user A kicks off a system export by POST                 (GET or POST)
//	Given user A has kicked off a system export
//	Given user A has kicked off a system export that is still running
//	Given user A has a completed system export
//	Given user A has cancelled a running system export
//	When user A polls the export status
//	When user A polls the export status while it runs
//	When user A polls the export status until it completes
//	When user A polls the export status of an unknown job id
//	When user A polls the export status without a job id
//	When user A cancels the export
//	When user A downloads every output file of the manifest
//	When user A downloads every output file of the manifest without an Accept header
//	When user A downloads every output file of the manifest with Accept "application/fhir+ndjson"
//	When every output file of the manifest is requested without a token
//	When user B requests every output file of the manifest with their own token
//	When the export status is requested without a token, then by user A with the token
//	When user A polls the export status again some seconds later
//	When user A requests the report job status
//	When user A starts a report with $execute and anonymization "ANONYMIZED"   ($execute or $schedule)
//	Given user A has started a report
//	Given user A has requested the report job status
//	When user A waits until the report job has finished
//	When user A reads the report's Binary if the job is DONE
//
// Assertions on the last response (response.go):
//
//	Then the response status is 202
//	Then the response status is a client error
//	Then the response status is an error
//	Then the response header "Content-Location" is an absolute URL
//	Then the response header "Retry-After", when present, is delta-seconds or an HTTP-date
//	Then the response Content-Type is "application/json"
//	Then the response body is an OperationOutcome
//	Then the response body, if any, is an OperationOutcome
//	Then the response body is a Binary
//	Then the response is the profile's "delete-finished" answer   (a row of features/PROFILES.md)
//	Then the response is the profile's "poll-after-delete-finished" answer, unless the DELETE was refused
//
// Assertions on the export (export.go) and the report jobs (report.go):
//
//	Then the response carries no manifest
//	Then the response body is a valid export manifest
//	Then the complete status carries an Expires header in the future
//	Then every output file holds only FHIR resources of its manifest type
//	Then no output line decoded as FHIR was modified after the manifest's transactionTime
//	Then every output file is NDJSON of its manifest type
//	Then each output file answers as the manifest's requiresAccessToken says
//	Then each output file is refused to user B
//	Then the request without a token is refused, and user A's is answered
//	Then the response is the manifest the export completed with
//	Then the export never completes for user A
//	Then a second DELETE of the cancelled export by user A answers the profile's "delete-cancelled" answer
//	Then the export is not cancelled for user A
//	Then the response body is a report job status Bundle
//	Then the status lists the new report job for its caller with a reportClass, a status and a created time
//	Then the new report job's parameters hold anonymization "ANONYMIZED"
//	Then every report job in the status carries the caller's userId
//	Then every report job in the status is well-formed
//	Then the report job's status is DONE or FAILED
//	Then the report's Binary is no longer the placeholder if the job is DONE
//	Then the status does not list the report job of user A
//	Then every report job in the status carries one userId other than user A's
package steps

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// Scenarios returns the godog scenario initializer that binds every step to target t, and endRun, to be called
// once when the last scenario has ended: it cancels on the server, best effort and within EndRunWait, the export
// jobs the run started ahead of its scenarios and leaves there (jobPool.endRun). ctx is the caller's; endRun
// never changes a verdict.
func Scenarios(t Target) (initScenario func(*godog.ScenarioContext), endRun func(ctx context.Context), err error) {
	t, err = t.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	reqs, err := features.Requirements()
	if err != nil {
		return nil, nil, err
	}
	profiles, err := features.LoadProfiles()
	if t.Profiles != nil {
		profiles, err = *t.Profiles, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if _, ok := profiles.Behaviour["running"].Answers[t.Profile]; !ok {
		return nil, nil, fmt.Errorf("profile %q: expected one of %s (features/PROFILES.md)", t.Profile, strings.Join(profiles.Names, ", "))
	}
	t.pool, t.failed = newJobPool(&t, reqs, profiles), &atomic.Bool{}
	return func(sc *godog.ScenarioContext) {
		sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
			t.pool.prefetch() // before the first scenario: every job the run waits on starts now, together
			return context.WithValue(ctx, worldKey{}, newWorld(&t, reqs, profiles, s)), nil
		})
		sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
			if w := worldFrom(ctx); w != nil {
				w.endScenario(ctx)
			}
			if err != nil && !errors.Is(err, godog.ErrSkip) {
				t.failed.Store(true)
			}
			return ctx, nil
		})
		sc.StepContext().Before(func(ctx context.Context, _ *godog.Step) (context.Context, error) {
			if w := worldFrom(ctx); w != nil {
				w.stepStart, w.omitted, w.warnings = len(w.exchanges), 0, nil
			}
			return ctx, nil
		})
		sc.StepContext().After(afterStep)
		sc.Step(`^the response is the profile's "([^"]*)" answer$`, onResponse1((*World).responseIsProfileAnswer))
		sc.Step(`^the response is the profile's "([^"]*)" answer, unless the DELETE was refused$`, onResponse1((*World).responseIsProfileAnswerUnlessDeleteRefused))
		registerResponseSteps(sc)
		registerExportSteps(sc)
		registerReportSteps(sc)
	}, t.pool.endRun, nil
}

// afterStep attaches the step's warnings, and the HTTP transcript of a failed step, to the Cucumber JSON
// report. (The failure message itself is built by call: godog's after-step hooks can only add to an error.)
func afterStep(ctx context.Context, _ *godog.Step, _ godog.StepResultStatus, err error) (context.Context, error) {
	w := worldFrom(ctx)
	if w == nil {
		return ctx, nil
	}
	red := w.target.Redactor
	for _, f := range w.warnings {
		ctx = godog.Attach(ctx, godog.Attachment{FileName: "warning " + f.Requirement, MediaType: "text/plain", Body: []byte(red.String(f.Message))})
	}
	var report *failureReport
	if errors.As(err, &report) && len(report.exchanges) > 0 {
		ctx = godog.Attach(ctx, godog.Attachment{FileName: "http-transcript.txt", MediaType: "text/plain", Body: []byte(red.String(report.transcript()))})
	}
	return ctx, nil
}

// failure turns a failed step's error into a report a vendor can act on: the requirement broken (the
// violation's own, else the scenario's), its severity and clause, and the HTTP exchanges behind the verdict.
func (w *World) failure(err error) error {
	if errors.Is(err, ErrNotApplicable) {
		return w.notApplicableHere(err.Error())
	}
	if errors.Is(err, godog.ErrSkip) && !w.skipped {
		// A skip decided outside this scenario's world (a pooled job's): godog ends the scenario without an
		// error, which the harness would report as passed with nothing checked, so it becomes this one's.
		return w.skip(strings.TrimPrefix(err.Error(), godog.ErrSkip.Error()+": "))
	}
	if err == nil || errors.Is(err, godog.ErrSkip) {
		return err
	}
	if w.warnedInstead(err) {
		return nil
	}
	exchanges := w.exchanges[w.stepStart:]
	if len(exchanges) == 0 && w.last != nil { // an assertion step: show the response it judged
		exchanges = []*check.Exchange{w.last}
	}
	report := &failureReport{err: err, exchanges: exchanges, omitted: w.omitted, redactor: w.target.Redactor}
	reqID := w.primaryRequirement()
	var v *check.Violation
	if errors.As(err, &v) {
		if v.Requirement == "" {
			v.Requirement = reqID
		}
		reqID = v.Requirement
	}
	if r, ok := w.requirements[reqID]; ok {
		// the severity that failed the run is the profile's (PROFILES.md), not REQUIREMENTS.md's general one
		r.Severity = w.severity(reqID)
		report.requirement, report.profile, report.strict = &r, w.target.Profile, w.target.Strict
	}
	return report
}

// warnedInstead records err as a warning, and says so, when it is a deviation from a requirement that does not
// fail this scenario (failsHere): the profile may rank the broken requirement lower than the check that found
// the deviation did.
func (w *World) warnedInstead(err error) bool {
	var v *check.Violation
	if !errors.As(err, &v) {
		return false
	}
	id := cmp.Or(v.Requirement, w.primaryRequirement())
	if w.failsHere(id) {
		return false
	}
	said := *v
	said.Requirement = "" // the finding carries it: in the message too it showed twice, and split one deviation's findings
	w.recordWarning(Finding{Scenario: w.scenario, Requirement: id, Message: fmt.Sprintf("%s (%s in profile %s)%s", said.Error(), w.severity(id), w.target.Profile, w.strictElsewhere(id))})
	return true
}

// unlessWarned is err, or nil when warnedInstead took it as a warning: for a wait that goes on past a deviation
// the profile does not fail here.
func (w *World) unlessWarned(err error) error {
	if w.warnedInstead(err) {
		return nil
	}
	return err
}

// The step adapters let the steps be methods on *World while godog calls plain functions of the context.
func on0(f func(*World, context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error { return call(ctx, func(w *World) error { return f(w, ctx) }) }
}

func on1(f func(*World, context.Context, string) error) func(context.Context, string) error {
	return func(ctx context.Context, a string) error {
		return call(ctx, func(w *World) error { return f(w, ctx, a) })
	}
}

func on2(f func(*World, context.Context, string, string) error) func(context.Context, string, string) error {
	return func(ctx context.Context, a, b string) error {
		return call(ctx, func(w *World) error { return f(w, ctx, a, b) })
	}
}

func on3(f func(*World, context.Context, string, string, string) error) func(context.Context, string, string, string) error {
	return func(ctx context.Context, a, b, c string) error {
		return call(ctx, func(w *World) error { return f(w, ctx, a, b, c) })
	}
}

// The assertion adapters hand a Then step the response under test, so that no assertion looks it up itself.
func onResponse0(f func(*World, *check.Exchange) error) func(context.Context) error {
	return on0(func(w *World, _ context.Context) error {
		x, err := w.responseUnderTest()
		if err != nil {
			return err
		}
		return f(w, x)
	})
}

func onResponse1(f func(*World, *check.Exchange, string) error) func(context.Context, string) error {
	return on1(func(w *World, _ context.Context, a string) error {
		x, err := w.responseUnderTest()
		if err != nil {
			return err
		}
		return f(w, x, a)
	})
}

func call(ctx context.Context, f func(*World) error) error {
	w := worldFrom(ctx)
	if w == nil {
		return fmt.Errorf("no scenario state in the context: register the steps with steps.Scenarios")
	}
	if reason := w.notApplicableInProfile(); reason != "" {
		return w.notApplicableHere(reason)
	}
	if w.target.StopOnFailure && w.target.failed.Load() {
		return w.skip("not run: GODOG_STOP_ON_FAILURE=1, and an earlier scenario failed")
	}
	return w.failure(f(w))
}
