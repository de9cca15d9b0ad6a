package refserver

import (
	"fmt"
	"net/http"
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
	if j == nil || j.owner != u.ID {
		return nil
	}
	return j
}

// exportPollStatus handles GET [base]/$export-poll-status?_jobId=<id>.
func (s *Server) exportPollStatus(w http.ResponseWriter, r *http.Request, u User) {
	id, ok := jobIDParam(w, r)
	if !ok {
		return
	}
	now := s.cfg.Clock.Now()

	s.mu.Lock()
	s.sweepLocked(now)
	j := s.lookupJobLocked(id, u)
	if j == nil {
		s.mu.Unlock()
		writeUnknownJob(w, id)
		return
	}
	state := j.state(now, s.cfg.ExportDuration)
	var outputs []exportOutput
	if state == exportCompleted {
		s.materializeLocked(j)
		outputs = append(outputs, j.outputs...)
	}
	kickoff, request, cancelled, released := j.kickoff, j.request, j.cancelled, j.released
	s.mu.Unlock()

	switch {
	case state == exportCancelled:
		s.writeCancelledPoll(w, id, cancelled)
	case !released.IsZero():
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Job instance %s was deleted after it completed; its files are released.", id))
	case state == exportInProgress:
		h := w.Header()
		if s.cfg.Profile.sendsXProgress() {
			h.Set("X-Progress", "Build in progress - Status set to IN_PROGRESS at "+fhirInstant(kickoff))
		}
		h.Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
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
		}
		completed := kickoff.Add(s.cfg.ExportDuration)
		w.Header().Set("Expires", completed.Add(s.cfg.Retention).UTC().Format(http.TimeFormat))
		writeJSON(w, http.StatusOK, contentTypeJSON, m)
	}
}

// exportCancel handles DELETE [base]/$export-poll-status?_jobId=<id>.
func (s *Server) exportCancel(w http.ResponseWriter, r *http.Request, u User) {
	id, ok := jobIDParam(w, r)
	if !ok {
		return
	}
	now := s.cfg.Clock.Now()

	s.mu.Lock()
	s.sweepLocked(now)
	j := s.lookupJobLocked(id, u)
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
	case state == exportInProgress:
		writeOperationOutcome(w, http.StatusAccepted, sevInformation, codeInformational, fmt.Sprintf("Job instance %s successfully cancelled.", id))
	case state == exportCancelled:
		s.writeCancelOfCancelled(w, id)
	case released:
		writeOperationOutcome(w, http.StatusAccepted, sevInformation, codeInformational, fmt.Sprintf("Export %s completed; its files are released.", id))
	default:
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Job instance %s was already cancelled or has completed.  Nothing to do.", id))
	}
}
