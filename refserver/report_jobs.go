package refserver

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// reportType is one FUT report: the <report> in $execute-<report> and
// $schedule-<report>.
type reportType struct {
	name     string
	class    string   // reportClass, as $get-report-job-status reports it
	required []string // required Reference parameters besides anonymization
}

const reportClassPrefix = "com.systematic.ehealth.reporting.reports."

// reportTypes is the table of the 14 FUT report types. Only
// patient-usage-stats' class is published (PatientsUsageReport); the others
// follow the same pattern.
var reportTypes = []reportType{
	{name: "careplan-and-episode-of-care-stats", class: reportClassPrefix + "CarePlanAndEpisodeOfCareStatsReport"},
	{name: "careplan-customization-stats", class: reportClassPrefix + "CarePlanCustomizationStatsReport"},
	{name: "careplan-duration-stats", class: reportClassPrefix + "CarePlanDurationStatsReport"},
	{name: "careplans-by-patient", class: reportClassPrefix + "CarePlansByPatientReport"},
	{name: "careteam-stats", class: reportClassPrefix + "CareTeamStatsReport"},
	{name: "measurement-stats", class: reportClassPrefix + "MeasurementStatsReport"},
	{name: "patient-devices", class: reportClassPrefix + "PatientDevicesReport"},
	{name: "patient-gdpr", class: reportClassPrefix + "PatientGdprReport", required: []string{"patient"}},
	{name: "patient-total", class: reportClassPrefix + "PatientTotalReport"},
	{name: "patient-usage-stats", class: reportClassPrefix + "PatientsUsageReport"},
	{name: "practitioner-gdpr", class: reportClassPrefix + "PractitionerGdprReport", required: []string{"practitioner"}},
	{name: "practitioner-stats", class: reportClassPrefix + "PractitionerStatsReport"},
	{name: "questionnaireresponses", class: reportClassPrefix + "QuestionnaireResponsesReport", required: []string{"organization"}},
	{name: "ssl-orders", class: reportClassPrefix + "SslOrdersReport"},
}

func lookupReportType(name string) (*reportType, bool) {
	for i := range reportTypes {
		if reportTypes[i].name == name {
			return &reportTypes[i], true
		}
	}
	return nil, false
}

// parseReportOp splits "$execute-<report>" or "$schedule-<report>".
func parseReportOp(seg string) (variant, report string, ok bool) {
	for _, v := range []string{"execute", "schedule"} {
		if rest, found := strings.CutPrefix(seg, "$"+v+"-"); found && rest != "" {
			return v, rest, true
		}
	}
	return "", "", false
}

// placeholderReportData is what a report Binary holds until the report is
// generated (FUT: "Kk5PVCBHRU5FUkFURUQgWUVUKg==").
const placeholderReportData = "*NOT GENERATED YET*"

// maxReportJobsPerUser bounds memory: older jobs (and their Binaries) are
// dropped beyond it.
const maxReportJobsPerUser = 1000

// reportJob is one scheduled or executed report. RUNNING from creation,
// DONE ReportDuration later; its Binary is filled in lazily.
type reportJob struct {
	id        string // UUID
	owner     string
	report    *reportType
	variant   string
	params    []json.RawMessage // as sent
	created   time.Time
	binaryID  string
	generated bool
}

func (j *reportJob) endsAt(d time.Duration) time.Time { return j.created.Add(d) }

func (j *reportJob) done(now time.Time, d time.Duration) bool { return !now.Before(j.endsAt(d)) }

// reportOperation handles POST [base]/$execute-<report> and
// POST [base]/$schedule-<report>. Any other single segment under the base
// falls back to 404/405.
func (s *Server) reportOperation(w http.ResponseWriter, r *http.Request) {
	variant, name, ok := parseReportOp(r.PathValue("op"))
	if !ok {
		s.fallback(w, r)
		return
	}
	s.authed(func(w http.ResponseWriter, r *http.Request, u User) {
		s.startReport(w, r, u, variant, name)
	})(w, r)
}

func (s *Server) startReport(w http.ResponseWriter, r *http.Request, u User, variant, name string) {
	rt, ok := lookupReportType(name)
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Unknown report %q in operation $%s-%s", name, variant, name))
		return
	}
	if !checkJSONContentType(w, r, false) {
		return
	}
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	ps, err := decodeParameters(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalid, err.Error())
		return
	}

	anon := paramsNamed(ps, "anonymization")
	switch {
	case len(anon) == 0:
		writeError(w, http.StatusBadRequest, codeRequired, "Missing required input parameter: anonymization")
		return
	case len(anon) > 1:
		writeError(w, http.StatusBadRequest, codeInvalid, "Parameter anonymization may be given only once")
		return
	case anon[0].ValueString == nil || strings.TrimSpace(*anon[0].ValueString) == "":
		writeError(w, http.StatusBadRequest, codeInvalid, "Parameter anonymization must have a non-empty valueString (e.g. ANONYMIZED or NONE)")
		return
	}
	if strings.EqualFold(strings.TrimSpace(*anon[0].ValueString), "NONE") && !u.MayReadNonAnonymized {
		writeError(w, http.StatusForbidden, codeForbidden, "Anonymization NONE requires permission to read non-anonymized reports")
		return
	}
	for _, req := range rt.required {
		got := paramsNamed(ps, req)
		switch {
		case len(got) == 0:
			writeError(w, http.StatusBadRequest, codeRequired, "Missing required input parameter: "+req)
			return
		case len(got) > 1:
			writeError(w, http.StatusBadRequest, codeInvalid, "Parameter "+req+" may be given only once")
			return
		case len(bytes.TrimSpace(got[0].ValueReference)) == 0 || string(got[0].ValueReference) == "null":
			writeError(w, http.StatusBadRequest, codeInvalid, "Parameter "+req+" must have a valueReference")
			return
		}
	}

	now := s.cfg.Clock.Now()
	job := &reportJob{
		id:      newUUID(),
		owner:   u.ID,
		report:  rt,
		variant: variant,
		created: now,
	}
	for _, p := range ps {
		job.params = append(job.params, p.raw)
	}

	s.mu.Lock()
	s.sweepLocked(now)
	s.reportSeq++
	b := &binary{
		id:          strconv.FormatInt(s.reportSeq, 10),
		owner:       u.ID,
		contentType: "text/plain",
		data:        []byte(placeholderReportData),
		lastUpdated: now,
		versionID:   "1",
		report:      job,
	}
	job.binaryID = b.id
	s.binaries[b.id] = b
	jobs := append(s.reportJobs[u.ID], job)
	if len(jobs) > maxReportJobsPerUser {
		for _, old := range jobs[:len(jobs)-maxReportJobsPerUser] {
			delete(s.binaries, old.binaryID)
		}
		jobs = append([]*reportJob(nil), jobs[len(jobs)-maxReportJobsPerUser:]...)
	}
	s.reportJobs[u.ID] = jobs
	placeholder := b.resource()
	s.mu.Unlock()

	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, placeholder)
}

// refreshReportLocked fills a finished job's Binary with the generated
// report (once). s.mu must be held.
func (s *Server) refreshReportLocked(j *reportJob, now time.Time) {
	if s.faulty(faultRJSDonePlaceholder) {
		return
	}
	if j.generated || !j.done(now, s.cfg.ReportDuration) {
		return
	}
	j.generated = true
	b := s.binaries[j.binaryID]
	if b == nil {
		return
	}
	ended := j.endsAt(s.cfg.ReportDuration)
	data, err := generateReportZip(j, ended)
	if err != nil {
		// Keep the placeholder; the report stays readable and the job DONE.
		return
	}
	b.contentType = "application/zip"
	b.data = data
	b.versionID = "2"
	b.lastUpdated = ended
}

// generateReportZip builds the report: a zip holding report.json.
// Deterministic for a given job.
func generateReportZip(j *reportJob, ended time.Time) ([]byte, error) {
	params := j.params
	if params == nil {
		params = []json.RawMessage{}
	}
	content, err := json.MarshalIndent(struct {
		Report      string            `json:"report"`
		ReportClass string            `json:"reportClass"`
		Operation   string            `json:"operation"`
		UserID      string            `json:"userId"`
		Parameters  []json.RawMessage `json:"parameters"`
		Generated   string            `json:"generated"`
		Rows        []any             `json:"rows"`
	}{
		Report:      j.report.name,
		ReportClass: j.report.class,
		Operation:   "$" + j.variant + "-" + j.report.name,
		UserID:      j.owner,
		Parameters:  params,
		Generated:   fhirDateTime(ended),
		Rows:        []any{},
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: "report.json", Method: zip.Deflate, Modified: ended.UTC()})
	if err != nil {
		return nil, fmt.Errorf("zip report: %w", err)
	}
	if _, err := f.Write(content); err != nil {
		return nil, fmt.Errorf("zip report: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip report: %w", err)
	}
	return buf.Bytes(), nil
}
