package harness

import (
	"bytes"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// refusing answers POST [base]/$<variant>-patient-usage-stats with 403 and an OperationOutcome carrying code,
// as a FUT deployment that does not let the caller start that report that way; every other request reaches h.
func refusing(h http.Handler, variant, code string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/$"+variant+"-patient-usage-stats") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden","details":{"coding":[{"code":"` + code + `"}]},"diagnostics":"` + code + `"}]}`))
	})
}

// FUT documents REPORTING_SCHEDULE_NOT_ALLOWED ("Scheduled generation of the report is not allowed") and
// REPORTING_EXECUTE_NOT_ALLOWED for a report a deployment does not let the caller start that way: a $schedule-
// refused with the first is no deviation, and RJS-LISTED's $schedule example is skipped, naming the code,
// while its $execute example passes. Refused with the other variant's code, or a bare 403, it still fails.
func TestAReportVariantTheDeploymentDoesNotAllowIsSkippedNotFailed(t *testing.T) {
	res, out, err := runAgainst(t, refusing(refserverHandler(t, refserver.Config{}), "schedule", "REPORTING_SCHEDULE_NOT_ALLOWED"),
		Config{Token: refserver.DemoTokenA, Tags: "@RJS-LISTED", Features: []string{"report"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed || len(res.Failures) != 0 {
		t.Fatalf("a documented refusal is no deviation: passed %v, failures %+v\n%s", res.Passed, res.Failures, out)
	}
	skips := res.Findings.Skips()
	if len(skips) != 1 || skips[0].Requirement != "RJS-LISTED" || !strings.Contains(skips[0].Message, "REPORTING_SCHEDULE_NOT_ALLOWED") || !strings.Contains(skips[0].Message, "$schedule-patient-usage-stats") {
		t.Fatalf("want the $schedule example of RJS-LISTED skipped, naming the code, got %+v\n%s", skips, out)
	}
	for _, code := range []string{"REPORTING_EXECUTE_NOT_ALLOWED", "SECURITY_TOKEN_INSUFFICIENT_PERMISSION"} {
		res, out, err := runAgainst(t, refusing(refserverHandler(t, refserver.Config{}), "schedule", code),
			Config{Token: refserver.DemoTokenA, Tags: "@RJS-LISTED", Features: []string{"report"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := failedRequirements(res); len(got) != 1 || got[0] != "RJS-LISTED" || len(res.Findings.Skips()) != 0 {
			t.Fatalf("$schedule refused with %s: failures %v, skips %+v; want RJS-LISTED failed\n%s", code, got, res.Findings.Skips(), out)
		}
	}
}

// A report's start that answers a Binary without an id leaves nothing to find its job by: RJS-LISTED fails,
// saying so, rather than the run ending on an error of the harness's own ("no report started").
func TestAReportBinaryWithoutAnIDFailsRJSListed(t *testing.T) {
	id := regexp.MustCompile(`"id":"[^"]*",?`)
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, _ int, body []byte) []byte {
		if !strings.Contains(r.URL.Path, "/$execute-") && !strings.Contains(r.URL.Path, "/$schedule-") {
			return body
		}
		return id.ReplaceAll(body, nil)
	})
	bothExamplesFailRJSListed(t, h, "naming the Binary without an id", func(f Failure) bool {
		return f.NonConformant && strings.Contains(f.Message, "a persisted Binary with an id")
	})
}

// bothExamplesFailRJSListed runs RJS-LISTED's two examples ($execute- and $schedule-) against h and wants each
// failed on RJS-LISTED in the way as accepts, which named describes for the message.
func bothExamplesFailRJSListed(t *testing.T, h http.Handler, named string, as func(Failure) bool) {
	t.Helper()
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-LISTED", Features: []string{"report"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 2 {
		t.Fatalf("want both examples of RJS-LISTED failed, got %+v\n%s", res.Failures, out)
	}
	for _, f := range res.Failures {
		if f.Requirement != "RJS-LISTED" || !as(f) {
			t.Fatalf("want RJS-LISTED failed %s, got %+v\n%s", named, f, out)
		}
	}
}

// The OperationDefinition defines no paging: a status that leaves the new job to a next page fails RJS-LISTED,
// and the failure names the next link it did not follow and why, so that the choice is never silent.
func TestAPagedReportJobStatusFailsNamingTheNextLink(t *testing.T) {
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, status int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") || status != http.StatusOK {
			return body
		}
		return []byte(`{"resourceType":"Bundle","type":"collection","link":[{"relation":"next","url":"https://fut.example/fhir?_getpages=1&_getpagesoffset=20"}]}`)
	})
	bothExamplesFailRJSListed(t, h, "naming the next link not followed", func(f Failure) bool {
		return strings.Contains(f.Summary, "next link (https://fut.example/fhir?_getpages=1&_getpagesoffset=20), not followed: the OperationDefinition defines no paging")
	})
}

// A report the job pool starts ahead, for the scenarios that wait on one, is refused the same way: the
// scenario that adopts it is skipped naming the code, as the run's skip finding, not with a bare "skipped"
// that the run's findings never list.
func TestAPooledReportRefusedByTheDeploymentIsSkippedNamingTheCode(t *testing.T) {
	res, out, err := runAgainst(t, refusing(refserverHandler(t, refserver.Config{}), "execute", "REPORTING_EXECUTE_NOT_ALLOWED"),
		Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL", Features: []string{"report"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 0 {
		t.Fatalf("a documented refusal is no deviation: failures %+v\n%s", res.Failures, out)
	}
	skips := res.Findings.Skips()
	if len(skips) != 1 || skips[0].Requirement != "RJS-TERMINAL" || !strings.Contains(skips[0].Message, "REPORTING_EXECUTE_NOT_ALLOWED") {
		t.Fatalf("want RJS-TERMINAL skipped, naming the code, got %+v\n%s", skips, out)
	}
	for _, s := range res.Results {
		if s.Status != StatusSkipped || !strings.Contains(s.Reason, "REPORTING_EXECUTE_NOT_ALLOWED") {
			t.Fatalf("scenario %q: status %v, reason %q; want skipped naming the code\n%s", s.Name, s.Status, s.Reason, out)
		}
	}
}

// A status whose Bundle cannot be read as report jobs (here every entry holds two reportJob parameters: two
// jobs in one Parameters) is a deviation of RJS-STRUCTURE, and the failure says what could not be read. It is
// not a job missing from the status, which is what RJS-LISTED's and the wait's failures said ("none among 0
// entries"), hiding the reason; nor, for the wait, a job that never finishes.
func TestAnUndecodableReportJobStatusFailsNamingWhy(t *testing.T) {
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, status int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") || status != http.StatusOK {
			return body
		}
		return bytes.ReplaceAll(body, []byte(`"parameter":[{"name":"reportJob"`), []byte(`"parameter":[{"name":"reportJob","part":[{"name":"status","valueString":"DONE"}]},{"name":"reportJob"`))
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-LISTED,@RJS-TERMINAL", Features: []string{"report"}, MaxWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 3 {
		t.Fatalf("want RJS-LISTED's two examples and RJS-TERMINAL failed, got %+v\n%s", res.Failures, out)
	}
	for _, f := range res.Failures {
		if !f.NonConformant || f.Requirement != "RJS-STRUCTURE" || !strings.Contains(f.Summary, "exactly one parameter named reportJob, got 2") {
			t.Errorf("scenario %q: want an RJS-STRUCTURE violation naming the two reportJob parameters, got %s: %s", f.Scenario, f.Requirement, f.Summary)
		}
	}
}

// A status request answered with an error while the harness waits on a job breaks RJS-BUNDLE (a status answers
// 200), whose clause the failure shows: not the waiting scenario's own requirement.
func TestAnErrorStatusWhileWaitingFailsRJSBundle(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/$get-report-job-status") {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`))
			return
		}
		inner.ServeHTTP(w, r)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL", Features: []string{"report"}, MaxWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Requirement != "RJS-BUNDLE" || !strings.Contains(res.Failures[0].Message, "requirement RJS-BUNDLE (MUST in profile fut)") {
		t.Fatalf("want RJS-TERMINAL's scenario failed on RJS-BUNDLE, with its clause, got %+v\n%s", res.Failures, out)
	}
}

// A report job whose status part is no valueString (here a valueCode) has no status the harness can read: the
// wait on it fails RJS-STRUCTURE at once, naming the part, instead of taking the job for one that ended with
// a status no source names ("") and leaving RJS-TERMINAL not checked.
func TestAReportJobWithoutAStatusStringFailsRJSStructure(t *testing.T) {
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, _ int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") {
			return body
		}
		return bytes.ReplaceAll(body, []byte(`"name":"status","valueString"`), []byte(`"name":"status","valueCode"`))
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL", Features: []string{"report"}, MaxWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) != 1 || res.Failures[0].Requirement != "RJS-STRUCTURE" || !strings.Contains(res.Failures[0].Summary, "status") || len(res.Findings.NotChecked()) != 0 {
		t.Fatalf("want RJS-TERMINAL's scenario failed on RJS-STRUCTURE naming the status part, got failures %+v, not checked %+v\n%s", res.Failures, res.Findings.NotChecked(), out)
	}
}

// A report job that ends FAILED is conformant, but RJS-TERMINAL's other half (a DONE report's Binary holds the
// report) was then never seen: the requirement passes, not checked in that part, and the release gate fails
// as partly checked, as a server whose every report fails must not pass it.
func TestAFailedReportLeavesItsBinaryNotChecked(t *testing.T) {
	h := rewriting(refserverHandler(t, refserver.Config{}), func(r *http.Request, _ int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$get-report-job-status") {
			return body
		}
		return bytes.ReplaceAll(body, []byte(`"name":"status","valueString":"DONE"`), []byte(`"name":"status","valueString":"FAILED"`))
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@RJS-TERMINAL", Features: []string{"report"}, Gate: true, MaxWait: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	nc := res.Findings.NotChecked()
	if len(res.Failures) != 0 || len(nc) != 1 || nc[0].Requirement != "RJS-TERMINAL" || !strings.Contains(nc[0].Message, "ended FAILED") {
		t.Fatalf("want no failure and RJS-TERMINAL's Binary not checked, got failures %+v, not checked %+v\n%s", res.Failures, nc, out)
	}
	if res.Gate == nil || !slices.ContainsFunc(res.Gate.Unchecked, func(r RequirementResult) bool {
		return r.ID == "RJS-TERMINAL" && r.Verdict == VerdictPass && len(r.NotChecked) == 1
	}) {
		t.Fatalf("want the release gate to count RJS-TERMINAL partly checked, got %+v\n%s", res.Gate, out)
	}
}
