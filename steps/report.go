package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cucumber/godog"
	"github.com/google/go-cmp/cmp"

	"github.com/ehealth-dk/fut-conformance/check"
)

func registerReportSteps(sc *godog.ScenarioContext) {
	sc.Step(`^user (A|B) requests the report job status$`, on1((*World).requestsReportJobStatus))
	sc.Step(`^user (A|B) starts a report with \$(execute|schedule) and anonymization "([^"]*)"$`, on3((*World).startsReport))
	sc.Step(`^user (A|B) has started a report$`, on1((*World).hasStartedReport))
	sc.Step(`^user (A|B) waits until the report job has finished$`, on1((*World).waitsForReportJob))
	sc.Step(`^user (A|B) has requested the report job status$`, on1((*World).requestsReportJobStatus))
	sc.Step(`^user (A|B) reads the report's Binary if the job is DONE$`, on1((*World).readsDoneReportBinary))
	sc.Step(`^the response body is a report job status Bundle$`, onResponse0((*World).responseIsReportJobBundle))
	sc.Step(`^the status lists the new report job for its caller with a reportClass, a status and a created time$`, on0((*World).statusListsNewJob))
	sc.Step(`^the new report job's parameters hold anonymization "([^"]*)"$`, on1((*World).newJobParametersHoldAnonymization))
	sc.Step(`^every report job in the status carries the caller's userId$`, on0((*World).everyJobCarriesCallersUserID))
	sc.Step(`^every report job in the status is well-formed$`, onResponse0((*World).everyJobIsWellFormed))
	sc.Step(`^the report job's status is DONE or FAILED$`, on0((*World).jobStatusIsTerminal))
	sc.Step(`^the report's Binary is no longer the placeholder if the job is DONE$`, on0((*World).doneReportBinaryIsGenerated))
	sc.Step(`^the status does not list the report job of user (A|B)$`, on1((*World).statusDoesNotListJobOf))
	sc.Step(`^every report job in the status carries one userId other than user (A|B)'s$`, on1((*World).everyJobCarriesOneUserIDOtherThan))
	sc.Step(`^the new report job's userId is not user (A|B)'s$`, on1((*World).newJobUserIDIsNotOf))
}

// reportState is the report job of the scenario, found by the Binary its start returned.
type reportState struct {
	owner       string
	variant     string // execute or schedule: the operation that started the report
	binaryID    string
	binaryUser  string          // Binary.securityContext of the placeholder, when the server sets it
	ownerUserID string          // the userId the owner's own status gave the job
	binaryRead  *check.Exchange // the read of a DONE job's Binary
	started     time.Time       // when the report's start was answered: its wait counts MAX_WAIT from there
	sent        map[string]string
	statusUser  string            // who asked for the last status
	jobs        []check.ReportJob // the last status, decoded
	decodeErr   error             // why the last status (a 200) could not be read as report jobs
	next        string            // the last status's next link, which the harness does not follow
	job         *check.ReportJob  // the new job in the last status
}

const (
	reqBundle            = "RJS-BUNDLE"
	reqListed            = "RJS-LISTED"
	reqStructure         = "RJS-STRUCTURE"
	reqFullURL           = "RJS-FULLURL"
	placeholder          = "*NOT GENERATED YET*"
	defaultAnonymization = "ANONYMIZED"
)

func (w *World) requestsReportJobStatus(ctx context.Context, user string) error {
	x, err := w.requestStatus(ctx, user)
	if err != nil {
		return err
	}
	w.last = x
	return w.checkObservedJobs()
}

// checkObservedJobs holds every report job of the last status to RJS-STRUCTURE's per-job rules, whatever its
// state, and to list each job once: a status is checked wherever the run sees one, not only in the structure scenario, so that a
// finished job (which that scenario may never see) is checked too. The Bundle's own shape is left to the
// scenario's Then steps, which name the requirement it breaks.
func (w *World) checkObservedJobs() error {
	for i, j := range w.report.jobs {
		if err := check.CheckReportJob(reqStructure, i, j); err != nil {
			return err
		}
	}
	return check.CheckDistinctJobs(reqStructure, w.report.jobs)
}

func (w *World) requestStatus(ctx context.Context, user string) (*check.Exchange, error) {
	x, err := w.request(ctx, user, http.MethodPost, w.reportEndpoint("$get-report-job-status"), fhirJSONHeader(), []byte(`{"resourceType":"Parameters"}`))
	if err != nil {
		return nil, err
	}
	w.report.statusUser, w.report.jobs, w.report.job, w.report.next, w.report.decodeErr = user, nil, nil, "", nil
	if x.Status == http.StatusOK {
		w.report.next = check.NextLink(x.Body)
		jobs, err := check.DecodeReportJobs(x.Body)
		if err != nil {
			w.report.decodeErr = check.Violationf(reqStructure, "body of "+x.Method+" "+x.URL+" (user "+user+")", "a FHIR R4 Bundle of Parameters, each with one reportJob parameter", "%v", err)
			return x, nil
		}
		w.report.jobs = jobs
		w.report.job = w.findJob(jobs)
		if w.report.job != nil && user == w.report.owner {
			w.report.ownerUserID = w.report.job.UserID
			w.learnUserID(user, w.report.job.UserID)
		}
	}
	return x, nil
}

func (w *World) startsReport(ctx context.Context, user, variant, anonymization string) error {
	if err := w.sendReportStart(ctx, user, variant, anonymization); err != nil {
		return err
	}
	return w.refusedByDeployment(w.last, variant)
}

// sendReportStart starts a report and reads its answer, without judging it: the job pool starts reports
// ahead with it, and the scenario that adopts one judges the answer in its own world (hasStartedReport), where
// a skip is the scenario's.
func (w *World) sendReportStart(ctx context.Context, user, variant, anonymization string) error {
	w.report = reportState{owner: user, variant: variant, sent: map[string]string{"anonymization": anonymization}}
	body, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []map[string]string{{"name": "anonymization", "valueString": anonymization}}})
	x, err := w.request(ctx, user, http.MethodPost, w.reportEndpoint("$"+variant+"-"+w.target.Report), fhirJSONHeader(), body)
	if err != nil {
		return err
	}
	w.readReportStart(x)
	return nil
}

// reportNotAllowed is FUT's error, code and text, for a report the deployment does not let the caller start
// with a variant (FUT IG error-messages.md, "ehealth-reporting").
var reportNotAllowed = map[string]struct{ code, text string }{
	"execute":  {"REPORTING_EXECUTE_NOT_ALLOWED", "Asynchronous generation of the report is not allowed"},
	"schedule": {"REPORTING_SCHEDULE_NOT_ALLOWED", "Scheduled generation of the report is not allowed"},
}

// refusedByDeployment skips the scenario when the report's start was refused with FUT's own error for a
// variant the deployment does not allow for this report (REPORTING_EXECUTE_NOT_ALLOWED for $execute-,
// REPORTING_SCHEDULE_NOT_ALLOWED for $schedule-), in an OperationOutcome: FUT documents that refusal, so it
// is no deviation, and no report job exists to check. Any other refusal, the other variant's code included,
// is left to the scenario's steps to judge. A start still throttled (429) at MAX_WAIT started nothing either,
// and is no deviation (World.throttledAnswer): skipped alike.
func (w *World) refusedByDeployment(x *check.Exchange, variant string) error {
	na, ok := reportNotAllowed[variant]
	if x == nil || !ok || x.Status < 400 {
		return nil
	}
	if err := w.throttledAnswer(x); err != nil {
		return err
	}
	if _, isOutcome := check.ParseOutcome(x.Body); !isOutcome {
		return nil
	}
	if body := string(x.Body); !strings.Contains(body, na.code) && !strings.Contains(body, na.text) {
		return nil
	}
	return w.skip(fmt.Sprintf("$%s-%s answered %s with FUT's %s (%q): the deployment does not let this user start this report that way, which FUT documents, so no report job was started and none is checked; set REPORT to a report the server lets the user %s",
		variant, w.target.Report, check.StatusPhrase(x.Status), na.code, na.text, variant))
}

func (w *World) readReportStart(x *check.Exchange) {
	w.last = x
	w.report.started = x.Received
	if x.Status == http.StatusOK {
		if b, err := check.DecodeBinary("", x); err == nil {
			w.report.binaryID, w.report.binaryUser = b.ID, b.SecurityUser()
			w.learnUserID(w.report.owner, w.report.binaryUser)
		}
	}
}

// startPooledReport adopts a report the pool started ahead for a scenario that waits on it; false when none
// was started (the scenario then starts its own).
func (w *World) startPooledReport(ctx context.Context, user string) (bool, error) {
	if user != w.needs.waitedReports {
		return false, nil
	}
	if _, err := w.token(user); err != nil {
		return true, err
	}
	r := w.target.pool.startedReport(user)
	if r == nil {
		return false, nil
	}
	if err := await(ctx, r.ready); err != nil {
		return true, err
	}
	w.report = reportState{owner: user, variant: "execute", sent: map[string]string{"anonymization": defaultAnonymization}}
	if r.x != nil {
		w.exchanges = append(w.exchanges, r.x)
	}
	if r.err != nil {
		return true, detach(r.err)
	}
	w.readReportStart(r.x)
	return true, nil
}

func (w *World) hasStartedReport(ctx context.Context, user string) error {
	if pooled, err := w.startPooledReport(ctx, user); err != nil {
		return err
	} else if !pooled {
		if err := w.sendReportStart(ctx, user, "execute", defaultAnonymization); err != nil {
			return err
		}
	}
	if err := w.refusedByDeployment(w.last, "execute"); err != nil {
		return err
	}
	if w.last.Status != http.StatusOK {
		return check.Violationf(reqListed, "status of $execute-"+w.target.Report, check.StatusPhrase(http.StatusOK)+" and a Binary", check.StatusPhrase(w.last.Status))
	}
	if _, err := check.DecodeBinary(reqListed, w.last); err != nil {
		return err
	}
	if w.report.binaryID == "" {
		return check.Violationf(reqListed, "Binary returned by $execute-"+w.target.Report, "a persisted Binary with an id, which the report job's binary references", "no id")
	}
	return nil
}

// findJob picks the entry whose binary references the Binary the report's start returned.
func (w *World) findJob(jobs []check.ReportJob) *check.ReportJob {
	if w.report.binaryID == "" {
		return nil
	}
	for i := range jobs {
		if check.ReferencesBinary(jobs[i].Binary, w.report.binaryID) {
			return &jobs[i]
		}
	}
	return nil
}

func (w *World) waitsForReportJob(ctx context.Context, user string) error {
	if w.report.binaryID == "" {
		return fmt.Errorf("no report job to wait for: a step that starts a report must come first")
	}
	p := w.poller("report job of Binary/" + w.report.binaryID)
	p.Since = w.report.started // a report the pool started ahead has waited since then
	sent, omitted := len(w.exchanges), w.omitted
	x, err := p.Poll(ctx,
		func(ctx context.Context) (*check.Exchange, error) { return w.requestStatus(ctx, user) },
		func(x *check.Exchange) (check.Verdict, error) {
			switch {
			case x.Status == http.StatusTooManyRequests, temporaryFailure(x):
				return check.Throttle, nil
			case x.Status != http.StatusOK:
				return check.Done, check.Violationf(reqBundle, "status of $get-report-job-status", check.StatusPhrase(http.StatusOK), check.StatusPhrase(x.Status))
			case w.report.decodeErr != nil:
				// Not a job missing from the status: a status that cannot be read, and why.
				return check.Done, w.report.decodeErr
			case w.report.job == nil:
				return check.Done, check.Violationf(reqListed, "report job status", "an entry whose binary references Binary/"+w.report.binaryID, "none among %d entries%s", len(w.report.jobs), w.pagedNote())
			}
			if err := w.unlessWarned(w.checkObservedJobs()); err != nil { // a warning: the wait goes on, as for an export
				return check.Done, err
			}
			if w.report.job.Stopped() {
				return check.Done, nil
			}
			return check.Pending, nil
		})
	if x != nil {
		w.last = x
	}
	if errors.Is(err, check.ErrGaveUp) && x != nil && x.Status == http.StatusTooManyRequests {
		return reportStatusThrottled(x, w.exchanges[sent:], w.omitted-omitted, w.target.MaxWait)
	}
	return err
}

// reportStatusThrottled is the skip of a wait for a report job whose $get-report-job-status the server still
// throttled (429) when the next request would pass MAX_WAIT. FUT's OperationDefinition says nothing of
// throttling; RFC 6585 §4 makes a 429 "too many requests in a given amount of time", to be waited out after its
// Retry-After, which the harness did: no deviation, and whether the job would have ended is unknown (a job
// still listed unfinished at MAX_WAIT, the last answer a 200, fails RJS-TERMINAL).
func reportStatusThrottled(x *check.Exchange, attempts []*check.Exchange, dropped int, maxWait time.Duration) error {
	return throttledSkip("$get-report-job-status", "a 429 asks the client to wait (RFC 6585 §4)", "nothing that needs the report job's end", throttleFix, x, attempts, dropped, maxWait)
}

func (w *World) responseIsReportJobBundle(x *check.Exchange) error {
	_, err := check.CheckReportJobBundle("", x)
	return err
}

// newJob is the scenario's report job in the last status, or a violation saying it is not listed.
func (w *World) newJob() (*check.ReportJob, error) {
	switch {
	case w.report.owner == "":
		return nil, fmt.Errorf("no report started: a step that starts a report must come first")
	case w.report.binaryID == "":
		// The start answered no Binary with an id (the steps after it judge its status and body): there is
		// no reference to find the job by, which is the report operation's deviation, not the harness's.
		return nil, check.Violationf(reqListed, "Binary returned by $"+w.report.variant+"-"+w.target.Report, "a persisted Binary with an id, which the report job's binary references (FUT's examples: \"id\": \"21\")", "no Binary with an id")
	}
	if w.report.decodeErr != nil {
		return nil, w.report.decodeErr // a status that cannot be read, not a job missing from it
	}
	if w.report.job == nil {
		return nil, check.Violationf(reqListed, "report job status of user "+w.report.statusUser, "an entry whose binary references Binary/"+w.report.binaryID+", the Binary the report's start returned", "none among %d entries%s", len(w.report.jobs), w.pagedNote())
	}
	return w.report.job, nil
}

// pagedNote says, for a job missing from a status that has a next link, that the link was not followed and
// why: the OperationDefinition defines no paging, so the status lists every job of the caller's.
func (w *World) pagedNote() string {
	if w.report.next == "" {
		return ""
	}
	return fmt.Sprintf("; the Bundle has a next link (%s), not followed: the OperationDefinition defines no paging (its one output is 0..1 Bundle of type collection, \"a Bundle containing Parameters resources for each scheduled report\"), so one status lists every job", w.report.next)
}

func (w *World) statusListsNewJob(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	switch {
	case job.UserID == "":
		return check.Violationf("", "userId of the new report job", "the caller's user id", "none")
	case w.report.binaryUser != "" && job.UserID != w.report.binaryUser:
		return check.Violationf("", "userId of the new report job", "the caller, "+w.report.binaryUser+", as the Binary's securityContext names them", "%q", job.UserID)
	case job.ReportClass == "":
		return check.Violationf("", "reportClass of the new report job", "a report class", "none")
	case job.Status == "":
		return check.Violationf("", "status of the new report job", "a status", "none")
	}
	if _, _, err := check.ParseFHIRDateTime(job.Created); err != nil {
		return check.Violationf("", "created of the new report job", "a FHIR dateTime", "%q", job.Created)
	}
	if w.report.binaryUser == "" { // the caller's id is known only from there: a userId of anyone would pass
		w.notChecked("", fmt.Sprintf("userId %q of the new report job not compared with the caller's: the placeholder Binary the report's start returned names no caller (securityContext.identifier.value, which FUT's examples set to the caller's user_id)", job.UserID))
	}
	w.report.ownerUserID = job.UserID
	return nil
}

func (w *World) newJobParametersHoldAnonymization(_ context.Context, value string) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	want := map[string]string{"anonymization": value}
	got := map[string]string{}
	if v, ok := job.Parameters["anonymization"]; ok {
		got["anonymization"] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		return check.Violationf("", "parameters of the new report job", "the parameters the report was started with", "a difference (-want +got):\n%s", diff)
	}
	return nil
}

func (w *World) everyJobCarriesCallersUserID(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	for i, j := range w.report.jobs {
		if j.UserID != job.UserID {
			return check.Violationf("", fmt.Sprintf("userId of report job %d in user %s's status", i, w.report.statusUser), "the caller's one userId "+job.UserID, "%q", j.UserID)
		}
	}
	return nil
}

func (w *World) everyJobIsWellFormed(x *check.Exchange) error {
	jobs, err := check.CheckReportJobBundle(reqStructure, x)
	if err != nil {
		return err
	}
	if len(jobs) == 0 {
		return check.Violationf(reqListed, "report job status", "at least the report job just started", "no entry")
	}
	for i, j := range jobs {
		if err := check.CheckReportJob(reqStructure, i, j); err != nil {
			return err
		}
	}
	if err := check.CheckDistinctJobs(reqStructure, jobs); err != nil {
		return err
	}
	for i, j := range jobs {
		// fullUrl is 0..1: FHIR lets results of operations carry resources that are not identified
		if j.FullURL != "" && !check.IsAbsoluteOrURN(j.FullURL) {
			if err := w.warn(reqFullURL, fmt.Sprintf("entry %d fullUrl", i), "an absolute URL or urn:uuid:", fmt.Sprintf("%q", j.FullURL)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (w *World) jobStatusIsTerminal(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	if !job.Terminal() {
		if job.Ended != "" {
			// The job stopped, with a status no source names: the OperationDefinition enumerates none (an open
			// string; DONE and FAILED are what FUT's examples show), so this is no deviation the harness can
			// prove, nor a success it can vouch for: not checked, which fails the release gate as partly checked.
			w.notChecked("", fmt.Sprintf("report job of Binary/%s ended (%s) with status %q, which no source names (FUT's examples show DONE and FAILED): whether it finished, and its Binary, not checked", w.report.binaryID, job.Ended, job.Status))
			return nil
		}
		return check.Violationf("", "status of the report job", "DONE or FAILED", "%q", job.Status)
	}
	return nil
}

// readsDoneReportBinary reads a DONE job's Binary at the reporting service by the id the report's start
// returned: the job's reference may name the service's internal host (FUT's example points at
// reporting.local...), which a harness need not reach. A job that did not end DONE has no Binary to read.
func (w *World) readsDoneReportBinary(ctx context.Context, user string) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	w.report.binaryRead = nil
	switch job.Status {
	case "DONE":
	case "FAILED":
		// A failed job is conformant, but then the rule's other half, a DONE report's Binary holding the
		// report, was never seen: passing it would vouch for a report a server may never produce (one whose
		// every job fails), so it is not checked, which the release gate counts as partly checked.
		w.notChecked("", fmt.Sprintf("report job of Binary/%s ended FAILED: a DONE report's Binary (read, and no longer the placeholder) not checked", w.report.binaryID))
		return nil
	default: // a status no source names, reported by the status step
		return nil
	}
	x, err := w.request(ctx, user, http.MethodGet, w.reportEndpoint("Binary/"+w.report.binaryID), http.Header{"Accept": {"application/fhir+json"}}, nil)
	if err != nil {
		return err
	}
	w.last, w.report.binaryRead = x, x
	return nil
}

func (w *World) doneReportBinaryIsGenerated(_ context.Context) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	if job.Status != "DONE" {
		return nil
	}
	x := w.report.binaryRead
	if x == nil {
		return fmt.Errorf("the report job is DONE but its Binary was not read: a step that reads it must come first")
	}
	if x.Status != http.StatusOK {
		return check.Violationf("", "read of the DONE report's Binary", check.StatusPhrase(http.StatusOK), check.StatusPhrase(x.Status))
	}
	b, err := check.DecodeBinary("", x)
	if err != nil {
		return err
	}
	if len(b.Data) == 0 || string(b.Data) == placeholder {
		return check.Violationf("", "data of the DONE report's Binary", "the generated report", "%q", string(b.Data))
	}
	skipped, err := check.CheckReportArchive(b.Data)
	if err != nil {
		shown := b.Data[:min(len(b.Data), 64)]
		return check.Violationf("", "data of the DONE report's Binary", "the generated report: a zip archive of JSON files (FUT's report OperationDefinitions: \"a Base64 encoded .zip file containing JSON files\")", "%d bytes, %v, starting %q", len(b.Data), err, shown)
	}
	if skipped != "" {
		// Past the harness's bounds on unpacking (check.ReportArchiveLimits): no source bounds a report, so
		// this is no deviation, only a part of the report the harness did not judge.
		w.notChecked("", fmt.Sprintf("DONE report of Binary/%s: %s", w.report.binaryID, skipped))
	}
	return nil
}

func (w *World) statusDoesNotListJobOf(_ context.Context, owner string) error {
	if w.report.owner != owner || w.report.binaryID == "" {
		return fmt.Errorf("no report started by user %s in this scenario", owner)
	}
	if job := w.report.job; job != nil {
		return check.Violationf("", "report job status of user "+w.report.statusUser, "no job of user "+owner, "the job of Binary/%s (userId %q)", w.report.binaryID, job.UserID)
	}
	if w.report.next != "" {
		// The status names more jobs beyond this Bundle, which the harness does not fetch: user A's job may be
		// among them, so its absence here proves nothing about them.
		w.notChecked("", fmt.Sprintf("user %s's status has a next link (%s), not followed (the OperationDefinition defines no paging): that user %s's job is not among the jobs beyond it is not checked", w.report.statusUser, w.report.next, owner))
	}
	return nil
}

// learnUserID keeps a user's userId for the scenario's later steps, the first one learnt: the placeholder
// Binary's securityContext (read first) is the caller's as the server's security layer names it.
func (w *World) learnUserID(user, id string) {
	if user == "" || id == "" || w.userIDs[user] != "" {
		return
	}
	if w.userIDs == nil {
		w.userIDs = map[string]string{}
	}
	w.userIDs[user] = id
}

// newJobUserIDIsNotOf holds the job the scenario's last report started (user B's) to a userId other than the
// other user's (user A's), learnt earlier in the scenario: a server that reports every job as one user's
// lists B's job with A's userId, which the Binary's securityContext, when the server sets none, cannot catch.
func (w *World) newJobUserIDIsNotOf(_ context.Context, other string) error {
	job, err := w.newJob()
	if err != nil {
		return err
	}
	if other == w.report.owner {
		return fmt.Errorf("the new report job is user %s's own: a step that starts another user's report must come last", other)
	}
	otherID := w.userIDs[other]
	if otherID == "" {
		w.notChecked("", fmt.Sprintf("userId %q of user %s's report job not compared with user %s's: neither user %s's placeholder Binary (securityContext) nor user %s's own status named user %s's userId", job.UserID, w.report.owner, other, other, other, other))
		return nil
	}
	if job.UserID == otherID {
		return check.Violationf("", fmt.Sprintf("userId of user %s's report job (Binary/%s) in user %s's status", w.report.owner, w.report.binaryID, w.report.statusUser), "user "+w.report.owner+"'s own userId, not user "+other+"'s", "%q, user %s's", job.UserID, other)
	}
	return nil
}

// everyJobCarriesOneUserIDOtherThan knows the owner's userId from the Binary's securityContext, else from
// the owner's own status requested by an earlier step.
func (w *World) everyJobCarriesOneUserIDOtherThan(_ context.Context, owner string) error {
	if w.report.owner != owner {
		return fmt.Errorf("no report started by user %s in this scenario", owner)
	}
	jobs, caller := w.report.jobs, w.report.statusUser
	ownerID := w.report.binaryUser
	if ownerID == "" {
		ownerID = w.report.ownerUserID
	}
	if ownerID == "" && len(jobs) > 0 {
		// Neither the Binary nor the owner's own status named user A: a userId of A's would pass unseen.
		w.notChecked("", fmt.Sprintf("userIds of user %s's %d report jobs not compared with user %s's: neither the placeholder Binary (securityContext) nor user %s's own status named user %s's userId", caller, len(jobs), owner, owner, owner))
	}
	for i, j := range jobs {
		if j.UserID != jobs[0].UserID {
			return check.Violationf("", fmt.Sprintf("userId of report job %d in user %s's status", i, caller), "the caller's one userId "+jobs[0].UserID, "%q", j.UserID)
		}
		if ownerID != "" && j.UserID == ownerID {
			return check.Violationf("", fmt.Sprintf("userId of report job %d in user %s's status", i, caller), "a userId other than user "+owner+"'s", "%q", j.UserID)
		}
	}
	return nil
}
