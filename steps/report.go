package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/cucumber/godog"
	"github.com/google/go-cmp/cmp"
	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

func registerReportSteps(sc *godog.ScenarioContext) {
	sc.Step(`^user (A|B) requests the report job status$`, on1((*World).requestsReportJobStatus))
	sc.Step(`^user (A|B) starts a report with \$(execute|schedule) and anonymization "([^"]*)"$`, on3((*World).startsReport))
	sc.Step(`^user (A|B) has started a report$`, on1((*World).hasStartedReport))
	sc.Step(`^user (A|B) waits until the report job has finished$`, on1((*World).waitsForReportJob))
	sc.Step(`^the response body is a report job status Bundle$`, on0((*World).responseIsReportJobBundle))
	sc.Step(`^the status lists the new report job for its caller with a reportClass, a status and a created time$`, on0((*World).statusListsNewJob))
	sc.Step(`^the new report job's parameters hold anonymization "([^"]*)"$`, on1((*World).newJobParametersHoldAnonymization))
	sc.Step(`^every report job in the status carries the caller's userId$`, on0((*World).everyJobCarriesCallersUserID))
	sc.Step(`^every report job in the status is well-formed$`, on0((*World).everyJobIsWellFormed))
	sc.Step(`^the report job's status is DONE or FAILED$`, on0((*World).jobStatusIsTerminal))
	sc.Step(`^the report's Binary is no longer the placeholder if the job is DONE$`, on0((*World).doneReportBinaryIsGenerated))
	sc.Step(`^the status does not list the report job of user (A|B)$`, on1((*World).statusDoesNotListJobOf))
	sc.Step(`^every report job in the status carries one userId other than user (A|B)'s$`, on1((*World).everyJobCarriesOneUserIDOtherThan))
}

// reportState is the report job of the scenario, found by the Binary its start returned.
type reportState struct {
	owner       string
	binaryID    string
	binaryUser  string // Binary.securityContext of the placeholder, when the server sets it
	ownerUserID string // the userId the owner's status gave the job
	sent        map[string]string
	statusUser  string      // who asked for the last status
	jobs        []reportJob // the last status, decoded
	job         *reportJob  // the new job in the last status
}

// reportJob is one entry of the status Bundle, decoded through the golang-fhir-models structs.
type reportJob struct {
	fullURL     string
	reportClass string
	userID      string
	status      string
	binary      string // the reference as sent
	parameters  map[string]string
	created     string
	started     string
	ended       string
}

const (
	reqListed            = "RJS-LISTED"
	reqStructure         = "RJS-STRUCTURE"
	reqFullURL           = "RJS-FULLURL"
	placeholder          = "*NOT GENERATED YET*"
	defaultAnonymization = "ANONYMIZED"
)

// Terminal report job statuses. The specification names no enumeration, so any other value counts as
// still running.
var terminalStatus = map[string]bool{"DONE": true, "FAILED": true}

func (w *World) requestsReportJobStatus(ctx context.Context, user string) error {
	x, err := w.requestStatus(ctx, user)
	if err != nil {
		return err
	}
	w.last = x
	return nil
}

func (w *World) requestStatus(ctx context.Context, user string) (*Exchange, error) {
	x, err := w.request(ctx, user, http.MethodPost, w.reportEndpoint("$get-report-job-status"), fhirJSONHeader(), []byte(`{"resourceType":"Parameters"}`))
	if err != nil {
		return nil, err
	}
	w.report.statusUser, w.report.jobs, w.report.job = user, nil, nil
	if x.Status == http.StatusOK {
		if jobs, err := decodeReportJobs(x.Body); err == nil {
			w.report.jobs = jobs
			w.report.job = w.findJob(jobs)
		}
	}
	return x, nil
}

func (w *World) startsReport(ctx context.Context, user, variant, anonymization string) error {
	w.report = reportState{owner: user, sent: map[string]string{"anonymization": anonymization}}
	body, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []map[string]string{{"name": "anonymization", "valueString": anonymization}}})
	x, err := w.request(ctx, user, http.MethodPost, w.reportEndpoint("$"+variant+"-"+w.target.Report), fhirJSONHeader(), body)
	if err != nil {
		return err
	}
	w.last = x
	if x.Status == http.StatusOK {
		if b, err := decodeBinary("", x); err == nil {
			w.report.binaryID, w.report.binaryUser = b.ID, b.securityUser()
		}
	}
	return nil
}

func (w *World) hasStartedReport(ctx context.Context, user string) error {
	if err := w.startsReport(ctx, user, "execute", defaultAnonymization); err != nil {
		return err
	}
	if w.last.Status != http.StatusOK {
		return violation(reqListed, "status of $execute-"+w.target.Report, statusPhrase(http.StatusOK)+" and a Binary", statusPhrase(w.last.Status))
	}
	if _, err := decodeBinary(reqListed, w.last); err != nil {
		return err
	}
	if w.report.binaryID == "" {
		return violation(reqListed, "Binary returned by $execute-"+w.target.Report, "a persisted Binary with an id, which the report job's binary references", "no id")
	}
	return nil
}

// findJob picks the entry whose binary references the Binary the report's start returned.
func (w *World) findJob(jobs []reportJob) *reportJob {
	if w.report.binaryID == "" {
		return nil
	}
	for i := range jobs {
		if referencesBinary(jobs[i].binary, w.report.binaryID) {
			return &jobs[i]
		}
	}
	return nil
}

var historySuffix = regexp.MustCompile(`/_history/[^/]+$`)

// referencesBinary: a relative or absolute reference, of any host (FUT's point at the reporting service's
// public host), to Binary/<id>, optionally versioned.
func referencesBinary(ref, id string) bool {
	ref = historySuffix.ReplaceAllString(ref, "")
	return ref == "Binary/"+id || strings.HasSuffix(ref, "/Binary/"+id)
}

func (w *World) waitsForReportJob(ctx context.Context, user string) error {
	if w.report.binaryID == "" {
		return fmt.Errorf("no report job to wait for: a step that starts a report must come first")
	}
	x, err := w.poller("report job of Binary/"+w.report.binaryID).Poll(ctx,
		func(ctx context.Context) (*Exchange, error) { return w.requestStatus(ctx, user) },
		func(x *Exchange) (Verdict, error) {
			switch {
			case x.Status == http.StatusTooManyRequests:
				return Throttle, nil
			case x.Status != http.StatusOK:
				return Done, violation("", "status of $get-report-job-status", statusPhrase(http.StatusOK), statusPhrase(x.Status))
			case w.report.job == nil:
				return Done, violation(reqListed, "report job status", "an entry whose binary references Binary/"+w.report.binaryID, "none among %d entries (or the Bundle could not be decoded)", len(w.report.jobs))
			case terminalStatus[w.report.job.status]:
				return Done, nil
			}
			return Pending, nil
		})
	if x != nil {
		w.last = x
	}
	return err
}

func (w *World) responseIsReportJobBundle(_ context.Context) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	_, err = checkReportJobBundle("", x)
	return err
}

// checkReportJobBundle holds a status answer to the JSON Schema in fixtures/ and decodes it through the
// golang-fhir-models structs.
func checkReportJobBundle(req string, x *Exchange) ([]reportJob, error) {
	if err := fixtures.Validate(fixtures.ReportJobBundleSchema, x.Body); err != nil {
		return nil, violation(req, "body of "+x.Method+" "+x.URL, "a Bundle of type collection of Parameters with one well-formed reportJob each, and no entry key when there are no jobs", "%v", err)
	}
	jobs, err := decodeReportJobs(x.Body)
	if err != nil {
		return nil, violation(req, "body of "+x.Method+" "+x.URL, "a FHIR R4 Bundle of Parameters", "%v", err)
	}
	return jobs, nil
}

// decodeReportJobs reads the status Bundle through the golang-fhir-models structs.
func decodeReportJobs(body []byte) ([]reportJob, error) {
	bundle, err := fhir.UnmarshalBundle(body)
	if err != nil {
		return nil, fmt.Errorf("decode Bundle: %w", err)
	}
	jobs := make([]reportJob, 0, len(bundle.Entry))
	for i, e := range bundle.Entry {
		params, err := fhir.UnmarshalParameters(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("entry %d: decode Parameters: %w", i, err)
		}
		if len(params.Parameter) != 1 || params.Parameter[0].Name != "reportJob" {
			return nil, fmt.Errorf("entry %d: expected exactly one parameter named reportJob, got %d parameters", i, len(params.Parameter))
		}
		job := reportJob{parameters: map[string]string{}}
		if e.FullUrl != nil {
			job.fullURL = *e.FullUrl
		}
		for _, part := range params.Parameter[0].Part {
			switch part.Name {
			case "reportClass":
				job.reportClass = deref(part.ValueString)
			case "userId":
				job.userID = deref(part.ValueString)
			case "status":
				job.status = deref(part.ValueString)
			case "binary":
				if part.ValueReference != nil {
					job.binary = deref(part.ValueReference.Reference)
				}
			case "created":
				job.created = deref(part.ValueDateTime)
			case "started":
				job.started = deref(part.ValueDateTime)
			case "ended":
				job.ended = deref(part.ValueDateTime)
			case "parameters":
				nested, err := fhir.UnmarshalParameters(part.Resource)
				if err != nil {
					return nil, fmt.Errorf("entry %d: decode the nested parameters: %w", i, err)
				}
				for _, p := range nested.Parameter {
					job.parameters[p.Name] = deref(p.ValueString)
				}
			}
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// newJob is the scenario's report job in the last status, or a violation saying it is not listed.
func (w *World) newJob() (*reportJob, error) {
	if w.report.binaryID == "" {
		return nil, fmt.Errorf("no report started: a step that starts a report must come first")
	}
	if w.report.job == nil {
		return nil, violation(reqListed, "report job status of user "+w.report.statusUser, "an entry whose binary references Binary/"+w.report.binaryID+", the Binary the report's start returned", "none among %d entries", len(w.report.jobs))
	}
	return w.report.job, nil
}

func (w *World) statusListsNewJob(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	switch {
	case job.userID == "":
		return violation("", "userId of the new report job", "the caller's user id", "none")
	case w.report.binaryUser != "" && job.userID != w.report.binaryUser:
		return violation("", "userId of the new report job", "the caller, "+w.report.binaryUser+", as the Binary's securityContext names them", "%q", job.userID)
	case job.reportClass == "":
		return violation("", "reportClass of the new report job", "a report class", "none")
	case job.status == "":
		return violation("", "status of the new report job", "a status", "none")
	}
	if _, _, err := parseFHIRDateTime(job.created); err != nil {
		return violation("", "created of the new report job", "a FHIR dateTime", "%q", job.created)
	}
	w.report.ownerUserID = job.userID
	return nil
}

func (w *World) newJobParametersHoldAnonymization(_ context.Context, value string) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	want := map[string]string{"anonymization": value}
	got := map[string]string{}
	if v, ok := job.parameters["anonymization"]; ok {
		got["anonymization"] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return violation("", "parameters of the new report job", "the parameters the report was started with", "a difference (-want +got):\n%s", diff)
	}
	return nil
}

func (w *World) everyJobCarriesCallersUserID(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	for i, j := range w.report.jobs {
		if j.userID != job.userID {
			return violation("", fmt.Sprintf("userId of report job %d in user %s's status", i, w.report.statusUser), "the caller's one userId "+job.userID, "%q", j.userID)
		}
	}
	return nil
}

func (w *World) everyJobIsWellFormed(_ context.Context) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	jobs, err := checkReportJobBundle(reqStructure, x)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return violation(reqListed, "report job status", "at least the report job just started", "no entry")
	}
	for i, j := range jobs {
		if err := checkJobTimes(i, j); err != nil {
			return err
		}
	}
	for i, j := range jobs {
		if !isAbsoluteOrURN(j.fullURL) {
			if err := w.warn(reqFullURL, fmt.Sprintf("entry %d fullUrl", i), "an absolute URL or urn:uuid:", fmt.Sprintf("%q", j.fullURL)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkJobTimes: created, started and ended are FHIR dateTimes, in that order where present and comparable.
func checkJobTimes(i int, j reportJob) error {
	names := []string{"created", "started", "ended"}
	values := []string{j.created, j.started, j.ended}
	prevName, prev, prevHasTime := "", "", false
	for k, v := range values {
		if v == "" {
			continue
		}
		t, hasTime, err := parseFHIRDateTime(v)
		if err != nil {
			return violation(reqStructure, fmt.Sprintf("report job %d %s", i, names[k]), "a FHIR dateTime", "%q", v)
		}
		if prev != "" && hasTime && prevHasTime {
			if p, _, _ := parseFHIRDateTime(prev); t.Before(p) {
				return violation(reqStructure, fmt.Sprintf("report job %d times", i), fmt.Sprintf("%s ≤ %s", prevName, names[k]), "%s %s after %s %s", prevName, prev, names[k], v)
			}
		}
		prevName, prev, prevHasTime = names[k], v, hasTime
	}
	return nil
}

func isAbsoluteOrURN(s string) bool {
	return strings.HasPrefix(s, "urn:uuid:") || strings.HasPrefix(s, "urn:oid:") || strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

func (w *World) jobStatusIsTerminal(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	if !terminalStatus[job.status] {
		return violation("", "status of the report job", "DONE or FAILED", "%q", job.status)
	}
	return nil
}

func (w *World) doneReportBinaryIsGenerated(ctx context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	if job.status != "DONE" {
		fmt.Fprintf(w.target.Log, "  report job of Binary/%s ended %s: its Binary is not checked\n", w.report.binaryID, job.status)
		return nil
	}
	// Read at the reporting service by the id the report's start returned: the job's reference may name the
	// service's internal host (FUT's example points at reporting.local...), which a harness need not reach.
	target := w.reportEndpoint("Binary/" + w.report.binaryID)
	x, err := w.request(ctx, w.report.owner, http.MethodGet, target, http.Header{"Accept": {"application/fhir+json"}}, nil)
	if err != nil {
		return err
	}
	w.last = x
	if x.Status != http.StatusOK {
		return violation("", "read of the DONE report's Binary", statusPhrase(http.StatusOK), statusPhrase(x.Status))
	}
	b, err := decodeBinary("", x)
	if err != nil {
		return err
	}
	if len(b.Data) == 0 || string(b.Data) == placeholder {
		return violation("", "data of the DONE report's Binary", "the generated report", "%q", string(b.Data))
	}
	return nil
}

func (w *World) statusDoesNotListJobOf(_ context.Context, owner string) error {
	if w.report.owner != owner || w.report.binaryID == "" {
		return fmt.Errorf("no report started by user %s in this scenario", owner)
	}
	if job := w.report.job; job != nil {
		return violation("", "report job status of user "+w.report.statusUser, "no job of user "+owner, "the job of Binary/%s (userId %q)", w.report.binaryID, job.userID)
	}
	return nil
}

func (w *World) everyJobCarriesOneUserIDOtherThan(ctx context.Context, owner string) error {
	jobs, caller := w.report.jobs, w.report.statusUser
	ownerID := w.report.binaryUser
	if ownerID == "" { // learn the owner's userId from the owner's own status
		saved := w.report
		if _, err := w.requestStatus(ctx, owner); err != nil {
			return err
		}
		if w.report.job != nil {
			ownerID = w.report.job.userID
		}
		w.report = saved
	}
	for i, j := range jobs {
		if j.userID != jobs[0].userID {
			return violation("", fmt.Sprintf("userId of report job %d in user %s's status", i, caller), "the caller's one userId "+jobs[0].userID, "%q", j.userID)
		}
		if ownerID != "" && j.userID == ownerID {
			return violation("", fmt.Sprintf("userId of report job %d in user %s's status", i, caller), "a userId other than user "+owner+"'s", "%q", j.userID)
		}
	}
	return nil
}
