package refserver

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

type bundle struct {
	ResourceType string        `json:"resourceType"`
	Type         string        `json:"type"`
	Entry        []bundleEntry `json:"entry,omitempty"` // absent, never [], when there are no jobs
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource reportJobParams `json:"resource"`
}

type reportJobParams struct {
	ResourceType string           `json:"resourceType"`
	ID           string           `json:"id"`
	Parameter    []reportJobParam `json:"parameter"`
}

type reportJobParam struct {
	Name string `json:"name"`
	Part []part `json:"part"`
}

type part struct {
	Name           string      `json:"name"`
	ValueString    string      `json:"valueString,omitempty"`
	ValueReference *reference  `json:"valueReference,omitempty"`
	ValueDateTime  string      `json:"valueDateTime,omitempty"`
	Resource       *sentParams `json:"resource,omitempty"`
}

type reference struct {
	Reference string `json:"reference"`
}

type sentParams struct {
	ResourceType string            `json:"resourceType"`
	Parameter    []json.RawMessage `json:"parameter,omitempty"`
}

// Report job status values.
const (
	reportStatusRunning = "RUNNING"
	reportStatusDone    = "DONE"
)

// getReportJobStatus handles GET and POST [base]/$get-report-job-status: a
// collection Bundle of the caller's report jobs, oldest first.
func (s *Server) getReportJobStatus(w http.ResponseWriter, r *http.Request, u User) {
	if r.Method == http.MethodPost {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if !checkJSONContentType(w, r, true) {
				return
			}
			if _, err := decodeParameters(body); err != nil {
				writeError(w, http.StatusBadRequest, codeInvalid, err.Error())
				return
			}
		}
	}

	base := s.baseURL(r)
	out := bundle{ResourceType: "Bundle", Type: "collection"}

	// Only the list is taken under the user's lock; the Bundle is built outside it. A job's fields read here
	// are fixed at creation, and DONE follows from the clock read under the lock.
	st := s.store(u.ID)
	now := s.lock(st)
	jobs := slices.Clone(st.reports)
	st.mu.Unlock()
	s.sweepOthers(st)
	if s.faulty(faultRJSCrossUserLeak) {
		jobs = s.allReportJobs()
	}
	type row struct {
		job  *reportJob
		done bool
	}
	rows := make([]row, 0, len(jobs))
	for _, j := range jobs {
		rows = append(rows, row{job: j, done: j.done(now, s.cfg.ReportDuration) && !s.faulty(faultRJSNeverFinishes)})
	}

	// Jobs are appended in creation order; a stable sort keeps ties in that order.
	slices.SortStableFunc(rows, func(a, b row) int { return a.job.created.Compare(b.job.created) })
	for _, rw := range rows {
		if s.faulty(faultRJSScheduleNotListed) && rw.job.variant == "schedule" {
			continue
		}
		j := rw.job
		owner := j.owner
		if s.faulty(faultRJSUserIDOfFirstUser) {
			owner = s.cfg.Users[0].ID
		}
		status := reportStatusRunning
		if rw.done {
			status = reportStatusDone
		}
		parts := []part{
			{Name: "reportClass", ValueString: j.report.class},
			{Name: "userId", ValueString: owner},
			{Name: "status", ValueString: status},
			{Name: "binary", ValueReference: &reference{Reference: base + "/Binary/" + j.binaryID}},
			{Name: "parameters", Resource: &sentParams{ResourceType: "Parameters", Parameter: j.params}},
			{Name: "created", ValueDateTime: fhirDateTime(j.created)},
			{Name: "started", ValueDateTime: fhirDateTime(j.created)},
		}
		if rw.done {
			parts = append(parts, part{Name: "ended", ValueDateTime: fhirDateTime(j.endsAt(s.cfg.ReportDuration))})
		}
		out.Entry = append(out.Entry, bundleEntry{
			FullURL: "urn:uuid:" + j.id,
			Resource: reportJobParams{
				ResourceType: "Parameters",
				ID:           j.id,
				Parameter:    []reportJobParam{{Name: "reportJob", Part: parts}},
			},
		})
	}
	markAnswer(w, answerReportJobStatus)
	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, out)
}
