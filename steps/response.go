package steps

import (
	"cmp"
	"fmt"
	"strconv"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
)

func registerResponseSteps(sc *godog.ScenarioContext) {
	sc.Step(`^the response status is (\d{3})$`, onResponse1((*World).responseStatusIs))
	sc.Step(`^the response status is a client error$`, onResponse0((*World).responseStatusIsClientError))
	sc.Step(`^the response status is an error$`, onResponse0((*World).responseStatusIsError))
	sc.Step(`^the response header "([^"]*)" is an absolute URL$`, onResponse1((*World).responseHeaderIsAbsoluteURL))
	sc.Step(`^the response header "Content-Location" is FUT's polling location with a _jobId$`, onResponse0((*World).contentLocationIsFUTPollingLocation))
	sc.Step(`^the response header "([^"]*)", when present, is delta-seconds or an HTTP-date$`, onResponse1((*World).responseHeaderIsRetryAfter))
	sc.Step(`^the response Content-Type is "([^"]*)"$`, onResponse1((*World).responseContentTypeIs))
	sc.Step(`^the response body is an OperationOutcome$`, onResponse0((*World).responseBodyIsOperationOutcome))
	sc.Step(`^the response body, if any, is an OperationOutcome$`, onResponse0((*World).responseBodyIfAnyIsOperationOutcome))
	sc.Step(`^the response body is a Binary$`, onResponse0((*World).responseBodyIsBinary))
}

func (w *World) responseStatusIs(x *check.Exchange, code string) error {
	want, _ := strconv.Atoi(code)
	if x.Status != want {
		return check.Violationf("", "status of "+x.Method+" "+x.URL, check.StatusPhrase(want), check.StatusPhrase(x.Status))
	}
	return nil
}

func (w *World) responseStatusIsClientError(x *check.Exchange) error {
	if x.Status < 400 || x.Status > 499 {
		return check.Violationf("", "status of "+x.Method+" "+x.URL, "a client error (4xx)", check.StatusPhrase(x.Status))
	}
	return nil
}

func (w *World) responseStatusIsError(x *check.Exchange) error {
	if x.Status < 400 || x.Status > 599 {
		return check.Violationf("", "status of "+x.Method+" "+x.URL, "an error (4xx or 5xx)", check.StatusPhrase(x.Status))
	}
	return nil
}

func (w *World) responseHeaderIsAbsoluteURL(x *check.Exchange, name string) error {
	return check.CheckAbsoluteURL("", "header "+name, x.Header.Get(name))
}

// contentLocationIsFUTPollingLocation: FUT's kick-off answers its polling location as
// [base]/$export-poll-status?_jobId=<id> (EXP-POLL-LOCATION; n/a in bulkdata, whose IG gives the polling
// location no form).
func (w *World) contentLocationIsFUTPollingLocation(x *check.Exchange) error {
	return check.CheckFUTPollingLocation("", "header Content-Location of "+x.Method+" "+x.URL, x.Header.Get("Content-Location"))
}

func (w *World) responseHeaderIsRetryAfter(x *check.Exchange, name string) error {
	return checkRetryAfter("", name, x)
}

// checkRetryAfter holds header name of x, when present, to one value of delay-seconds or an HTTP-date (RFC 9110
// §10.2.3): the scenario's step and every in-progress answer a poll sees alike (EXP-RETRY-AFTER).
func checkRetryAfter(req, name string, x *check.Exchange) error {
	values := x.Header.Values(name)
	if len(values) == 0 {
		return nil
	}
	if len(values) > 1 {
		return check.Violationf(req, "header "+name+" of "+x.Method+" "+x.URL, "one value", "%d values %q", len(values), values)
	}
	if _, err := check.ParseRetryAfter(values[0], x.ResponseTime()); err != nil {
		return check.Violationf(req, "header "+name+" of "+x.Method+" "+x.URL, "delay-seconds or an HTTP-date (RFC 9110 §10.2.3)", "%q", values[0])
	}
	return nil
}

func (w *World) responseContentTypeIs(x *check.Exchange, want string) error {
	return check.CheckMediaType("", x, want)
}

func (w *World) responseBodyIsOperationOutcome(x *check.Exchange) error {
	return w.checkOutcome("", x)
}

// responseBodyIfAnyIsOperationOutcome: a success whose body the IG makes optional ("Optionally, a FHIR
// OperationOutcome resource in the body in JSON format", BDA2 "Bulk Data Kick-off Request", "Response -
// Success") has none, or that one: a SHOULD (optionalOutcomeBody).
func (w *World) responseBodyIfAnyIsOperationOutcome(x *check.Exchange) error {
	return w.optionalOutcomeBody("", x)
}

// The tolerances of error OperationOutcomes (features/PROFILES.md): HAPI ≤ 8.4 sends them without
// issue.code, every HAPI with another media type than application/fhir+json, or none, and servers that
// follow FHIR's content negotiation as application/json when the request asked for that.
const (
	toleranceNoIssueCode = "operation-outcome-without-issue-code"
	toleranceMediaType   = "operation-outcome-media-type"
	// An OperationOutcome as application/json answering a request that asked for application/json: the
	// harness's status requests do, as BDA2 advises, and FHIR R4's content negotiation then asks for that type.
	toleranceRequestedJSON = "operation-outcome-as-requested-json"
)

// toleranceDataTime: a manifest's transactionTime before its kick-off, the time of the data the query read
// (the last load of a server that loads its data in batches) rather than the time the query ran.
const toleranceDataTime = "transaction-time-of-the-data"

// checkOutcome is check.CheckOperationOutcome under the run's profile: where the profile tolerates an issue
// without a code, or HAPI's media type, the rest of the OperationOutcome is still checked, and what was
// tolerated is reported as a known deviation.
func (w *World) checkOutcome(req string, x *check.Exchange) error {
	if w.profiles.Tolerance[toleranceRequestedJSON][w.target.Profile] && len(x.Body) > 0 && x.MediaType() == "application/json" && check.AsksGenericJSON(x.RequestHeader.Get("Accept")) {
		w.knownDeviation(req, fmt.Sprintf("%s: the OperationOutcome of %s %s came as application/json, the type the request's Accept named (FHIR R4 http.html: a server given a generic mime type SHOULD respond with it), not BDA2's application/fhir+json, accepted by profile %s", toleranceRequestedJSON, x.Method, x.URL, w.target.Profile))
		x = check.WithOutcomeMediaType(x)
	}
	if w.profiles.Tolerance[toleranceMediaType][w.target.Profile] && len(x.Body) > 0 {
		if mt := x.MediaType(); mt != "application/fhir+json" && check.OutcomeMediaTypeTolerable(mt) {
			w.knownDeviation(req, fmt.Sprintf("%s: the OperationOutcome of %s %s came as %s, not application/fhir+json, accepted by profile %s", toleranceMediaType, x.Method, x.URL, cmp.Or(mt, "no Content-Type"), w.target.Profile))
			x = check.WithOutcomeMediaType(x)
		}
	}
	if w.profiles.Tolerance[toleranceNoIssueCode][w.target.Profile] {
		if patched, missing := check.WithIssueCodes(x.Body); missing > 0 {
			w.knownDeviation(req, fmt.Sprintf("%s: the OperationOutcome of %s %s has %d issue(s) without a code, accepted by profile %s", toleranceNoIssueCode, x.Method, x.URL, missing, w.target.Profile))
			copied := *x
			copied.Body = patched
			x = &copied
		}
	}
	return check.CheckOperationOutcome(req, x)
}

func (w *World) responseBodyIsBinary(x *check.Exchange) error {
	_, err := check.DecodeBinary("", x)
	return err
}
