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

	job := &reportJob{
		id:      newUUID(),
		owner:   u.ID,
		report:  rt,
		variant: variant,
	}
	var kept int64
	for _, p := range ps {
		job.params = append(job.params, p.raw)
		kept += int64(len(p.raw))
	}
	if kept > s.cfg.MaxJobRequestBytes {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooCostly,
			fmt.Sprintf("The report parameters take %d bytes; this server keeps at most %d per job", kept, s.cfg.MaxJobRequestBytes))
		return
	}

	st := s.store(u.ID)
	now := s.lock(st)
	if len(st.reports) >= s.cfg.MaxJobsPerUser {
		retry := st.reports[0].endsAt(s.cfg.ReportDuration).Add(s.cfg.Retention).Sub(now)
		st.mu.Unlock()
		s.writeTooManyJobs(w, "report", retry)
		return
	}
	job.created = now
	b := &binary{
		id:          strconv.FormatInt(s.reportSeq.Add(1), 10),
		owner:       u.ID,
		contentType: "text/plain",
		data:        []byte(placeholderReportData),
		lastUpdated: now,
		versionID:   "1",
		report:      job,
	}
	job.binaryID = b.id
	st.binaries[b.id] = b
	st.reports = append(st.reports, job)
	placeholder := b.resource()
	st.mu.Unlock()
	s.sweepOthers(st)

	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, placeholder)
}

// writeTooManyJobs answers 429: the user holds as many jobs of a kind as the server keeps per user; one is
// forgotten after retry.
func (s *Server) writeTooManyJobs(w http.ResponseWriter, kind string, retry time.Duration) {
	w.Header().Set("Retry-After", retryAfterSeconds(retry))
	writeError(w, http.StatusTooManyRequests, codeThrottled,
		fmt.Sprintf("You hold %d %s jobs, the most this server keeps per user; the oldest is forgotten %s after it ends", s.cfg.MaxJobsPerUser, kind, s.cfg.Retention))
}

// refreshReport fills a finished job's Binary with the generated report, once. The report is built
// outside the store's lock, so a large one does not hold up the user's other requests; st.mu must not be
// held.
func (s *Server) refreshReport(st *userStore, j *reportJob, now time.Time) {
	if s.faulty(faultRJSDonePlaceholder) || !j.done(now, s.cfg.ReportDuration) {
		return
	}
	st.mu.Lock()
	generated := j.generated
	st.mu.Unlock()
	if generated {
		return
	}
	ended := j.endsAt(s.cfg.ReportDuration)
	data, err := generateReportZip(j, ended, s.faulty(faultRJSDoneNotJSON)) // reads only fields fixed at creation
	if err != nil {
		return // keep the placeholder; the report stays readable and the job DONE
	}
	if s.faulty(faultRJSDoneNotAReport) {
		data = []byte("Report generated.")
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.binaries[j.binaryID]
	if j.generated || b == nil {
		return
	}
	j.generated = true
	b.contentType = "application/zip"
	b.data = data
	b.versionID = "2"
	b.lastUpdated = ended
}

// generateReportZip builds the report: a zip holding report.json (asCSV, a fault: report.csv, its CSV).
// Deterministic for a given job.
func generateReportZip(j *reportJob, ended time.Time, asCSV bool) ([]byte, error) {
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
	name := "report.json"
	if asCSV {
		name = "report.csv"
		content = fmt.Appendf(nil, "report,reportClass,userId,generated\n%s,%s,%s,%s\n", j.report.name, j.report.class, j.owner, fhirDateTime(ended))
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: ended.UTC()})
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
