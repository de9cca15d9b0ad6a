package refserver

import (
	"bytes"
	"container/heap"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// manifest is the Bulk Data complete-status body (BDA2; HAPI's BulkExportResponseJson, and in bulkdata the
// IG's optional count: Profile.countsOutput).
type manifest struct {
	TransactionTime     string           `json:"transactionTime"`
	Request             string           `json:"request"`
	RequiresAccessToken bool             `json:"requiresAccessToken"`
	Output              []manifestOutput `json:"output"`
	Error               []manifestOutput `json:"error"`
}

type manifestOutput struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count *int   `json:"count,omitempty"`
}

// hasJobIDParam tells whether the request's query names its job: by _jobId, or, with the fault
// poll-location-job-param, by the job parameter the fault's polling locations carry.
func (s *Server) hasJobIDParam(r *http.Request) bool {
	q := r.URL.Query()
	return q.Has("_jobId") || s.faulty(faultPollLocationJobParam) && q.Has("job")
}

// jobIDParam returns the single _jobId query parameter (or, with the fault poll-location-job-param, the job
// parameter), or answers 400.
func (s *Server) jobIDParam(w http.ResponseWriter, r *http.Request, missing answer) (string, bool) {
	if q := r.URL.Query(); s.faulty(faultPollLocationJobParam) && !q.Has("_jobId") && q.Has("job") {
		return s.oneJobID(w, q["job"], missing)
	}
	return s.oneJobID(w, r.URL.Query()["_jobId"], missing)
}

// oneJobID returns the one well-formed _jobId among the values a request gave, from its query or its
// Parameters body, or answers 400: none (or an empty one), more than one, or a malformed one.
func (s *Server) oneJobID(w http.ResponseWriter, values []string, missing answer) (string, bool) {
	switch {
	case len(values) == 0 || values[0] == "":
		markAnswer(w, missing)
		s.writeMissingJobID(w)
		return "", false
	case len(values) > 1:
		writeError(w, http.StatusBadRequest, codeInvalid, "_jobId may be given only once")
		return "", false
	case !validJobID(values[0]):
		writeError(w, http.StatusBadRequest, codeInvalid, invalidJobIDMessage(values[0]))
		return "", false
	}
	return values[0], true
}

// writeUnknownJob answers a job id the caller has no job of: HAPI's JobQuerySvc.fetchInstance throws
// ResourceNotFoundException(Msg.code(2040) + "Unknown instance ID: " + id + ". Please check if the input job
// ID is valid."), a 404 whose OperationOutcome has code "processing" in hapi-8.0 (Profile.exceptionCode).
func (s *Server) writeUnknownJob(w http.ResponseWriter, id string) {
	p := s.cfg.Profile
	writeError(w, http.StatusNotFound, p.exceptionCode(codeNotFound), p.hapiMessage("2040", fmt.Sprintf("Unknown instance ID: %s. Please check if the input job ID is valid.", id)))
}

// writeMissingJobID answers a request to $export-poll-status that names no job: HAPI's
// InvalidRequestException(Msg.code(2227) + ...), a 400.
func (s *Server) writeMissingJobID(w http.ResponseWriter) {
	p := s.cfg.Profile
	writeError(w, http.StatusBadRequest, p.exceptionCode(codeRequired), p.hapiMessage("2227", "$export-poll-status requires a job ID, please provide the value of target jobId."))
}

// writeNoJobIDCrash answers as HAPI 8.0 does a request whose _jobId it looks for in an absent request body
// (Profile.crashesWithoutJobID): BaseMethodBinding.invokeServerMethod wraps the NullPointerException in an
// InternalErrorException(Msg.code(389) + "Failed to call access method: " + cause), a 500.
func (s *Server) writeNoJobIDCrash(w http.ResponseWriter, missing answer) {
	markAnswer(w, missing)
	writeError(w, http.StatusInternalServerError, s.cfg.Profile.exceptionCode(codeException), "HAPI-0389: Failed to call access method: java.lang.NullPointerException")
}

// lockJob takes the lock of the caller's store, reads the clock under it, forgets what has expired, and
// returns the caller's job (nil if unknown or another user's) with the store it is in, locked, and the time
// it is judged at. The caller unlocks st.mu. Reading the clock under the lock orders the times of one job's
// requests like the requests: a job one request saw complete is complete for every later one.
func (s *Server) lockJob(id string, u User) (st *userStore, j *exportJob, now time.Time) {
	st = s.store(u.ID)
	if st == nil { // no user: a GET without a token, which only the poll-without-token fault lets through
		return s.lockAnyUsersJob(id, newUserStore())
	}
	now = s.lock(st)
	if j = st.exports[id]; j != nil || !s.faulty(faultExportCrossUser) {
		return st, j, now
	}
	st.mu.Unlock()
	return s.lockAnyUsersJob(id, st)
}

// lockAnyUsersJob is job id of whichever user holds it, with that user's store, locked (the faults that answer
// a job to a caller other than its owner); otherwise a nil job and none, locked, the store of the caller's.
func (s *Server) lockAnyUsersJob(id string, none *userStore) (*userStore, *exportJob, time.Time) {
	for _, other := range s.storeList {
		now := s.lock(other)
		if j := other.exports[id]; j != nil {
			return other, j, now
		}
		other.mu.Unlock()
	}
	return none, nil, s.lock(none)
}

// pollingURL is the polling location of job id: FUT's [base]/$export-poll-status?_jobId=<id>, or
// [base]/<Config.PollPath>/<id>.
func (s *Server) pollingURL(base, id string) string {
	if s.cfg.PollPath != "" {
		return base + "/" + s.cfg.PollPath + "/" + url.PathEscape(id)
	}
	if s.faulty(faultPollLocationJobParam) {
		return base + "/$export-poll-status?job=" + url.QueryEscape(id)
	}
	return base + "/$export-poll-status?_jobId=" + url.QueryEscape(id)
}

// pollJobID is the job id of a request to the polling location, or it answers the request: 400 for a
// missing or malformed _jobId; 404 for a path whose id cannot be a job's.
func (s *Server) pollJobID(w http.ResponseWriter, r *http.Request, missing answer) (string, bool) {
	if s.cfg.PollPath == "" && r.Method == http.MethodPost && !s.hasJobIDParam(r) {
		return s.postedJobID(w, r, missing)
	}
	if s.cfg.PollPath == "" {
		if s.cfg.Profile.crashesWithoutJobID() && !s.hasJobIDParam(r) {
			s.writeNoJobIDCrash(w, missing)
			return "", false
		}
		return s.jobIDParam(w, r, missing)
	}
	id := r.PathValue("id")
	if !validJobID(id) {
		writeError(w, http.StatusNotFound, codeNotFound, invalidJobIDMessage(id))
		return "", false
	}
	return id, true
}

// postedJobID is the _jobId of a POST to $export-poll-status that has none in its query: HAPI reads it from
// the request's Parameters body (BulkDataExportProvider.exportPollStatus, "When export-poll-status through
// POST"), ignores the body's other parameters, and answers 400 HAPI-2227 when the body names no _jobId.
func (s *Server) postedJobID(w http.ResponseWriter, r *http.Request, missing answer) (string, bool) {
	body, ok := s.readBody(w, r)
	if !ok {
		return "", false
	}
	blank := len(bytes.TrimSpace(body)) == 0
	if blank && s.cfg.Profile.crashesWithoutJobID() {
		// HAPI 8.0 (ResourceParameter.loadResourceFromRequest): a blank body without a Content-Type is no
		// resource, and the provider dereferences it; with a FHIR JSON Content-Type the JSON parser refuses it
		// (JsonLikeStructure.load: "Did not find any content to parse"), a DataFormatException answered 400.
		if r.Header.Get("Content-Type") == "" {
			s.writeNoJobIDCrash(w, missing)
			return "", false
		}
		if !checkJSONContentType(w, r, false) {
			return "", false
		}
		writeError(w, http.StatusBadRequest, codeProcessing, "HAPI-0450: Failed to parse request body as JSON resource. Error was: HAPI-1861: Failed to parse JSON encoded FHIR content: HAPI-1857: Did not find any content to parse")
		return "", false
	}
	if !blank && !checkJSONContentType(w, r, true) {
		return "", false
	}
	ps, err := decodeParameters(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalid, err.Error())
		return "", false
	}
	var values []string
	for _, p := range paramsNamed(ps, "_jobId") {
		if p.ValueString == nil {
			writeError(w, http.StatusBadRequest, codeInvalid, "parameter _jobId must have a valueString")
			return "", false
		}
		values = append(values, *p.ValueString)
	}
	return s.oneJobID(w, values, missing)
}

// exportPollGet handles GET on the polling location for an authenticated user; with the poll-without-token
// fault, also for a request without any Authorization header, answered as the job's owner would be (a GET
// only: a DELETE without a token is still refused).
func (s *Server) exportPollGet(w http.ResponseWriter, r *http.Request) {
	if len(r.Header.Values("Authorization")) == 0 && s.faulty(faultPollWithoutToken) {
		s.exportPollStatus(w, r, User{})
		return
	}
	s.authed(s.exportPollStatus)(w, r)
}

// exportPollStatus handles GET on the polling location: [base]/$export-poll-status?_jobId=<id> (or
// [base]/<Config.PollPath>/<id>), and, where the profile serves it, POST [base]/$export-poll-status with the
// _jobId in the query or in a Parameters body.
func (s *Server) exportPollStatus(w http.ResponseWriter, r *http.Request, u User) {
	id, ok := s.pollJobID(w, r, answerPollNoJobID)
	if !ok {
		return
	}
	st, j, now := s.lockJob(id, u)
	if j == nil {
		st.mu.Unlock()
		markAnswer(w, answerPollUnknownJob)
		s.writeUnknownJob(w, id)
		return
	}
	if wait := j.nextPoll.Sub(now); wait > 0 {
		st.mu.Unlock()
		writeThrottled(w, wait)
		return
	}
	state := j.state(now)
	if state == exportInProgress && s.cfg.Throttle {
		j.nextPoll = now.Add(s.cfg.RetryAfter)
	}
	if s.faulty(faultCancelledCompletes) && state == exportCancelled && !now.Before(j.completes) {
		state = exportCompleted
	}
	forgotten := false
	if state == exportCompleted && s.faulty(faultManifestForgotten) {
		forgotten, j.answered = j.answered, true
	}
	failed := state == exportCompleted && s.cfg.FailExports
	var outputs, errorFiles []exportOutput
	if state == exportCompleted && !failed {
		s.materializeLocked(st, j)
		outputs = append(outputs, j.outputs...)
		errorFiles = append(errorFiles, j.errors...)
	}
	kickoff, request, cancelled, released := j.kickoff, j.request, j.cancelled, j.released
	st.mu.Unlock()
	s.sweepOthers(st)

	switch {
	case forgotten:
		s.writeUnknownJob(w, id)
	case state == exportCancelled:
		s.writeCancelledPoll(w, id, cancelled)
	case !released.IsZero():
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Job instance %s was deleted after it completed; its files are released.", id))
	case state == exportInProgress:
		s.writeRunning(w, kickoff)
	case failed:
		s.writeFailedExport(w, id)
	case state == exportCompleted:
		s.writeManifest(w, r, kickoff, request, outputs, errorFiles)
	}
}

// writeFailedExport answers a request to the polling location of an export that failed (Config.FailExports):
// the HL7 IG's error status, as HAPI's BulkDataExportProvider answers a FAILED job, to a GET and a DELETE alike
// (its FAILED branch ignores the method; no cancel happens): 500 and an OperationOutcome of severity error whose
// diagnostics are the job's error message, as application/json+fhir, HAPI's legacy media type, in fut and
// hapi-8.0 (the digest's C1 and D1.3), application/fhir+json in bulkdata; its issue code is processing from
// HAPI 8.6.0, none in hapi-8.0 (Profile.providerErrorCode).
func (s *Server) writeFailedExport(w http.ResponseWriter, id string) {
	p := s.cfg.Profile
	contentType := contentTypeFHIRJSON
	if p != ProfileBulkData {
		contentType = contentTypeFHIRJSONLegacy
	}
	writeOperationOutcomeAs(w, http.StatusInternalServerError, contentType, sevError, p.providerErrorCode(codeProcessing),
		fmt.Sprintf("Export job %s failed: the reference server fails every export (FailExports).", id))
}

// writeRunning answers a poll of a running export: 202, X-Progress (FUT), Retry-After, no body.
func (s *Server) writeRunning(w http.ResponseWriter, kickoff time.Time) {
	markAnswer(w, answerPollRunning)
	h := w.Header()
	if s.cfg.Profile.sendsXProgress() {
		h.Set("X-Progress", "Build in progress - Status set to IN_PROGRESS at "+fhirInstant(kickoff))
	}
	h.Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// writeManifest answers a poll of a completed export: 200 and the manifest, Expires at the end of retention.
func (s *Server) writeManifest(w http.ResponseWriter, r *http.Request, kickoff time.Time, request string, outputs, errorFiles []exportOutput) {
	markAnswer(w, answerPollComplete)
	base := s.baseURL(r)
	completed := kickoff.Add(s.cfg.ExportDuration)
	m := manifest{
		TransactionTime:     fhirInstant(s.cfg.Profile.transactionTime(kickoff, completed)),
		Request:             request,
		RequiresAccessToken: true,
		Output:              []manifestOutput{},
		Error:               []manifestOutput{},
	}
	item := func(o exportOutput) manifestOutput {
		it := manifestOutput{Type: o.typ, URL: base + "/Binary/" + o.binaryID}
		if s.cfg.Profile.countsOutput() {
			it.Count = &o.count
		}
		return it
	}
	for _, o := range outputs {
		m.Output = append(m.Output, item(o))
	}
	for _, o := range errorFiles {
		m.Error = append(m.Error, item(o))
	}
	w.Header().Set("Expires", completed.Add(s.cfg.Retention).UTC().Format(http.TimeFormat))
	writeJSON(w, http.StatusOK, contentTypeJSON, m)
}

// writeThrottled answers a poll that came before the Retry-After the server announced (Config.Throttle):
// 429 Too Many Requests, the time left as Retry-After (HL7 Bulk Data IG: a server SHOULD answer polls that
// come too often so).
func writeThrottled(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", retryAfterSeconds(wait))
	writeError(w, http.StatusTooManyRequests, codeThrottled, fmt.Sprintf("Polled before the announced Retry-After: ask again in %s.", wait.Round(time.Millisecond)))
}

// exportCancel handles DELETE on the polling location.
func (s *Server) exportCancel(w http.ResponseWriter, r *http.Request, u User) {
	id, ok := s.pollJobID(w, r, answerNone)
	if !ok {
		return
	}
	st, j, now := s.lockJob(id, u)
	var state exportState
	released := false
	if j != nil {
		state = j.state(now)
		switch {
		case state == exportInProgress:
			j.cancelled = now
			heap.Fix(&st.expiries, j.heapIndex) // its retention now runs from the cancellation
		case state == exportCompleted && s.cfg.FailExports:
		case state == exportCompleted && j.released.IsZero():
			released = s.releaseFinishedLocked(j, now)
			if released && s.faulty(faultDeleteDoneKept) {
				j.released = time.Time{} // answered as released, kept
			}
		}
	}
	st.mu.Unlock()
	s.sweepOthers(st)

	switch {
	case j == nil:
		s.writeUnknownJob(w, id)
	case state == exportInProgress:
		markAnswer(w, answerCancelRunning)
		s.writeCancelled(w, id)
	case state == exportCancelled:
		s.writeCancelOfCancelled(w, id)
	case state == exportCompleted && s.cfg.FailExports:
		s.writeFailedExport(w, id)
	case released:
		markAnswer(w, answerCancelReleased)
		writeOperationOutcome(w, http.StatusAccepted, sevInformation, codeInformational, fmt.Sprintf("Export %s completed; its files are released.", id))
	default:
		markAnswer(w, answerCancelFinished)
		writeOperationOutcomeAs(w, http.StatusNotFound, s.cfg.Profile.deleteContentType(), sevError, s.cfg.Profile.providerErrorCode(codeNotFound), fmt.Sprintf("Job instance %s was already cancelled or has completed.  Nothing to do.", s.cfg.Profile.jobRef(id)))
	}
}

// writeCancelled answers a DELETE that cancelled the job: 202 and HAPI's JpaJobPersistenceImpl.cancelInstance
// message, with the profile's DELETE Content-Type.
func (s *Server) writeCancelled(w http.ResponseWriter, id string) {
	writeOperationOutcomeAs(w, http.StatusAccepted, s.cfg.Profile.deleteContentType(), sevInformation, codeInformational, fmt.Sprintf("Job instance %s successfully cancelled.", s.cfg.Profile.jobRef(id)))
}
