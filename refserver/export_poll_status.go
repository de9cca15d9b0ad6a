package refserver

import (
	"fmt"
	"net/http"
	"time"
)

// manifest is the Bulk Data complete-status body (BDA2; HAPI's
// BulkExportResponseJson plus the optional count).
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
	Count int    `json:"count"`
}

// jobIDParam returns the single _jobId query parameter, or answers 400.
func jobIDParam(w http.ResponseWriter, r *http.Request) (string, bool) {
	vs := r.URL.Query()["_jobId"]
	switch {
	case len(vs) == 0 || vs[0] == "":
		writeError(w, http.StatusBadRequest, codeRequired, "$export-poll-status requires a job ID, please provide the value of target jobId.")
		return "", false
	case len(vs) > 1:
		writeError(w, http.StatusBadRequest, codeInvalid, "_jobId may be given only once")
		return "", false
	case !validJobID(vs[0]):
		writeError(w, http.StatusBadRequest, codeInvalid, invalidJobIDMessage(vs[0]))
		return "", false
	}
	return vs[0], true
}

func writeUnknownJob(w http.ResponseWriter, id string) {
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Unknown instance ID: %s. Please check if the input job ID is valid.", id))
}

// lookupJobLocked returns the caller's job; another user's job is reported
// exactly like an unknown one. s.mu must be held.
func (s *Server) lookupJobLocked(id string, u User) *exportJob {
	j := s.exportJobs[id]
	if j == nil || (j.owner != u.ID && !s.faulty(faultExportCrossUser)) {
		return nil
	}
	return j
}

// lockJob takes s.mu, forgets what has expired, and returns the caller's job (nil if unknown or another
// user's) with the time it was judged at. The caller unlocks.
func (s *Server) lockJob(id string, u User) (*exportJob, time.Time) {
	now := s.cfg.Clock.Now()
	s.mu.Lock()
	s.sweepLocked(now)
	return s.lookupJobLocked(id, u), now
}

// exportPollStatus handles GET [base]/$export-poll-status?_jobId=<id>.
func (s *Server) exportPollStatus(w http.ResponseWriter, r *http.Request, u User) {
	if s.faulty(faultMissingJob500) && r.URL.Query().Get("_jobId") == "" {
		writeError(w, http.StatusInternalServerError, codeException, "java.lang.NullPointerException")
		return
	}
	if s.faulty(faultMissingJob202) && r.URL.Query().Get("_jobId") == "" {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	id, ok := jobIDParam(w, r)
	if !ok {
		return
	}
	j, now := s.lockJob(id, u)
	if j == nil {
		s.mu.Unlock()
		if s.faulty(faultUnknownJob400) {
			writeError(w, http.StatusBadRequest, codeInvalid, "Unknown job "+id)
			return
		}
		if s.faulty(faultUnknownJobPlainBody) {
			writeBody(w, http.StatusNotFound, "text/plain; charset=utf-8", []byte("job not found"))
			return
		}
		writeUnknownJob(w, id)
		return
	}
	state := j.state(now, s.cfg.ExportDuration)
	if s.faulty(faultCancelledCompletes) && state == exportCancelled && !now.Before(j.completesAt(s.cfg.ExportDuration)) {
		state = exportCompleted
	}
	var outputs []exportOutput
	if state == exportCompleted {
		s.materializeLocked(j)
		outputs = append(outputs, j.outputs...)
	}
	kickoff, request, cancelled, released := j.kickoff, j.request, j.cancelled, j.released
	s.mu.Unlock()

	switch {
	case state == exportCancelled && s.faulty(faultCancelled410):
		writeError(w, http.StatusGone, codeNotFound, fmt.Sprintf("Job instance %s was cancelled.", id))
	case state == exportCancelled:
		s.writeCancelledPoll(w, id, cancelled)
	case !released.IsZero():
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Job instance %s was deleted after it completed; its files are released.", id))
	case state == exportInProgress:
		h := w.Header()
		if s.cfg.Profile.sendsXProgress() {
			h.Set("X-Progress", "Build in progress - Status set to IN_PROGRESS at "+fhirInstant(kickoff))
		}
		if s.faulty(faultNoXProgress) {
			h.Del("X-Progress")
		}
		if s.faulty(faultLongXProgress) {
			h.Set("X-Progress", longXProgress)
		}
		h.Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
		if s.faulty(faultBadRetryAfter) {
			h.Set("Retry-After", "1.5s")
		}
		if s.faulty(faultManifestWhileRunning) {
			writeJSON(w, http.StatusAccepted, contentTypeJSON, manifest{TransactionTime: fhirInstant(kickoff), Request: request, Output: []manifestOutput{}, Error: []manifestOutput{}})
			return
		}
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	case state == exportCompleted:
		base := s.baseURL(r)
		m := manifest{
			TransactionTime:     fhirInstant(kickoff),
			Request:             request,
			RequiresAccessToken: true,
			Output:              []manifestOutput{},
			Error:               []manifestOutput{},
		}
		for _, o := range outputs {
			m.Output = append(m.Output, manifestOutput{Type: o.typ, URL: base + "/Binary/" + o.binaryID, Count: o.count})
			if s.faulty(faultManifestRelativeURL) {
				m.Output[len(m.Output)-1].URL = "Binary/" + o.binaryID
			}
			if s.faulty(faultOutputCountMismatch) {
				m.Output[len(m.Output)-1].Count++
			}
		}
		if s.faulty(faultManifestBadTransactionTime) {
			m.TransactionTime = kickoff.UTC().Format("2006-01-02 15:04:05")
		}
		completed := kickoff.Add(s.cfg.ExportDuration)
		w.Header().Set("Expires", completed.Add(s.cfg.Retention).UTC().Format(http.TimeFormat))
		if s.faulty(faultNoExpires) {
			w.Header().Del("Expires")
		}
		if s.faulty(faultManifestContentType) {
			writeJSON(w, http.StatusOK, "text/plain; charset=utf-8", m)
			return
		}
		if s.faulty(faultManifestNoError) {
			writeJSON(w, http.StatusOK, contentTypeJSON, withoutKey(m, "error"))
			return
		}
		writeJSON(w, http.StatusOK, contentTypeJSON, m)
	}
}

// exportCancel handles DELETE [base]/$export-poll-status?_jobId=<id>.
func (s *Server) exportCancel(w http.ResponseWriter, r *http.Request, u User) {
	id, ok := jobIDParam(w, r)
	if !ok {
		return
	}
	j, now := s.lockJob(id, u)
	var state exportState
	released := false
	if j != nil {
		state = j.state(now, s.cfg.ExportDuration)
		switch {
		case state == exportInProgress:
			j.cancelled = now
		case state == exportCompleted && j.released.IsZero():
			released = s.releaseFinishedLocked(j, now)
		}
	}
	s.mu.Unlock()

	switch {
	case j == nil:
		writeUnknownJob(w, id)
	case state == exportInProgress && s.faulty(faultCancel200):
		writeOperationOutcome(w, http.StatusOK, sevInformation, codeInformational, fmt.Sprintf("Job instance %s successfully cancelled.", id))
	case state == exportInProgress && s.faulty(faultCancelNoOutcome):
		w.WriteHeader(http.StatusAccepted)
	case state == exportInProgress:
		writeOperationOutcome(w, http.StatusAccepted, sevInformation, codeInformational, fmt.Sprintf("Job instance %s successfully cancelled.", id))
	case state == exportCancelled:
		s.writeCancelOfCancelled(w, id)
	case released:
		writeOperationOutcome(w, http.StatusAccepted, sevInformation, codeInformational, fmt.Sprintf("Export %s completed; its files are released.", id))
	case s.faulty(faultDeleteDone202):
		writeOperationOutcome(w, http.StatusAccepted, sevInformation, codeInformational, fmt.Sprintf("Job instance %s deleted.", id))
	case s.faulty(faultDeleteDoneNoOutcome):
		w.WriteHeader(http.StatusNotFound)
	default:
		writeError(w, http.StatusNotFound, s.cfg.Profile.providerErrorCode(codeNotFound), fmt.Sprintf("Job instance %s was already cancelled or has completed.  Nothing to do.", id))
	}
}
