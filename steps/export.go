package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cucumber/godog"
	"github.com/google/go-cmp/cmp"

	"github.com/ehealth-dk/fut-conformance/check"
)

func registerExportSteps(sc *godog.ScenarioContext) {
	sc.Step(`^user (A|B) kicks off a system export by (GET|POST)$`, on2((*World).kicksOffExport))
	sc.Step(`^user (A|B) kicks off a system export by GET with _outputFormat "([^"]*)"$`, on2((*World).kicksOffExportWithFormat))
	sc.Step(`^user (A|B) kicks off a system export by GET with _type repeated$`, on1((*World).kicksOffExportWithTypeRepeated))
	sc.Step(`^user (A|B) has kicked off a system export$`, on1((*World).hasKickedOffExport))
	sc.Step(`^user (A|B) has kicked off a system export that is still running$`, on1((*World).hasKickedOffRunningExport))
	sc.Step(`^user (A|B) has a completed system export$`, on1((*World).hasCompletedExport))
	sc.Step(`^user (A|B) has cancelled a running system export$`, on1((*World).hasCancelledRunningExport))
	sc.Step(`^user (A|B) polls the export status$`, on1((*World).pollsExportStatus))
	sc.Step(`^user (A|B) polls the export status while it runs$`, on1((*World).pollsExportStatusWhileItRuns))
	sc.Step(`^user (A|B) polls the export status until it completes$`, on1((*World).pollsExportStatusUntilComplete))
	sc.Step(`^user (A|B) polls the export status of an unknown job id$`, on1((*World).pollsUnknownJob))
	sc.Step(`^user (A|B) polls the export status without a job id$`, on1((*World).pollsWithoutJobID))
	sc.Step(`^user (A|B) cancels the export$`, on1((*World).cancelsExportStep))
	sc.Step(`^user (A|B) downloads every output file of the manifest$`, on1((*World).downloadsOutputFiles))
	sc.Step(`^user (A|B) downloads every output file of the manifest without an Accept header$`, on1((*World).downloadsOutputFilesWithoutAccept))
	sc.Step(`^user (A|B) downloads every output file of the manifest with Accept "([^"]*)"$`, on2((*World).downloadsOutputFilesWithAccept))
	sc.Step(`^every output file of the manifest is requested without a token$`, on0((*World).requestsOutputFilesWithoutToken))
	sc.Step(`^user (A|B) requests every output file of the manifest with their own token$`, on1((*World).requestsOutputFilesAsOtherUser))
	sc.Step(`^the export status is requested without a token, then by user (A|B) with the token$`, on1((*World).requestsStatusWithoutToken))
	sc.Step(`^user (A|B) polls the export status again some seconds later$`, on1((*World).pollsAgainLater))
	sc.Step(`^the response carries no manifest$`, onResponse0((*World).responseCarriesNoManifest))
	sc.Step(`^the response body is a valid export manifest$`, onResponse0((*World).responseIsValidManifest))
	sc.Step(`^the complete status carries an Expires header in the future$`, onResponse0((*World).checkExpires))
	sc.Step(`^every output file holds only FHIR resources of its manifest type$`, on0((*World).outputFilesHoldTheirType))
	sc.Step(`^no output line decoded as FHIR was modified after the manifest's transactionTime$`, on0((*World).outputLinesNotModifiedAfter))
	sc.Step(`^every output file is NDJSON of its manifest type$`, on0((*World).outputFilesAreNDJSON))
	sc.Step(`^each output file answers as the manifest's requiresAccessToken says$`, on0((*World).outputFilesAnswerAsTokenRequires))
	sc.Step(`^each output file is refused to user (A|B)$`, on1((*World).outputFilesRefusedTo))
	sc.Step(`^the request without a token is refused, and user (A|B)'s is answered$`, on1((*World).statusWithoutTokenRefused))
	sc.Step(`^the response is the manifest the export completed with$`, onResponse0((*World).responseIsSameManifest))
	sc.Step(`^the export never completes for user (A|B)$`, on1((*World).exportNeverCompletes))
	sc.Step(`^the export is not cancelled for user (A|B)$`, on1((*World).exportIsNotCancelled))
	sc.Step(`^a second DELETE of the cancelled export by user (A|B) answers the profile's "delete-cancelled" answer$`, on1((*World).deletesCancelledExportAgain))
}

// deletesCancelledExportAgain sends the cancelled export a second DELETE and judges its answer, in a profile
// that checks one (features/PROFILES.md, row delete-cancelled). BDA2 "Bulk Data Delete Request": "Following
// the delete request, when subsequent requests are made to the polling location, the server SHALL return a
// 404 Not Found error and an associated FHIR OperationOutcome in JSON format": a DELETE is such a request
// (SMART's Bulk Data Tester sends it, status.test.ts "Exports can be canceled"). FUT documents no second
// DELETE and HAPI answers one 202 until its maintenance pass has marked the job CANCELLED (the digest's C1):
// in fut and hapi-8.0 nothing is sent.
func (w *World) deletesCancelledExportAgain(ctx context.Context, user string) error {
	if w.profiles.Behaviour["delete-cancelled"].Answers[w.target.Profile] == nil {
		return nil // nothing sent, nothing to say: the console of a passing run stays a line per scenario
	}
	target, err := w.pollURL()
	if err != nil {
		return err
	}
	// Accept as the status requests' (BDA2 "Bulk Data Status Request": application/json) and as BDT's cancel
	// (got's default for a JSON answer): an OperationOutcome sent as application/json answers that request
	// (the tolerance operation-outcome-as-requested-json), as SMART's reference server sends its 404.
	x, err := w.request(ctx, user, http.MethodDelete, target, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return err
	}
	w.last = x
	return w.checkProfileAnswer("delete-cancelled", x)
}

// exportState is the export of the scenario: the polling URL the kick-off returned and what came of it.
type exportState struct {
	owner     string
	pollURL   string
	kickoff   *check.Exchange // the kick-off's answer that gave pollURL, for the manifest to answer (request, transactionTime)
	pooled    *pooledExport   // the pool's job this scenario adopted, or nil: a job of its own
	release   func()          // frees the job's slot (MAX_JOBS); nil once freed or for a pooled job
	settled   bool            // the owner saw it complete or cancelled it: nothing to clean up
	running   bool            // the owner's last poll answered 202: the job was running
	manifest  *check.Manifest
	downloads []download // one per manifest output item, in the manifest's order
	// unchecked says why files of the manifest were left unchecked by the last downloads (a bound of the run,
	// an untrusted origin); each reason is a not-checked finding too.
	unchecked []string
	// filesAs is who requested the downloads: a user, or "" for requests without a token.
	filesAs string
	// deleteStatus is the status of the owner's DELETE, 0 before one.
	deleteStatus int
	// tokenless is the answer to the status request sent without a token (EXP-POLL-TOKEN), and ownPoll the
	// owner's to the same request with the token, sent right after it; nil until then.
	tokenless, ownPoll *check.Exchange
	// pooledAnswer is this scenario's copy of the pooled job's final answer once adoptPolls has judged it:
	// the answer whose manifest the job checks once for every scenario (pooledExport.checkedManifest).
	pooledAnswer *check.Exchange
	// unread is the deviation for which the scenario read no manifest, warned of instead of failed since the
	// profile ranks its requirement below failing here (World.manifestNotRead); nil otherwise.
	unread error
}

// Requirement IDs that steps name explicitly, when a check belongs to another requirement than the scenario's.
const (
	reqKickoff        = "EXP-KICKOFF"
	reqKickoffPost    = "EXP-KICKOFF-POST"
	reqPoll202        = "EXP-POLL-202"
	reqProgressLength = "EXP-PROGRESS-LENGTH"
	reqRetryAfter     = "EXP-RETRY-AFTER"
	reqRetryAfterSent = "EXP-RETRY-AFTER-SENT"
	reqPoll200        = "EXP-POLL-200"
	reqPollError      = "EXP-POLL-ERROR"
	reqExpires        = "EXP-EXPIRES"
	reqModifiedAfter  = "EXP-MODIFIED-AFTER"
	reqCrossUser      = "EXP-CROSS-USER"
)

// KickoffGET is the scenarios' kick-off by GET on base (its URL and the headers beyond Accept and
// Authorization), at the run's kick-off endpoint ("" is the system-level $export: Target.ExportKickoff), for
// a request that must be one of theirs: a distinct request that no server reuses.
func KickoffGET(base, kickoff, types string) (string, http.Header) {
	header := http.Header{}
	header.Set("Prefer", "respond-async")
	header.Set("Cache-Control", "no-cache")
	return strings.TrimRight(base, "/") + "/" + Target{ExportKickoff: kickoff}.kickoffPath() + "?" + kickoffQuery(kickoffSince(), check.NDJSON, types), header
}

func kickoffQuery(since, format string, types ...string) string {
	q := url.Values{"_outputFormat": {format}, "_since": {since}}
	for _, t := range types {
		if t != "" {
			q.Add("_type", t)
		}
	}
	return q.Encode()
}

func (w *World) kicksOffExport(ctx context.Context, user, method string) error {
	return w.kicksOffExportAs(ctx, user, method, check.NDJSON)
}

// kicksOffExportWithFormat is EXP-OUTPUT-FORMAT's kick-off: by GET, its _outputFormat one of BDA2's
// abbreviations of the NDJSON type, which the server "SHALL accept" as it does the full type ("Query
// Parameters"; HAPI's Constants.CTS_NDJSON holds the same three). Anything else is no request of theirs, and
// the step refuses it before sending.
func (w *World) kicksOffExportWithFormat(ctx context.Context, user, format string) error {
	if !slices.Contains(ndjsonAbbreviations, format) {
		return fmt.Errorf("_outputFormat %q: the step sends BDA2's abbreviations of %s alone (%s)", format, check.NDJSON, strings.Join(ndjsonAbbreviations, ", "))
	}
	return w.kicksOffExportAs(ctx, user, http.MethodGet, format)
}

// ndjsonAbbreviations are BDA2's abbreviated representations of application/fhir+ndjson for _outputFormat.
var ndjsonAbbreviations = []string{"application/ndjson", "ndjson"}

// kicksOffExportAs kicks off an export by method, asking for the output format format.
func (w *World) kicksOffExportAs(ctx context.Context, user, method, format string) error {
	return w.kicksOffExportTypes(ctx, user, method, format, nil)
}

// defaultRepeatedTypes are the two types EXP-TYPE-REPEATED's kick-off names when EXPORT_TYPES names none: BDA2's
// own example of _type is Observation ("_type=Observation could be used to filter a given export response to
// return only FHIR Observation resources"), and Patient is the compartment a Bulk Data export is about.
var defaultRepeatedTypes = []string{"Patient", "Observation"}

// kicksOffExportWithTypeRepeated is EXP-TYPE-REPEATED's kick-off: by GET, _type given twice, one type each.
// BDA2 "Bulk Data Kick-off Request": "A client MAY repeat kick-off parameters that accept comma delimited
// values multiple times in a kick-off request. The server SHALL treat the values provided as if they were
// comma delimited values within a single instance of the parameter." The two types are the first two of
// EXPORT_TYPES, or Patient and Observation without it; with one type in EXPORT_TYPES the scenario is skipped:
// the run was narrowed to that type, and a second value would name one the run does not export.
//
// _type is optional for a server ("A server that is unable to support _type SHOULD return an error"), and a
// server may refuse a type it does not export, so a refusal is held against the repeat only when the same
// types, once and comma-separated, are accepted: the step then sends that kick-off (its job cancelled at the
// scenario's end like the first's) and leaves the refusal the answer the scenario judges. Refused too, the
// scenario is skipped, naming both answers.
func (w *World) kicksOffExportWithTypeRepeated(ctx context.Context, user string) error {
	types := defaultRepeatedTypes
	if w.target.ExportTypes != "" {
		types = strings.Split(w.target.ExportTypes, ",")
		if len(types) < 2 {
			return w.skip(fmt.Sprintf("EXPORT_TYPES=%s names one type, and a repeated _type needs two: the run exports that type alone, so no second value is sent (BDA2 \"Bulk Data Kick-off Request\": a repeated parameter's values are treated as one comma-delimited list); set EXPORT_TYPES to two or more types this server exports to check it", w.target.ExportTypes))
		}
		types = types[:2]
	}
	if err := w.kicksOffExportTypes(ctx, user, http.MethodGet, check.NDJSON, types); err != nil {
		return err
	}
	repeated := w.last
	if repeated == nil || repeated.Status == http.StatusAccepted {
		return nil
	}
	once := strings.Join(types, ",")
	w.last = nil // the control's answer, or none
	err := w.kicksOffExportTypes(ctx, user, http.MethodGet, check.NDJSON, []string{once})
	control := w.last
	w.last = repeated
	if err != nil {
		return err
	}
	if control != nil && control.Status == http.StatusAccepted {
		fmt.Fprintf(w.target.Log, "  the same kick-off with _type=%s once answered 202: the refusal is the repeat's\n", once)
		return nil
	}
	got := "no answer"
	if control != nil {
		got = check.StatusPhrase(control.Status)
	}
	return w.skip(fmt.Sprintf("the server refused _type repeated (GET %s answered %s) and the same types once, comma-separated (_type=%s answered %s): BDA2 lets a server refuse a _type it does not support (\"A server that is unable to support _type SHOULD return an error\"), so whether it treats repeated values as one list is not checked; set EXPORT_TYPES to two types this server exports",
		repeated.URL, check.StatusPhrase(repeated.Status), once, got))
}

// kicksOffExportTypes kicks off an export by method, asking for the output format format; by GET, each of
// typeValues is a _type parameter of its own (nil: EXPORT_TYPES, once).
func (w *World) kicksOffExportTypes(ctx context.Context, user, method, format string, typeValues []string) error {
	header := fhirJSONHeader()
	header.Set("Prefer", "respond-async")
	// HAPI (and the reference server in fut and hapi-8.0) reuses the job of an identical kick-off unless
	// told not to; every scenario needs a job of its own. A distinct _since makes each kick-off another request
	// for a server that reuses jobs on other grounds.
	header.Set("Cache-Control", "no-cache")
	since := kickoffSince()
	target := w.exportEndpoint(w.target.kickoffPath())
	var body []byte
	switch method {
	case http.MethodGet:
		header.Del("Content-Type")
		if typeValues == nil {
			typeValues = []string{w.target.ExportTypes}
		}
		target += "?" + kickoffQuery(since, format, typeValues...)
	default:
		params := []map[string]string{{"name": "_outputFormat", "valueString": format}, {"name": "_since", "valueInstant": since}}
		if w.target.ExportTypes != "" {
			params = append(params, map[string]string{"name": "_type", "valueString": w.target.ExportTypes})
		}
		body, _ = json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": params})
	}
	if _, err := w.token(user); err != nil { // a user without a token skips before taking a job slot
		return err
	}
	w.releaseJob() // a scenario's earlier job, if any, is no longer waited on
	release, err := w.target.pool.acquire(ctx)
	if err != nil {
		return fmt.Errorf("kick-off by %s: %w", method, err)
	}
	// A server that limits jobs answers 429 + Retry-After: waited out and sent again, within MAX_WAIT.
	sent, omitted := len(w.exchanges), w.omitted
	x, err := w.poller("kick-off by "+method).Poll(ctx,
		func(ctx context.Context) (*check.Exchange, error) {
			return w.request(ctx, user, method, target, header.Clone(), body)
		},
		func(x *check.Exchange) (check.Verdict, error) {
			if x.Status == http.StatusTooManyRequests {
				return check.Throttle, nil
			}
			return check.Done, nil
		})
	if x != nil {
		w.last = x
	}
	if err != nil {
		release()
		if errors.Is(err, check.ErrGaveUp) && x != nil && x.Status == http.StatusTooManyRequests {
			return kickoffThrottled(x, w.exchanges[sent:], w.omitted-omitted, w.target.MaxWait, w.target.MaxJobs)
		}
		return err
	}
	if loc := x.Header.Get("Content-Location"); x.Status == http.StatusAccepted && check.CheckAbsoluteURL("", "", loc) == nil {
		w.export = exportState{owner: user, pollURL: loc, kickoff: x, release: release}
		return nil
	}
	release()
	return nil
}

func (w *World) hasKickedOffExport(ctx context.Context, user string) error {
	if user == w.needs.sharedExport {
		return w.adoptKickoff(ctx, user, func() *pooledExport { return w.target.pool.sharedExport(user) })
	}
	if err := w.kicksOffExport(ctx, user, kickoffMethod(w.target.Profile)); err != nil {
		return err
	}
	return w.checkKickoff()
}

// checkKickoff holds the kick-off's answer to EXP-KICKOFF, or EXP-KICKOFF-POST for a kick-off by POST: a
// 202, an absolute Content-Location, and no body or an OperationOutcome (BDA2 "Response - Success").
func (w *World) checkKickoff() error {
	req := reqKickoff
	if w.last.Method == http.MethodPost {
		req = reqKickoffPost
	}
	if w.last.Status != http.StatusAccepted {
		return check.Violationf(req, "status of the kick-off by "+w.last.Method, check.StatusPhrase(http.StatusAccepted), check.StatusPhrase(w.last.Status))
	}
	if err := check.CheckAbsoluteURL(req, "Content-Location of the kick-off", w.last.Header.Get("Content-Location")); err != nil {
		return err
	}
	return w.optionalOutcomeBody(req, w.last)
}

// adoptKickoff makes a pooled export the scenario's: its kick-off exchanges join the scenario's transcript and
// are judged here, for this scenario.
func (w *World) adoptKickoff(ctx context.Context, user string, job func() *pooledExport) error {
	if _, err := w.token(user); err != nil {
		return err
	}
	j := job()
	if err := await(ctx, j.kicked); err != nil {
		return err
	}
	for _, x := range j.kickoffs {
		w.last = adopted(x)
		w.exchanges = append(w.exchanges, w.last)
	}
	if j.sendErr != nil {
		return detach(j.sendErr)
	}
	if j.pollURL != "" {
		w.export = exportState{owner: user, pollURL: j.pollURL, kickoff: w.last, pooled: j}
	}
	return w.checkKickoff()
}

// adoptPolls waits for a pooled export to end and judges its polls for this scenario: every in-progress
// answer is held to the in-progress requirements here too, a job that never completed fails the scenario
// with the pool's one cause, and one the server failed returns its *exportFailedError (the same cause in every
// scenario that adopts it; its error answer's form judged here too), at once: nothing more is waited on.
func (w *World) adoptPolls(ctx context.Context, j *pooledExport) error {
	if err := await(ctx, j.done); err != nil {
		return err
	}
	w.omitted += j.omitted
	for _, x := range j.polls {
		w.last = adopted(x)
		w.exchanges = append(w.exchanges, w.last)
		if x.Err != nil && x.Status == 0 {
			continue // no answer to judge: j.err says what it was (a poll cut by MAX_WAIT is the give-up)
		}
		if notJudged(x) { // an answer not to judge: the run's token ran out, or was withheld
			return x.Err
		}
		if _, err := w.judgeExportPoll(w.last); err != nil {
			if x.Status != http.StatusAccepted || !j.failedEarlier(err, w) {
				return err
			}
			w.readsOn("an in-progress answer of the export", err)
		}
	}
	if j.err == nil && len(j.polls) > 0 {
		w.export.pooledAnswer = w.last
	}
	return detach(j.err)
}

// notJudged: an answer of a pooled job's that judges nothing, an error of the run (World.requestOnce): a 401 to
// a token that had expired, or a refusal of a request sent without the token, its origin not trusted.
func notJudged(x *check.Exchange) bool {
	return errors.Is(x.Err, check.ErrCredentialExpired) || errors.Is(x.Err, check.ErrTokenWithheld)
}

// adopted is a scenario's own copy of a pooled job's exchange: the scenario cuts its bodies once checked
// (World.record), and another scenario adopting the same job must still read them whole.
func adopted(x *check.Exchange) *check.Exchange {
	c := *x
	return &c
}

// hasKickedOffRunningExport needs the job to be seen running; a server that finishes before the first poll
// leaves the scenario unchecked (skipped, with the reason), which is not a deviation.
func (w *World) hasKickedOffRunningExport(ctx context.Context, user string) error {
	if err := w.hasKickedOffExport(ctx, user); err != nil {
		return err
	}
	if err := w.pollsExportStatusWhileItRuns(ctx, user); err != nil {
		return err
	}
	if w.last.Status != http.StatusAccepted {
		return check.Violationf(reqPoll202, "status of the first poll", check.StatusPhrase(http.StatusAccepted)+" while the export runs", check.StatusPhrase(w.last.Status))
	}
	return nil
}

// hasCompletedExport takes a completed export from the pool: the user's shared one when the scenario only
// reads it, else one of the scenario's own, started ahead of the scenarios.
func (w *World) hasCompletedExport(ctx context.Context, user string) error {
	pool := w.target.pool
	job := func() *pooledExport { return pool.ownedExport(user) }
	if user == w.needs.sharedExport {
		job = func() *pooledExport { return pool.sharedExport(user) }
	}
	if err := w.adoptKickoff(ctx, user, job); err != nil {
		return err
	}
	if err := w.adoptPolls(ctx, w.export.pooled); err != nil {
		return w.exportEnded(err)
	}
	return w.checkManifest(reqPoll200, w.last)
}

func (w *World) hasCancelledRunningExport(ctx context.Context, user string) error {
	if user == w.needs.cancelledExport {
		return w.adoptCancelledExport(ctx, user)
	}
	if err := w.hasKickedOffRunningExport(ctx, user); err != nil {
		return err
	}
	if err := w.cancelsExportStep(ctx, user); err != nil {
		return err
	}
	return w.checkProfileAnswer("cancel-running", w.last)
}

// adoptCancelledExport takes the export the pool kicked off and cancelled at the start of the run, and judges
// its kick-off, its first poll and the DELETE as hasCancelledRunningExport judges its own.
func (w *World) adoptCancelledExport(ctx context.Context, user string) error {
	j := w.target.pool.cancelledExport(user)
	if err := w.adoptKickoff(ctx, user, func() *pooledExport { return j }); err != nil {
		return err
	}
	if err := await(ctx, j.done); err != nil {
		return err
	}
	for i, x := range j.polls { // the poll, then the DELETE, each after the 429s it waited out (World.request)
		w.last = adopted(x)
		w.exchanges = append(w.exchanges, w.last)
		if x.Status == http.StatusTooManyRequests && i < len(j.polls)-1 {
			continue
		}
		switch {
		case notJudged(x):
			return x.Err
		case x.Status == http.StatusTooManyRequests && x.Method == http.MethodGet: // not waited out within MAX_WAIT
			return pollThrottled(w.last, j.polls, 0, w.target.MaxWait)
		case x.Method == http.MethodDelete:
			w.export.settled = true
			if errors.Is(j.err, errFinishedBeforeDelete) {
				return w.skip(j.err.Error())
			}
			// the poll after a DELETE not answered as a cancel (cancelsExport) says the export failed meanwhile
			if last := j.polls[len(j.polls)-1]; i < len(j.polls)-1 && last.Method == http.MethodGet && failedStatus(last) {
				w.last = adopted(last)
				w.exchanges = append(w.exchanges, w.last)
				return w.exportEnded(w.exportFailure(w.last))
			}
			return w.checkProfileAnswer("cancel-running", w.last)
		case x.Status == http.StatusOK:
			return w.skip("the export completed before the first poll, so it could not be cancelled while it ran")
		case failedStatus(x):
			return w.exportEnded(w.exportFailure(x))
		case x.Status != http.StatusAccepted:
			return check.Violationf(reqPoll202, "status of the first poll", check.StatusPhrase(http.StatusAccepted)+" while the export runs", check.StatusPhrase(x.Status))
		}
		if err := w.checkProgressLength(w.last); err != nil {
			return err
		}
	}
	if j.err != nil && !errors.Is(j.err, errFinishedBeforeDelete) {
		return detach(j.err)
	}
	return fmt.Errorf("the pool's cancel of export %s sent no DELETE", j.pollURL)
}

func (w *World) pollURL() (string, error) {
	if w.export.pollURL == "" {
		return "", fmt.Errorf("no export to poll: a kick-off step with a 202 and a Content-Location must come first")
	}
	return w.export.pollURL, nil
}

func (w *World) pollOnce(ctx context.Context, user string) (*check.Exchange, error) {
	target, err := w.pollURL()
	if err != nil {
		return nil, err
	}
	return w.request(ctx, user, http.MethodGet, target, http.Header{"Accept": {"application/json"}}, nil)
}

// pollsExportStatus sends one status request. One still answered 429 when waiting longer would pass MAX_WAIT
// (World.request) answers nothing a step could judge: throttled, it skips as a wait on the export does.
func (w *World) pollsExportStatus(ctx context.Context, user string) error {
	sent, omitted := len(w.exchanges), w.omitted
	x, err := w.pollOnce(ctx, user)
	if err != nil {
		return err
	}
	w.last = x
	if x.Status == http.StatusTooManyRequests {
		return pollThrottled(x, w.exchanges[sent:], w.omitted-omitted, w.target.MaxWait)
	}
	if user == w.export.owner {
		w.export.running = x.Status == http.StatusAccepted
		if x.Status == http.StatusOK || x.Status == http.StatusNotFound {
			w.export.settled = true
		}
	}
	return nil
}

func (w *World) pollsExportStatusWhileItRuns(ctx context.Context, user string) error {
	if err := w.pollsExportStatus(ctx, user); err != nil {
		return err
	}
	if w.last.Status == http.StatusOK {
		return w.skip("the export completed before the first poll, so its in-progress answer could not be observed")
	}
	if failedStatus(w.last) && user == w.export.owner { // the export failed before the first poll
		return w.exportEnded(w.exportFailure(w.last))
	}
	if w.last.Status == http.StatusAccepted {
		if err := w.checkRetryAfterSent(w.last); err != nil {
			return err
		}
		return w.checkProgressLength(w.last)
	}
	return nil
}

func (w *World) pollsExportStatusUntilComplete(ctx context.Context, user string) error {
	return w.exportEnded(w.pollUntilComplete(ctx, user))
}

// pollUntilComplete polls the scenario's export until it completes, or adopts the polls of its pooled job. An
// export the server failed returns an *exportFailedError (exportEnded makes it the scenario's skip).
func (w *World) pollUntilComplete(ctx context.Context, user string) error {
	if _, err := w.pollURL(); err != nil {
		return err
	}
	if j := w.export.pooled; j != nil && user == w.export.owner {
		return w.adoptPolls(ctx, j)
	}
	defer w.releaseJob() // completed, failed or given up: no longer in flight for the harness
	sent, omitted := len(w.exchanges), w.omitted
	judge := w.judgeExportPoll
	if w.forPool {
		// Every scenario that adopts the job judges each in-progress answer (adoptPolls): a deviation there
		// must not end the polling, or none of them could read the completed export.
		judge = func(x *check.Exchange) (check.Verdict, error) {
			if x.Status == http.StatusAccepted {
				return check.Pending, nil
			}
			return w.judgeExportPoll(x)
		}
	}
	x, err := w.poller("export "+w.export.pollURL).Poll(ctx,
		func(ctx context.Context) (*check.Exchange, error) { return w.pollOnce(ctx, user) }, judge)
	if x != nil {
		w.last = x
		var failed *exportFailedError
		w.export.settled = x.Status == http.StatusOK || errors.As(err, &failed) // a failed job runs no more
	}
	if errors.Is(err, check.ErrGaveUp) && x != nil && x.Status == http.StatusTooManyRequests {
		return pollThrottled(x, w.exchanges[sent:], w.omitted-omitted, w.target.MaxWait)
	}
	return err
}

// judgeExportPoll reads one answer of the polling location while waiting for completion. Every in-progress
// answer on the way is held to the in-progress requirements.
//
// FUT-OD-POLL knows two answers, 202 while the job runs and 200 once it has finished; BDA2 knows a third, its
// error status: a 4XX or 5XX "returned by the server if the export operation fails", leaving "the choice of
// when to determine that an export job has failed in its entirety (error status) vs. returning a partial
// success" to the server (HAPI answers a FAILED job 500 with an OperationOutcome; SMART's reference server
// 400). An error the wait retries (429, a 5xx with the transient issue code, a 503 with Retry-After) is no
// failure, and neither is an answer that says the polling location itself does not work (failedStatus: a
// 401, 403, 404, 405 or 410). Any other 4xx or 5xx ends the wait with an *exportFailedError: the export failed,
// which the sources allow, so the scenarios that needed it completed are skipped with that cause (their
// requirements not checked: the release gate fails on them), not failed. The error answer's form is judged
// apart, against EXP-POLL-ERROR (checkExportError). Any other status (a 1xx, a 2xx but 200 and 202, a 3xx
// the client did not follow) is no answer of either source, and breaks EXP-POLL-200's clause, whichever
// scenario needed the export.
func (w *World) judgeExportPoll(x *check.Exchange) (check.Verdict, error) {
	switch {
	case x.Status == http.StatusOK:
		return check.Done, nil
	case x.Status == http.StatusAccepted:
		// A deviation the profile ranks below failing this scenario is its warning, and the wait goes on: ended
		// here, the export would never be read complete, and the scenario's own requirement would fail on it.
		return check.Pending, w.unlessWarned(w.checkInProgress(x))
	case x.Status == http.StatusTooManyRequests:
		return check.Throttle, nil
	case temporaryFailure(x):
		return check.Throttle, nil
	case failedStatus(x):
		return check.Done, w.exportFailure(x)
	}
	return check.Done, check.Violationf(reqPoll200, "status of "+x.Method+" "+x.URL, "202 while the export runs, then 200 when it completes (or BDA2's error status, a 4xx or 5xx, if it fails)", check.StatusPhrase(x.Status))
}

// failedStatus: an answer of a polling location that says the export failed, BDA2's error status: a 4xx or
// 5xx that is neither throttling (429) nor a transient failure, both waited out, nor one that says the
// polling location itself is wrong: 404 and 410 (no such job, before any DELETE: the location the kick-off
// gave names nothing, which no source answers for a failed export: HAPI's FAILED job is a 500, SMART's a
// 400), 401 and 403 (the owner's own token refused), 405 (no GET there). Those fail EXP-POLL-200: a
// polling location that never worked must not read as an export the server chose to fail.
func failedStatus(x *check.Exchange) bool {
	switch x.Status {
	case http.StatusNotFound, http.StatusGone, http.StatusUnauthorized, http.StatusForbidden, http.StatusMethodNotAllowed, http.StatusTooManyRequests:
		return false
	}
	return x.Status >= 400 && x.Status <= 599 && !temporaryFailure(x)
}

// kickoffThrottled is the skip of a scenario whose kick-off the server throttled (429) for longer than the run
// waits: BDA2 "Bulk Data Kick-off Request" lets a server refuse a new export so ("If a server wants to prevent
// a client from beginning a new export before an in-progress export is completed, it SHOULD respond with a 429
// Too Many Requests status and a Retry-After header"), and a server that limits how often a client may export
// a group (Epic's window per Group and client) answers as one that runs one export of a client at a time
// (Oracle Health's Millennium), or one that runs one export a user (FHIR Works on AWS, Retry-After 900 s) or
// on the whole server (Aidbox). The run's own kick-offs, many of one group by one client and up to MAX_JOBS in
// flight, meet that limit: the harness's choice, no deviation of the server's. Nothing that needs the kick-off
// is checked, so the release gate counts it; the reason says how to run against such a server. x is the last
// answer, attempts the exchanges of the kick-off the transcript kept, dropped the number it did not.
func kickoffThrottled(x *check.Exchange, attempts []*check.Exchange, dropped int, maxWait time.Duration, maxJobs int) error {
	return throttledSkip("the kick-off", "BDA2 lets a server refuse a new export with 429 and Retry-After (one export of a user or client at a time, or a group exported too recently)",
		"nothing that needs the kick-off", fmt.Sprintf("the run keeps up to MAX_JOBS=%d exports in flight: "+
			"run with MAX_JOBS=1 and a MAX_WAIT longer than the server's Retry-After, or lift the server's limit for the run's client", maxJobs),
		x, attempts, dropped, maxWait)
}

// pollThrottled is the skip of every scenario that needed an export whose status requests the server still
// throttled (429) when the next poll would pass MAX_WAIT, or one status request it answered so. BDA2 "Bulk
// Data Status Request": "if a client is polling too frequently, the server SHOULD respond with a 429 Too Many
// Requests status code in addition to a Retry-After header" (and, if such queries persist, MAY end the
// session with a 429). The harness polled as the server asked, so the 429 is no deviation, and what the
// export would have answered next is unknown: unlike an export that never completes (the last answer a 202),
// which fails. A rate limit the run's own requests meet (SMART's reference server: 60 a minute from one
// address, a Retry-After of decades) ends here.
func pollThrottled(x *check.Exchange, attempts []*check.Exchange, dropped int, maxWait time.Duration) error {
	return throttledSkip("the export's status requests", `BDA2 "Bulk Data Status Request" lets a server answer a client that polls too often 429 with a Retry-After`,
		"nothing that needs the export's answer", throttleFix, x, attempts, dropped, maxWait)
}

// throttledSkip is the skip of what a 429 still answered when waiting longer would pass MAX_WAIT kept from
// being checked: clause is the rule that lets the server answer so, and the harness waited as it asked, so the
// 429 is no deviation; unchecked names what is not checked, fix how a run gets past it.
func throttledSkip(what, clause, unchecked, fix string, x *check.Exchange, attempts []*check.Exchange, dropped int, maxWait time.Duration) error {
	return fmt.Errorf("%w: the server throttled %s for longer than the run waits (MAX_WAIT %s): %s; %s, and the harness waited as it asked, so it is no deviation, and %s is checked (%s)",
		godog.ErrSkip, what, maxWait, throttling(x, attempts, dropped), clause, unchecked, fix)
}

// throttleFix is how a run gets past a server's rate limit.
const throttleFix = "run with a MAX_WAIT longer than the server's Retry-After, or lift the server's rate limit for the run's client"

// throttling says what a throttled request was answered: x, the last answer, a 429, with how often and for how
// long the 429s among attempts (the exchanges of the wait the transcript kept; dropped more it did not) came,
// its Retry-After and its OperationOutcome.
func throttling(x *check.Exchange, attempts []*check.Exchange, dropped int) string {
	n, first := 0, x
	for _, a := range attempts {
		if a.Status == http.StatusTooManyRequests {
			if n == 0 {
				first = a
			}
			n++
		}
	}
	over := ""
	atLeast := ""
	if dropped > 0 {
		atLeast = "at least "
	}
	if n > 1 {
		over = fmt.Sprintf(" %s%d times in %s", atLeast, n, x.Received.Sub(first.Received.Add(-first.Duration)).Round(time.Second))
	}
	asked := ", with no Retry-After"
	if v := x.Header.Get("Retry-After"); v != "" {
		asked = fmt.Sprintf(", its Retry-After %q", check.Clip(v, 40))
	}
	says := ""
	if oo, ok := check.ParseOutcome(x.Body); ok {
		if text := check.Clip(oo.FirstText(), maxOutcomeShown); text != "" {
			says = fmt.Sprintf(", its OperationOutcome saying %q", text)
		}
	}
	return fmt.Sprintf("%s %s answered %s%s%s%s", x.Method, x.URL, check.StatusPhrase(x.Status), over, asked, says)
}

// exportFailedError: the polling location answered the error status, the export failed. Its message is the
// skip reason of every scenario that needed the export, the same in each.
type exportFailedError struct{ cause string }

func (e *exportFailedError) Error() string { return e.cause }

// maxOutcomeShown is how much of a failed export's OperationOutcome the skip reason quotes, in characters.
const maxOutcomeShown = 200

// exportFailure judges the form of an error status of the export's polling location (checkExportError) and
// returns the failure: the form's violation where it fails the scenario (STRICT, in EXP-POLL-ERROR's own),
// else an *exportFailedError naming the answer, its status and what its OperationOutcome says, clipped.
func (w *World) exportFailure(x *check.Exchange) error {
	if err := w.checkExportError(x); err != nil {
		return err
	}
	says := ", with no OperationOutcome"
	if oo, ok := check.ParseOutcome(x.Body); ok {
		says = ", its OperationOutcome saying nothing"
		if text := check.Clip(oo.FirstText(), maxOutcomeShown); text != "" {
			says = fmt.Sprintf(", its OperationOutcome saying %q", text)
		}
	}
	return &exportFailedError{cause: fmt.Sprintf("the server failed the export (BDA2's error status, which a server may answer when an export fails): %s %s answered %s%s; "+
		"nothing that needs the export is checked", x.Method, x.URL, check.StatusPhrase(x.Status), says)}
}

// checkExportError judges the form of an export's error status (EXP-POLL-ERROR, SHOULD): BDA2 "Response -
// Error Status": the body SHOULD be a FHIR OperationOutcome in JSON (a server whose infrastructure cannot
// produce one MAY answer in another format), with Content-Type application/fhir+json when it is one. The
// OperationOutcome is judged as every error OperationOutcome is (checkOutcome): HAPI's legacy
// application/json+fhir, which it answers a FAILED job with, is a known deviation where the profile tolerates
// it (fut, hapi-8.0). A deviation is a warning: under STRICT it fails the scenario of EXP-POLL-ERROR only.
func (w *World) checkExportError(x *check.Exchange) error {
	subject := fmt.Sprintf("body of the error status %s %s answered", x.Method, x.URL)
	if _, ok := check.ParseOutcome(x.Body); !ok {
		mt := x.MediaType()
		if mt == "" {
			mt = "no Content-Type"
		}
		got := fmt.Sprintf("%d bytes of %s", len(x.Body), mt)
		if len(x.Body) == 0 {
			got = "an empty body"
		}
		return w.warn(reqPollError, subject+" "+check.StatusPhrase(x.Status), "a FHIR OperationOutcome in JSON (BDA2: SHOULD)", got)
	}
	if err := w.checkOutcome(reqPollError, x); err != nil {
		var v *check.Violation
		if !errors.As(err, &v) {
			return err
		}
		return w.warn(reqPollError, v.Subject, v.Expected, v.Got)
	}
	return nil
}

// exportEnded is err as a step reports it: an export the server failed (*exportFailedError) skips the
// scenario with its cause, and leaves nothing to cancel; any other err is itself.
func (w *World) exportEnded(err error) error {
	var failed *exportFailedError
	if !errors.As(err, &failed) {
		return err
	}
	w.export.settled = true
	return w.skip(failed.cause)
}

// checkInProgress holds a 202 answer to EXP-POLL-202, EXP-RETRY-AFTER, EXP-RETRY-AFTER-SENT and
// EXP-PROGRESS-LENGTH.
func (w *World) checkInProgress(x *check.Exchange) error {
	if err := w.checkProfileAnswer("running", x); err != nil {
		return err
	}
	if check.HasManifest(x.Body) {
		return check.Violationf(reqPoll202, "body of a 202 in-progress answer", "no manifest before the job completes", "a manifest")
	}
	if err := checkRetryAfter(reqRetryAfter, "Retry-After", x); err != nil {
		return err
	}
	if err := w.checkRetryAfterSent(x); err != nil {
		return err
	}
	return w.checkProgressLength(x)
}

// checkRetryAfterSent warns of an in-progress answer without Retry-After (EXP-RETRY-AFTER-SENT). BDA2 "Bulk
// Data Status Request": "A server SHOULD supply a Retry-After header with a with a delay time in seconds (e.g.,
// 120 to represent two minutes) or a http-date". Without one the harness polls on its own backoff, as the IG
// tells a client to ("Clients SHOULD follow an exponential backoff approach"), so nothing else is judged.
func (w *World) checkRetryAfterSent(x *check.Exchange) error {
	if len(x.Header.Values("Retry-After")) > 0 {
		return nil
	}
	return w.warn(reqRetryAfterSent, "header Retry-After of the in-progress answer to "+x.Method+" "+x.URL,
		"a Retry-After, delay-seconds or an HTTP-date, saying when to poll again (BDA2 \"Bulk Data Status Request\": the server SHOULD supply one)", "none")
}

func (w *World) checkProgressLength(x *check.Exchange) error {
	if p := x.Header.Get("X-Progress"); utf8.RuneCountInString(p) >= 100 {
		return w.warn(reqProgressLength, "header X-Progress", "fewer than 100 characters", fmt.Sprintf("%d characters", utf8.RuneCountInString(p)))
	}
	return nil
}

// pollsUnknownJob sends only a request the profile's sources define. FUT's OperationDefinition defines
// [base]/$export-poll-status?_jobId=<id> (fut, hapi-8.0); the HL7 IG defines no polling URL but the
// Content-Location a kick-off returns (bulkdata), so there the request is that location with its job id
// replaced by one that cannot exist. Which part of it is the job id is read from the difference between two
// kick-offs' locations (check.UnknownJobURL); where nothing tells it, the scenario is skipped: a guessed
// part would send a request for something else than a job, and judge its answer as the unknown job's.
func (w *World) pollsUnknownJob(ctx context.Context, user string) error {
	target := w.exportEndpoint("$export-poll-status") + "?" + url.Values{"_jobId": {check.NewUUID()}}.Encode()
	if !definesFUTPollOperation(w.target.Profile) {
		loc, err := w.pollURL()
		if err != nil {
			return err
		}
		other, err := w.target.pool.otherPollURL(ctx, user, loc)
		if err != nil {
			return err
		}
		if target, err = check.UnknownJobURL(loc, other); err != nil {
			why := err.Error()
			if other == "" {
				why = fmt.Sprintf("no other kick-off of user %s got a polling location of its own to compare with; %s", user, why)
			}
			return w.skip("no request for an unknown job was sent: " + why)
		}
	}
	x, err := w.request(ctx, user, http.MethodGet, target, http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return err
	}
	w.last = x
	return nil
}

func (w *World) pollsWithoutJobID(ctx context.Context, user string) error {
	if !definesFUTPollOperation(w.target.Profile) {
		return fmt.Errorf("%w: the HL7 IG defines no polling request without a job id", ErrNotApplicable)
	}
	x, err := w.request(ctx, user, http.MethodGet, w.exportEndpoint("$export-poll-status"), http.Header{"Accept": {"application/json"}}, nil)
	if err != nil {
		return err
	}
	w.last = x
	return nil
}

// cancelsExport sends the DELETE. An owner's export last seen running (202) whose DELETE the profile does not
// answer as a running export's cancel is polled once: a 200 says the job finished while the DELETE was on its
// way, which FUT answers as a finished export's ("If the export has already finished, the delete will return
// '404 Not Found'"), and no cancel of a running export was observed (errFinishedBeforeDelete); an error
// status other than a cancelled export's says the export failed meanwhile (failedStatus: an
// *exportFailedError, the poll's form judged as judgeExportPoll judges it). The DELETE stays the answer the
// scenario judges.
func (w *World) cancelsExport(ctx context.Context, user string) error {
	target, err := w.pollURL()
	if err != nil {
		return err
	}
	x, err := w.request(ctx, user, http.MethodDelete, target, http.Header{"Accept": {"application/fhir+json"}}, nil)
	if err != nil {
		return err
	}
	w.last = x
	if err := w.throttledAnswer(x); err != nil { // throttled past MAX_WAIT: neither a cancel nor a refusal of one
		return err
	}
	if user != w.export.owner {
		return nil
	}
	wasRunning := w.export.running
	w.export.settled, w.export.running, w.export.deleteStatus = true, false, x.Status
	w.releaseJob()
	if !wasRunning || w.profileAccepts("cancel-running", x.Status) {
		return nil
	}
	poll, err := w.pollOnce(ctx, user)
	w.last = x
	if err != nil {
		return err
	}
	if failedStatus(poll) { // the export failed while the DELETE was on its way (HAPI answers a FAILED job's DELETE 500)
		return w.exportFailure(poll)
	}
	if poll.Status != http.StatusOK {
		return nil
	}
	return fmt.Errorf("%w: the DELETE answered %s, as a finished export's, and a poll then answered %s: it could not be cancelled while it ran",
		errFinishedBeforeDelete, check.StatusPhrase(x.Status), check.StatusPhrase(poll.Status))
}

// errFinishedBeforeDelete: the export seen running had finished when its DELETE arrived (cancelsExport).
var errFinishedBeforeDelete = errors.New("the export finished before its DELETE arrived")

// cancelsExportStep is the step: an export that finished before its DELETE arrived is a skip, naming why.
func (w *World) cancelsExportStep(ctx context.Context, user string) error {
	err := w.cancelsExport(ctx, user)
	if errors.Is(err, errFinishedBeforeDelete) {
		return w.skip(err.Error())
	}
	return w.exportEnded(err)
}

// releaseJob frees the slot (MAX_JOBS) of the scenario's own export job.
func (w *World) releaseJob() {
	if w.export.release != nil {
		w.export.release()
		w.export.release = nil
	}
}

// endScenario cancels the scenario's own export when the scenario left it running, so that it neither keeps
// running on the server (which may cap the jobs of a user) nor holds a slot. Best effort, outside the
// scenario's transcript: the scenario's verdict is already given.
func (w *World) endScenario(ctx context.Context) {
	if w.export.release == nil {
		return
	}
	defer w.releaseJob()
	if w.export.settled || w.export.pooled != nil || w.export.pollURL == "" {
		return
	}
	cw := w.target.pool.jobWorld()
	if _, err := cw.request(ctx, w.export.owner, http.MethodDelete, w.export.pollURL, http.Header{"Accept": {"application/fhir+json"}}, nil); err != nil {
		fmt.Fprintf(w.target.Log, "  could not cancel the export %q left running: %v\n", w.scenario, err)
	}
}

func (w *World) responseCarriesNoManifest(x *check.Exchange) error {
	if check.HasManifest(x.Body) {
		return check.Violationf("", "body of "+x.Method+" "+x.URL, "no manifest while the export runs", "a manifest")
	}
	return nil
}

func (w *World) responseIsValidManifest(x *check.Exchange) error { return w.checkManifest("", x) }

// checkManifest holds x to check.CheckManifest and the Expires requirement, and keeps the manifest for the
// download steps.
func (w *World) checkManifest(req string, x *check.Exchange) error {
	var (
		m   *check.Manifest
		err error
	)
	if j := w.export.pooled; j != nil && x == w.export.pooledAnswer {
		m, err = j.checkedManifest(req)
	} else {
		m, err = check.CheckManifest(req, x)
	}
	if err != nil {
		return w.manifestNotRead(err)
	}
	if err := w.manifestAnswersKickoff(req, m); err != nil {
		switch {
		case w.needs.ownedExport != "":
			// A scenario that cancels its completed job (EXP-DELETE-DONE) never goes on to its DELETE: a
			// manifest of another kick-off may be another scenario's job, reused against Cache-Control:
			// no-cache, which the DELETE would end.
			if !w.warnedInstead(err) {
				return err
			}
			return w.skip(fmt.Sprintf("no DELETE sent to an export whose manifest may be another kick-off's, for a deviation that profile %s warns of: %v", w.target.Profile, err))
		case slices.Contains(w.scenarioReqs, reqCrossUser):
			// EXP-CROSS-USER never reads on: a manifest of another kick-off may list another user's files (a
			// job reused across users), which that user may read.
			return w.manifestNotRead(err)
		case w.warnedInstead(err):
			// ranked below failing here: the manifest is read on, as past an earlier scenario's failure
		case x == w.export.pooledAnswer && w.export.pooled.failedEarlier(err, w):
			w.readsOn("the manifest", err)
		default:
			return err
		}
	}
	w.export.manifest = m
	return w.checkExpires(x)
}

// manifestNotRead is the end of a manifest check that leaves the scenario no manifest: err fails it, unless
// the profile ranks err's requirement below failing here. Then err is warned of, and a later step that needs
// the manifest ends the scenario not checked, naming err (World.manifestToRead), rather than failing its own
// requirement for a deviation the profile does not fail, or blaming the feature file for a missing step.
func (w *World) manifestNotRead(err error) error {
	if !w.warnedInstead(err) {
		return err
	}
	w.export.unread = err
	return nil
}

// manifestToRead is the manifest of the scenario's completed export, for a step that reads it.
func (w *World) manifestToRead() (*check.Manifest, error) {
	if m := w.export.manifest; m != nil {
		return m, nil
	}
	if w.export.unread != nil {
		return nil, w.skip(fmt.Sprintf("the completed export's manifest was not read, for a deviation that profile %s warns of: %v", w.target.Profile, w.export.unread))
	}
	return nil, fmt.Errorf("no completed export: a step that waits for the manifest must come first")
}

// manifestAnswersKickoff holds a readable manifest to the kick-off it answers: its request, its
// transactionTime, its types (EXPORT_TYPES).
func (w *World) manifestAnswersKickoff(req string, m *check.Manifest) error {
	if err := check.CheckManifestRequest(req, m, w.export.kickoff); err != nil {
		return err
	}
	if err := check.CheckTransactionTimeAfterKickoff(req, m, w.export.kickoff); err != nil {
		if !w.profiles.Tolerance[toleranceDataTime][w.target.Profile] {
			return err
		}
		w.knownDeviation(req, fmt.Sprintf("%s: %v; accepted by profile %s as the time of the data the query read (the last load of a server that loads its data in batches)", toleranceDataTime, err, w.target.Profile))
	}
	return w.checkExportTypes(req, m)
}

// readsOn logs a deviation in what the scenario read of a pooled job that an earlier scenario reading the job
// failed on (pooledExport.failedEarlier): this one goes on to its own requirements.
func (w *World) readsOn(what string, err error) {
	req := err.(*check.Violation).Requirement // failedEarlier passes over violations alone
	if req == "" {
		req = w.primaryRequirement()
	}
	fmt.Fprintf(w.target.Log, "  %s: %s deviates from %s, which an earlier scenario that read the same job failed on; this one reads on\n", w.scenario, what, req)
}

// checkExportTypes: with EXPORT_TYPES every kick-off sends _type, and BDA2's kick-off includes a resource
// "if [its] resource type is listed here": an output file of another type is the server ignoring _type.
func (w *World) checkExportTypes(req string, m *check.Manifest) error {
	if w.target.ExportTypes == "" {
		return nil
	}
	asked := strings.Split(w.target.ExportTypes, ",")
	for i := range asked {
		asked[i] = strings.TrimSpace(asked[i])
	}
	for i, it := range m.Output {
		if !slices.Contains(asked, it.Type) {
			return check.Violationf(req, fmt.Sprintf("type of manifest output item %d (%s)", i, it.URL), "one of the kick-off's _type "+w.target.ExportTypes, "%q", it.Type)
		}
	}
	return nil
}

// checkExpires: BDA2 asks for an Expires header naming when the files go; FUT sends "expires: 0", a cache
// header, which is not that. Every complete status the run reads is held to it (a SHOULD: a warning, which
// STRICT makes a failure of EXP-EXPIRES's own scenario).
func (w *World) checkExpires(x *check.Exchange) error {
	if x.Status != http.StatusOK {
		return fmt.Errorf("no complete status to read: %s %s answered %s", x.Method, x.URL, check.StatusPhrase(x.Status))
	}
	v := x.Header.Get("Expires")
	if v == "" {
		return w.warn(reqExpires, "header Expires of the complete status", "an HTTP-date telling when the files expire", "none")
	}
	at, err := http.ParseTime(v)
	if err != nil {
		// Named apart from a date in the past: Pathling's "Fri, 4 Dec 2026 18:57:10 GMT" (Java's
		// RFC_1123_DATE_TIME, whose day has one digit on the 1st to the 9th) is a future time, but no HTTP-date.
		return w.warn(reqExpires, "header Expires of the complete status", expiresGrammar, fmt.Sprintf("%q", v))
	}
	if !at.After(x.ResponseTime()) {
		return w.warn(reqExpires, "header Expires of the complete status", "an HTTP-date in the future", fmt.Sprintf("%q", v))
	}
	return nil
}

// expiresGrammar is what an Expires the harness cannot read as a date was expected to be: Expires is an
// HTTP-date (RFC 9111 §5.3), which a sender MUST generate as an IMF-fixdate, its day of two digits (RFC 9110
// §5.6.7), and which a cache MUST read as already expired when it is invalid (RFC 9111 §5.3).
const expiresGrammar = `an HTTP-date telling when the files expire: an IMF-fixdate such as "Sun, 06 Nov 1994 08:49:37 GMT", its day of two digits (RFC 9110 §5.6.7; a cache reads an invalid Expires as already expired, RFC 9111 §5.3)`

// harnessFileAccept is the Accept of the harness's own file requests: NDJSON first, FUT's Binary accepted.
var harnessFileAccept = check.NDJSON + ", application/fhir+json;q=0.9"

func (w *World) downloadsOutputFiles(ctx context.Context, user string) error {
	return w.requestOutputFiles(ctx, user, harnessFileAccept)
}

func (w *World) downloadsOutputFilesWithoutAccept(ctx context.Context, user string) error {
	return w.requestOutputFiles(ctx, user, "")
}

func (w *World) downloadsOutputFilesWithAccept(ctx context.Context, user, accept string) error {
	return w.requestOutputFiles(ctx, user, accept)
}

// requestOutputFiles requests every output file of the manifest, as user, with accept ("" sends no Accept).
// BDA2: the token goes with a file request only when the manifest says it is required, so that a file
// server of another party never sees it otherwise. With requiresAccessToken false, a file refused without a
// token is asked once more with the export's owner's token, on an origin trusted with it
// (askAgainWithToken): the files may be protected by another scheme, which BDA2 allows.
func (w *World) requestOutputFiles(ctx context.Context, user, accept string) error {
	m, err := w.manifestToRead()
	if err != nil {
		return err
	}
	if !m.RequiresAccessToken {
		user = ""
	}
	w.export.downloads, w.export.filesAs, w.export.unchecked = nil, user, nil
	files, err := w.downloadOutputFiles(ctx, m, user, accept, w.export.owner)
	if err != nil {
		return err
	}
	w.export.downloads = files
	// The step's transcript is every step's: its first and last exchanges (World.record), however many
	// files the manifest lists. A failed download ends it, so that the transcript ends on the file that
	// failed and the reproducer requests it; the files after it are judged by the Then steps.
	for _, d := range files {
		if d.refused != nil {
			w.record(d.refused)
		}
		w.record(d.x)
		w.last = d.x
		if d.asBinary != nil { // an empty file read again as its Binary: both answers in the transcript
			w.record(d.asBinary)
		}
		if d.err != nil {
			return d.err
		}
	}
	return nil
}

func (w *World) requestsOutputFilesWithoutToken(ctx context.Context) error {
	return w.requestOutputFiles(ctx, "", harnessFileAccept)
}

// requestsOutputFilesAsOtherUser sends another user's own token with each file request, where the manifest
// requires a token at all. Where it does not (requiresAccessToken false), the files are protected by another
// scheme than the $export's, if any (BDA2 allows it), for which the harness holds no credential of that user's:
// no request is sent (one without a token is EXP-OUTPUT-TOKEN's), and the Then step judges the manifest.
func (w *World) requestsOutputFilesAsOtherUser(ctx context.Context, user string) error {
	if user == w.export.owner {
		return fmt.Errorf("user %s owns the export: another user must request its files", user)
	}
	if _, err := w.token(user); err != nil { // without that user's token the scenario is skipped, visibly
		return err
	}
	if m := w.export.manifest; m != nil && !m.RequiresAccessToken {
		w.export.downloads, w.export.filesAs, w.export.unchecked = nil, user, nil
		fmt.Fprintf(w.target.Log, "  no output file requested as user %s: the manifest says requiresAccessToken false, and the harness holds no other credential of user %s's\n", user, user)
		return nil
	}
	return w.requestOutputFiles(ctx, user, harnessFileAccept)
}

// downloadsDone are the manifest's items with their answers, once a step has requested every file.
func (w *World) downloadsDone() (*check.Manifest, error) {
	m, err := w.manifestToRead()
	if err != nil {
		return nil, err
	}
	if w.export.downloads == nil {
		return nil, fmt.Errorf("no output file requested: a step that requests them must come first")
	}
	if len(w.export.downloads) == 0 {
		if len(m.Output) == 0 && len(m.Error) == 0 && len(m.Deleted) == 0 {
			return nil, w.skip(noOutputFile)
		}
		// every file left out: nothing was judged, so nothing passed
		return nil, w.skip("no output file was checked: " + strings.Join(w.export.unchecked, "; "))
	}
	return m, nil
}

const noOutputFile = "the manifest lists no output file, so there is no file to check"

// judgedNoOutput ends a Then step that judged the downloaded files without fault: a manifest that lists
// error or deleted files but no output file (BDA2: a partial success; output [] when there is no data) has
// its error files judged like the others, but checked no output file, so the scenario is skipped, not passed.
func (w *World) judgedNoOutput(m *check.Manifest) error {
	if len(m.Output) == 0 {
		return w.skip(noOutputFile + " (its error and deleted files were judged and pass)")
	}
	return nil
}

// judgedNoResource ends a Then step that judged the output files' lines, once judgedNoOutput has passed: output
// files that downloaded whole and hold no resource at all showed no line to judge, so nothing of "every line a
// resource of the item's type" was checked, and the scenario is skipped, not passed. BDA2: "If no data are found
// for a resource, the server SHOULD NOT return an output item for that resource", and with no data at all the
// output SHOULD be empty, which is skipped alike (noOutputFile); a server whose files lost their data would
// otherwise pass.
func (w *World) judgedNoResource() error {
	files, resources := 0, 0
	for _, d := range w.export.downloads {
		if d.output {
			files++
			resources += d.file.Resources
		}
	}
	if files > 0 && resources == 0 {
		return w.skip(fmt.Sprintf("the %d output files checked hold no resource, so no line of theirs was checked (BDA2: a server SHOULD NOT list a file for a type without data)", files))
	}
	return nil
}

// outputFilesAreNDJSON: a file request that names no FHIR format gets the file itself (EXP-OUTPUT-ACCEPT).
func (w *World) outputFilesAreNDJSON(_ context.Context) error {
	m, err := w.downloadsDone()
	if err != nil {
		return err
	}
	err = w.judgeEachFile(func(d download) error {
		item, x := d.item, d.x
		accept := x.RequestHeader.Get("Accept")
		if accept == "" {
			accept = "no Accept"
		}
		subject := fmt.Sprintf("output file %s requested with %s", item.URL, accept)
		if x.Status != http.StatusOK {
			return check.Violationf("", subject, check.StatusPhrase(http.StatusOK), check.StatusPhrase(x.Status))
		}
		if mt := x.MediaType(); mt != check.NDJSON {
			return check.Violationf("", subject, check.NDJSON+" (the IG's default), the file itself", "Content-Type %q", x.Header.Get("Content-Type"))
		}
		return d.verdict // judged line by line while it streamed
	}, w.showBinaryRead) // an empty file whose Binary said why: the failure shows that answer
	if err != nil {
		return err
	}
	if err := w.judgedNoOutput(m); err != nil {
		return err
	}
	return w.judgedNoResource()
}

// outputFilesAnswerAsTokenRequires judges the files requested without a token: refused (a 4xx) when the
// manifest requires a token, downloaded (200) when it does not (EXP-OUTPUT-TOKEN). With false, a file refused
// without a token and read with the owner's (askAgainWithToken) needs the $export's authorization after all:
// the manifest's false is wrong, and the failure shows both requests. One refused with the token too, or on
// an origin the token may not go to, was left not checked by the download step (BDA2 allows false for a file
// server of another access-control scheme).
func (w *World) outputFilesAnswerAsTokenRequires(_ context.Context) error {
	m, err := w.downloadsDone()
	if err != nil {
		return err
	}
	if w.export.filesAs != "" {
		return fmt.Errorf("the files were requested with user %s's token: a step that requests them without one must come first", w.export.filesAs)
	}
	err = w.judgeEachFile(func(d download) error {
		item, x := d.item, d.x
		switch {
		case m.RequiresAccessToken && (x.Status < 400 || x.Status > 499):
			return check.Violationf("", "output file "+item.URL+" requested without a token", "refused with a 4xx: the manifest says requiresAccessToken true", check.StatusPhrase(x.Status))
		case !m.RequiresAccessToken && d.refused != nil && x.Status == http.StatusOK:
			return check.Violationf("", "output file "+item.URL+" requested without a token, then with user "+w.export.owner+"'s",
				check.StatusPhrase(http.StatusOK)+" without a token: the manifest says requiresAccessToken false, that downloading the files does not need the $export's authorization",
				"%s without a token and %s with user %s's bearer token: the file server controls access by the $export's OAuth 2.0 bearer token, so requiresAccessToken SHALL be true (BDA2 \"Complete Status\")",
				check.StatusPhrase(d.refused.Status), check.StatusPhrase(x.Status), w.export.owner)
		case !m.RequiresAccessToken && x.Status != http.StatusOK:
			return check.Violationf("", "output file "+item.URL+" requested without a token", check.StatusPhrase(http.StatusOK)+": the manifest says requiresAccessToken false", check.StatusPhrase(x.Status))
		}
		return nil
	}, func(d download) {
		if d.refused != nil && d.x.Status == http.StatusOK { // read with the token after all
			w.record(d.refused) // the transcript of the verdict: both requests, the reproducer the one with the token
			w.record(d.x)
		}
	})
	if err != nil {
		return err
	}
	return w.judgedNoOutput(m)
}

// outputFilesRefusedTo judges the files requested by another user: FUT gives them the exporting user's
// security context, so only that user reads them (EXP-CROSS-USER; MAY in bulkdata).
//
// A manifest of requiresAccessToken false says the files are downloaded under another access-control scheme
// than the $export's, if any (BDA2 "Complete Status": a pre-signed store URL, a file server inside a
// firewall), for which the harness holds no credential of another user's. In fut and hapi-8.0 that is itself
// the deviation: FUT serves the files as Binary resources in the exporting user's security context, read with
// that user's own authorization, and FUT (HAPI) always answers true. In bulkdata it is allowed, and says
// nothing of whether the server restricts the files to the client that exported them (BDA2's MAY): the
// scenario is skipped, saying why, neither failed nor reported as a MAY deviation it did not see.
func (w *World) outputFilesRefusedTo(_ context.Context, user string) error {
	if m := w.export.manifest; m != nil && !m.RequiresAccessToken {
		if servesFUTBinaries(w.target.Profile) {
			return check.Violationf("", "requiresAccessToken of the manifest",
				"true: FUT's files are Binary resources in the security context of the user that initiated the export, read with that user's own authorization (FUT-OD-EXPORT \"Retrieving exported files\"; HAPI always answers true)",
				"false: the files are to be downloaded without the $export's authorization, under an access-control scheme of the file server's own, which does not restrict them to user %s", w.export.owner)
		}
		return w.skip(fmt.Sprintf("whether user %s can read user %s's output files is not checked: the manifest says requiresAccessToken false, so the files are protected, if at all, by a scheme other than the $export's (BDA2 \"Complete Status\" allows it), for which the harness holds no credential of user %s's", user, w.export.owner, user))
	}
	m, err := w.downloadsDone()
	if err != nil {
		return err
	}
	err = w.judgeEachFile(func(d download) error {
		if s := d.x.Status; s < 400 || s > 499 {
			return check.Violationf("", "output file "+d.item.URL+" requested by user "+user+" with their own token", "refused with a 4xx: the file is user "+w.export.owner+"'s", check.StatusPhrase(s))
		}
		return nil
	}, nil)
	if err != nil {
		return err
	}
	return w.judgedNoOutput(m)
}

// retainedWait is how long after its completion a finished export is polled again. FUT keeps the files two
// hours and BDA2's Expires says until when: some seconds are well inside either, and keep the run short.
const retainedWait = 3 * time.Second

func (w *World) pollsAgainLater(ctx context.Context, user string) error {
	if _, err := w.manifestToRead(); err != nil {
		return err
	}
	if err := check.WaitFor(ctx, retainedWait); err != nil {
		return err
	}
	return w.pollsExportStatus(ctx, user)
}

// responseIsSameManifest: a completed export stays readable (EXP-RETAINED): the same manifest, same files.
func (w *World) responseIsSameManifest(x *check.Exchange) error {
	first, err := w.manifestToRead()
	if err != nil {
		return err
	}
	subject := fmt.Sprintf("answer of %s %s %s after the export completed", x.Method, x.URL, retainedWait)
	if x.Status != http.StatusOK {
		return check.Violationf("", subject, check.StatusPhrase(http.StatusOK)+" and the same manifest: the export stays readable", check.StatusPhrase(x.Status))
	}
	if w.sameAnswerAsCompleted(x) {
		return nil
	}
	again, err := check.CheckManifest("", x)
	if err != nil {
		return err
	}
	// the same files, in whatever order: HAPI builds the output list from a map, and BDA2 orders nothing.
	// Files that need no token are served by URLs that carry their own authorization (BDA2's example: a
	// pre-signed Amazon S3 URL), signed again on every status request: the same file, another query.
	resigned := !first.RequiresAccessToken && !again.RequiresAccessToken
	var diffs []string
	head := func(m *check.Manifest) check.Manifest {
		return check.Manifest{TransactionTime: m.TransactionTime, Request: m.Request, RequiresAccessToken: m.RequiresAccessToken}
	}
	if diff := cmp.Diff(head(first), head(again)); diff != "" {
		diffs = append(diffs, "(-first +again):\n"+diff)
	}
	for _, l := range []struct {
		name         string
		first, again []check.ManifestItem
	}{{"output", first.Output, again.Output}, {"error", first.Error, again.Error}, {"deleted", first.Deleted, again.Deleted}} {
		if d := itemsDiff(l.name, l.first, l.again, resigned); d != "" {
			diffs = append(diffs, d)
		}
	}
	if len(diffs) > 0 {
		return check.Violationf("", subject, "the manifest the export completed with", "another one: %s", strings.Join(diffs, "; "))
	}
	return nil
}

// sameAnswerAsCompleted says whether x, a later answer of the scenario's pooled export, is byte for byte the
// answer whose manifest the pool checked and the scenario read, as a JSON answer: then it is the same manifest,
// and is not checked again (at 210,000 files a check costs about a second of CPU). Its transactionTime, not
// after the first answer's Date, is then not after this later one's either. A manifest the scenario has not
// read (nil) is no match, even when the pool's check read none either.
func (w *World) sameAnswerAsCompleted(x *check.Exchange) bool {
	j := w.export.pooled
	if j == nil || w.export.manifest == nil || w.export.manifest != j.manifest || check.CheckMediaType("", x, "application/json") != nil {
		return false
	}
	return bytes.Equal(x.Body, j.polls[len(j.polls)-1].Body)
}

// itemsShown is how many files gone, and new, a changed manifest names of each list: a manifest of
// thousands of files may change in every URL, and the failure is written into every report.
const itemsShown = 5

// maxURLShown is how much of each file a changed manifest names is shown.
const maxURLShown = 512

// itemsDiff compares a list of the first manifest with the same list of a later one, in any order, as
// multisets of (type, url, count); resigned compares the URLs without their queries. It says how many files
// are gone and new, naming the first itemsShown of each; "" when the lists hold the same files.
func itemsDiff(list string, first, again []check.ManifestItem, resigned bool) string {
	key := func(it check.ManifestItem) string {
		u := it.URL
		if resigned {
			if p, err := url.Parse(u); err == nil {
				p.RawQuery, p.Fragment = "", ""
				u = p.String()
			}
		}
		count := "none"
		if it.Count != nil {
			count = strconv.FormatInt(*it.Count, 10)
		}
		return fmt.Sprintf("%s %s (count %s)", it.Type, u, count)
	}
	left := make(map[string]int, len(first))
	for _, it := range first {
		left[key(it)]++
	}
	var added []string
	for _, it := range again {
		k := key(it)
		if left[k] > 0 {
			left[k]--
			continue
		}
		added = append(added, k)
	}
	var gone []string
	for _, it := range first { // in the first manifest's order, each only as often as it is missing
		if k := key(it); left[k] > 0 {
			left[k]--
			gone = append(gone, k)
		}
	}
	if len(gone) == 0 && len(added) == 0 {
		return ""
	}
	some := func(items []string) string {
		shown := make([]string, min(len(items), itemsShown))
		for i := range shown {
			shown[i] = items[i]
			if len(shown[i]) > maxURLShown { // a URL may be of any length
				shown[i] = strings.ToValidUTF8(shown[i][:maxURLShown], "") + "…"
			}
		}
		if len(items) > itemsShown {
			return strings.Join(shown, ", ") + fmt.Sprintf(" and %d more", len(items)-itemsShown)
		}
		return strings.Join(shown, ", ")
	}
	var parts []string
	if len(gone) > 0 {
		parts = append(parts, fmt.Sprintf("%d of the first manifest's %d %s files gone: %s", len(gone), len(first), list, some(gone)))
	}
	if len(added) > 0 {
		parts = append(parts, fmt.Sprintf("%d of the %d %s files of the answer not in the first: %s", len(added), len(again), list, some(added)))
	}
	return strings.Join(parts, "; ")
}

func (w *World) outputFilesHoldTheirType(_ context.Context) error {
	m, err := w.downloadsDone() // a manifest of no file, or no file checked, passes nothing
	if err != nil {
		return err
	}
	err = w.judgeEachFile(func(d download) error {
		item := d.item
		if d.x.Status != http.StatusOK {
			return check.Violationf("", "download of output file "+item.URL, check.StatusPhrase(http.StatusOK), check.StatusPhrase(d.x.Status))
		}
		if d.verdict != nil {
			return d.verdict
		}
		fmt.Fprintf(w.target.Log, "  output file %s: %d %s (%s, %d strict)\n", item.URL, d.file.Resources, item.Type, d.file.Format, d.file.Strict)
		if gaps := d.file.FHIRGaps.String(); gaps != "" { // no fault of the server's: what the strict decoding could and could not judge
			fmt.Fprintf(w.target.Log, "  output file %s: %s\n", item.URL, gaps)
		}
		return nil
	}, w.showBinaryRead) // an empty file whose Binary said why: the failure shows that answer
	if err != nil {
		return err
	}
	if err := w.judgedNoOutput(m); err != nil {
		return err
	}
	return w.judgedNoResource()
}

// outputLinesNotModifiedAfter judges the output lines decoded strictly (check.FileCheck.TransactionTime) by
// BDA2 "Complete Status": transactionTime "Indicates the server's time when the query is run. The response
// SHOULD NOT include any resources modified after this instant" (EXP-MODIFIED-AFTER, SHOULD). A meta.lastUpdated
// later than transactionTime by more than check.TransactionTimeSkew is a warning, one for the scenario's downloads,
// naming the first file and line and counting the rest: a file per warning would bury the report of an
// export of thousands. HAPI ≥ 8.2 writes the job's start as transactionTime (hapi-fhir #6841), so data written
// while its export runs shows so. Only the strict sample is read (FHIR_LINES, FHIR_SAMPLE): a deviation in few
// lines of a large export may be missed, and a sample without meta.lastUpdated compares nothing: the
// requirement is then reported not checked, as a bound of the run leaves a file.
func (w *World) outputLinesNotModifiedAfter(_ context.Context) error {
	m, err := w.downloadsDone()
	if err != nil {
		return err
	}
	var first *download
	compared, lines, files := 0, 0, 0
	for i, d := range w.export.downloads {
		if !d.output || d.err != nil || d.verdict != nil {
			continue
		}
		found := d.file.ModifiedAfter
		compared += found.Compared
		if found.Lines == 0 {
			continue
		}
		lines, files = lines+found.Lines, files+1
		if first == nil {
			first = &w.export.downloads[i]
		}
	}
	if compared == 0 { // a pass that compared nothing must not read as one that did, in the reports and the gate
		why := "no output line decoded strictly carries a meta.lastUpdated"
		if w.target.FHIRLines == NoFHIRLines {
			why = "FHIR_LINES=none decodes no line strictly"
		}
		w.notChecked(reqModifiedAfter, fmt.Sprintf("no output line compared with the manifest's transactionTime %s: %s", m.TransactionTime, why))
	}
	if first == nil {
		return nil
	}
	line := first.file.ModifiedAfter.First
	more := ""
	if lines > 1 {
		more = fmt.Sprintf("; %d of the %d lines compared so, in %d of the output files", lines, compared, files)
	}
	err = w.warn(reqModifiedAfter, fmt.Sprintf("meta.lastUpdated of output file %s %s", first.item.URL, line),
		fmt.Sprintf("not after the manifest's transactionTime %s (%s of clock skew allowed; BDA2 \"Complete Status\": the response SHOULD NOT include any resources modified after this instant)", m.TransactionTime, check.TransactionTimeSkew),
		fmt.Sprintf("%q, %s later%s", line.LastUpdated, line.Later.Round(time.Second), more))
	if err != nil {
		w.last = first.x // the failure shows the file it names
	}
	return err
}

// exportNeverCompletes watches a cancelled export: every answer must stay the profile's "poll-cancelled"
// one; a 200 means the cancelled job completed anyway. A job that goes on after its cancel completes when an
// uncancelled one would, so the watch reaches past that time: the cancel's kick-off plus the time the user's
// shared export, kicked off beside it, took to complete. It then polls for cancelWatchWindow more. Without
// that duration (no completed export in the run) the watch is the window from the cancel alone, and says so.
func (w *World) exportNeverCompletes(ctx context.Context, user string) error {
	until, why := w.cancelledWouldHaveCompleted(ctx, user)
	watch := w.poller("cancelled export " + w.export.pollURL)
	watch.MaxWait = min(cancelWatchWindow, watch.MaxWait)
	watch.Limit = "cancel watch"
	if why != "" {
		// The window counts from the cancel: when the wait for the shared export has spent it (an export that
		// never completes, given up after MAX_WAIT), the watch is one poll, and such a run still costs about
		// one MAX_WAIT, not one and the window.
		watch.Since = w.cancelSent()
		watched := fmt.Sprintf("watched %s after its cancel only", cancelWatchWindow)
		if since := time.Since(watch.Since); !watch.Since.IsZero() && since >= cancelWatchWindow {
			watched = fmt.Sprintf("polled once, %s after its cancel, and no longer", since.Round(time.Second))
		}
		w.notChecked("", fmt.Sprintf("export %s %s: %s", w.export.pollURL, watched, why))
	}
	if d := time.Until(until); d > 0 { // a wait for a known time, not a poll: nothing to ask the server before
		if err := check.WaitFor(ctx, d); err != nil {
			return err
		}
	}
	_, err := watch.Poll(ctx,
		func(ctx context.Context) (*check.Exchange, error) { return w.pollOnce(ctx, user) },
		func(x *check.Exchange) (check.Verdict, error) {
			w.last = x
			if x.Status == http.StatusTooManyRequests || temporaryFailure(x) {
				// Throttling is never a failure: a 429 (or a transient 5xx) the request could not wait out
				// within the watch's window is polled again after it, or ends the watch, as a 202 would.
				return check.Throttle, nil
			}
			if x.Status != http.StatusOK && w.profileAccepts("poll-cancelled", x.Status) {
				// a deviation in its form the profile ranks below failing is warned of, and the watch goes on:
				// the export completing anyway is still to be seen
				return check.Pending, w.unlessWarned(w.checkProfileAnswer("poll-cancelled", x))
			}
			return check.Done, check.Violationf("", "status of a cancelled export's polling location", "the profile's \"poll-cancelled\" answer for good", check.StatusPhrase(x.Status))
		})
	if errors.Is(err, check.ErrGaveUp) {
		return nil
	}
	return err
}

// cancelWatchWindow is how long a cancelled export is watched for completing anyway, once an uncancelled
// one would have completed.
const cancelWatchWindow = 5 * time.Second

// cancelSent is when the scenario's DELETE of its export was sent (the last in its transcript), or the zero
// time if the transcript no longer holds it.
func (w *World) cancelSent() time.Time {
	for i := len(w.exchanges) - 1; i >= 0; i-- {
		if x := w.exchanges[i]; x.Method == http.MethodDelete && x.URL == w.export.pollURL {
			return x.Received.Add(-x.Duration)
		}
	}
	return time.Time{}
}

// cancelledWouldHaveCompleted is when the scenario's cancelled export would have completed, had its cancel been
// ignored: its kick-off plus the time the user's shared export took from its kick-off to its first 200. why
// says why it is unknown (the zero time then).
func (w *World) cancelledWouldHaveCompleted(ctx context.Context, user string) (until time.Time, why string) {
	j := w.export.pooled
	if j == nil || len(j.kickoffs) == 0 || user != w.needs.cancelledExport {
		return until, "the export was cancelled by its scenario, with no export beside it to time"
	}
	shared := w.target.pool.sharedExport(user)
	if err := await(ctx, shared.done); err != nil {
		return until, "the run ended first"
	}
	if shared.err != nil || len(shared.kickoffs) == 0 || len(shared.polls) == 0 || shared.polls[len(shared.polls)-1].Status != http.StatusOK {
		return until, "user " + user + "'s export beside it did not complete, so the time a job takes is unknown"
	}
	sent := func(x *check.Exchange) time.Time { return x.Received.Add(-x.Duration) }
	took := shared.polls[len(shared.polls)-1].Received.Sub(sent(shared.kickoffs[len(shared.kickoffs)-1]))
	return sent(j.kickoffs[len(j.kickoffs)-1]).Add(took), ""
}

func (w *World) exportIsNotCancelled(ctx context.Context, user string) error {
	if err := w.pollsExportStatus(ctx, user); err != nil {
		return err
	}
	if s := w.last.Status; s != http.StatusAccepted && s != http.StatusOK {
		return check.Violationf("", "status of the owner's poll after another user's DELETE", "202 (running) or 200 (complete): the owner's export unaffected", check.StatusPhrase(s))
	}
	return nil
}
