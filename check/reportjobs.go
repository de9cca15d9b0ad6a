package check

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// ReportJob is one entry of the $get-report-job-status Bundle, decoded through the golang-fhir-models structs.
type ReportJob struct {
	FullURL     string
	ReportClass string
	UserID      string
	Status      string
	Binary      string // the reference as sent
	Parameters  map[string]string
	Created     string
	Started     string
	Ended       string
}

// terminalStatus: the specification names no enumeration of report job statuses, so any other value counts
// as still running.
var terminalStatus = map[string]bool{"DONE": true, "FAILED": true}

// Terminal tells whether the job has finished (DONE or FAILED).
func (j ReportJob) Terminal() bool { return terminalStatus[j.Status] }

// Stopped tells whether the job has stopped: a terminal status, or an ended time whatever its status. A
// status no source names (the specification enumerates none) with an ended time is a job that stopped, not
// one to wait on until MAX_WAIT.
func (j ReportJob) Stopped() bool { return j.Terminal() || j.Ended != "" }

// CheckReportJobBundle holds a status answer to the JSON Schema in fixtures/ and decodes it through the
// golang-fhir-models structs.
func CheckReportJobBundle(req string, x *Exchange) ([]ReportJob, error) {
	if err := fixtures.Validate(fixtures.ReportJobBundleSchema, x.Body); err != nil {
		return nil, Violationf(req, "body of "+x.Method+" "+x.URL, "a Bundle of type collection of Parameters with one well-formed reportJob each, and no entry key when there are no jobs", "%v", err)
	}
	jobs, err := DecodeReportJobs(x.Body)
	if err != nil {
		return nil, Violationf(req, "body of "+x.Method+" "+x.URL, "a FHIR R4 Bundle of Parameters", "%v", err)
	}
	return jobs, nil
}

// DecodeReportJobs reads the status Bundle through the golang-fhir-models structs: one job per entry, in the
// entries' order.
func DecodeReportJobs(body []byte) ([]ReportJob, error) {
	bundle, err := fhir.UnmarshalBundle(body)
	if err != nil {
		return nil, fmt.Errorf("decode Bundle: %w", err)
	}
	jobs := make([]ReportJob, 0, len(bundle.Entry))
	for i, e := range bundle.Entry {
		params, err := fhir.UnmarshalParameters(e.Resource)
		if err != nil {
			return nil, fmt.Errorf("entry %d: decode Parameters: %w", i, err)
		}
		// One Parameters per scheduled report: exactly one reportJob. Other parameters are read past, as unknown
		// parts are: the OperationDefinition forbids neither.
		var reportJob *fhir.ParametersParameter
		named := 0
		for k := range params.Parameter {
			if params.Parameter[k].Name == "reportJob" {
				reportJob = &params.Parameter[k]
				named++
			}
		}
		if named != 1 {
			return nil, fmt.Errorf("entry %d: expected exactly one parameter named reportJob, got %d among %d parameters", i, named, len(params.Parameter))
		}
		job := ReportJob{Parameters: map[string]string{}}
		if e.FullUrl != nil {
			job.FullURL = *e.FullUrl
		}
		for _, part := range reportJob.Part {
			switch part.Name {
			case "reportClass":
				job.ReportClass = deref(part.ValueString)
			case "userId":
				job.UserID = deref(part.ValueString)
			case "status":
				job.Status = deref(part.ValueString)
			case "binary":
				if part.ValueReference != nil {
					job.Binary = deref(part.ValueReference.Reference)
				}
			case "created":
				job.Created = deref(part.ValueDateTime)
			case "started":
				job.Started = deref(part.ValueDateTime)
			case "ended":
				job.Ended = deref(part.ValueDateTime)
			case "parameters":
				nested, err := fhir.UnmarshalParameters(part.Resource)
				if err != nil {
					return nil, fmt.Errorf("entry %d: decode the nested parameters: %w", i, err)
				}
				for _, p := range nested.Parameter {
					job.Parameters[p.Name] = deref(p.ValueString)
				}
			}
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// NextLink is the url of a Bundle's link with relation "next", "" when there is none. The OperationDefinition
// of $get-report-job-status defines no paging (its one output is "return", 0..1 Bundle, of type collection;
// FHIR pages search and history sets, not collections), so the harness follows none: it only names one
// when a job it looks for is missing.
func NextLink(body []byte) string {
	var b struct {
		Link []struct {
			Relation string `json:"relation"`
			URL      string `json:"url"`
		} `json:"link"`
	}
	if json.Unmarshal(body, &b) != nil {
		return ""
	}
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// CheckReportJob holds one listed report job, in whatever state it is, to the structure its status promises:
// FHIR dateTimes in order (CheckJobTimes), and a job whose execution is over carries its end. The
// OperationDefinition's parts give the time of "creation, start, and end of execution": a DONE job ran to
// its end, and so did a FAILED job that started (FUT's example output gives both their end time); a FAILED job
// without a start failed before its execution began, and has no end of execution to give.
//
// A job without a status string (no status part, or one of another value[x]) is read as status "": it is
// neither running nor stopped with a status no source names, and fails here, where the wait on it would take
// it for either.
func CheckReportJob(req string, job int, j ReportJob) error {
	if j.Status == "" {
		return Violationf(req, fmt.Sprintf("report job %d status", job), "a status part with a valueString (an open string; FUT's examples: DONE, FAILED)", "none")
	}
	if err := CheckJobTimes(req, job, j); err != nil {
		return err
	}
	if j.Ended != "" {
		return nil
	}
	switch {
	case j.Status == "DONE":
		return Violationf(req, fmt.Sprintf("report job %d (status %s)", job, j.Status), "an ended dateTime on a finished job: the end of its execution", "none")
	case j.Status == "FAILED" && j.Started != "":
		return Violationf(req, fmt.Sprintf("report job %d (status %s)", job, j.Status), "an ended dateTime on a finished job that started (started "+j.Started+"): the end of its execution", "none")
	}
	return nil
}

// CheckDistinctJobs: each report job is listed once. FHIR's bdl-7 forbids two entries of one fullUrl in a
// collection (their resources carry no meta.versionId), and a job's own Binary is its identity in FUT: two
// entries referencing one Binary are one job listed twice. Empty values are not compared.
func CheckDistinctJobs(req string, jobs []ReportJob) error {
	fullURLs, binaries := map[string]int{}, map[string]int{}
	for i, j := range jobs {
		if first, ok := fullURLs[j.FullURL]; ok && j.FullURL != "" {
			return Violationf(req, fmt.Sprintf("fullUrl of entries %d and %d", first, i), "a fullUrl unique in the Bundle (FHIR bdl-7)", "%q twice", j.FullURL)
		}
		fullURLs[j.FullURL] = i
		ref := binaryKey(j.Binary)
		if first, ok := binaries[ref]; ok && ref != "" {
			return Violationf(req, fmt.Sprintf("report jobs %d and %d", first, i), "each report job listed once: one entry per job, each with its own Binary", "both reference %s", j.Binary)
		}
		binaries[ref] = i
	}
	return nil
}

// CheckJobTimes: created, started and ended are FHIR dateTimes, in that order where present. A value
// without a time of day (a day, a month, a year) is the span of time it names, widened by the fourteen hours a
// zone may shift it, since it has none: two values are out of order only when the later one's span ends
// before the earlier one's begins. A bare-date created after a started that has a time of day fails; a date
// and a time on the same day never do. job is the entry's index, for the message.
func CheckJobTimes(req string, job int, j ReportJob) error {
	type stamp struct {
		name, value string
		lo, hi      time.Time // the span the value names: one instant when it has a time of day
	}
	var earlier []stamp
	for k, v := range []string{j.Created, j.Started, j.Ended} {
		name := []string{"created", "started", "ended"}[k]
		if v == "" {
			continue
		}
		lo, hi, err := fhirSpan(v)
		if err != nil {
			return Violationf(req, fmt.Sprintf("report job %d %s", job, name), "a FHIR dateTime", "%q", v)
		}
		// Every earlier value, not only the previous one: a started between them must not hide an ended
		// before created.
		for _, e := range earlier {
			if hi.Before(e.lo) {
				return Violationf(req, fmt.Sprintf("report job %d times", job), fmt.Sprintf("%s ≤ %s", e.name, name), "%s %s after %s %s", e.name, e.value, name, v)
			}
		}
		earlier = append(earlier, stamp{name, v, lo, hi})
	}
	return nil
}

// zoneReach is how far a time zone moves a date: UTC-12:00 to UTC+14:00, both ways at most fourteen hours.
const zoneReach = 14 * time.Hour

// fhirSpan is the span of time a FHIR dateTime names: one instant with a time of day, else its year, month or
// day, widened by zoneReach on both sides (the value names no zone).
func fhirSpan(v string) (lo, hi time.Time, err error) {
	t, hasTime, err := ParseFHIRDateTime(v)
	switch {
	case err != nil:
		return t, t, err
	case hasTime:
		return t, t, nil
	}
	end := t.AddDate(1, 0, 0) // a year
	switch len(v) {
	case len("2006-01"):
		end = t.AddDate(0, 1, 0)
	case len("2006-01-02"):
		end = t.AddDate(0, 0, 1)
	}
	return t.Add(-zoneReach), end.Add(zoneReach), nil
}

// IsAbsoluteOrURN tells a Bundle fullUrl FHIR accepts: an absolute URL or a urn:uuid:/urn:oid:.
func IsAbsoluteOrURN(s string) bool {
	switch {
	case strings.HasPrefix(s, "urn:uuid:"):
		return uuidURN.MatchString(s)
	case strings.HasPrefix(s, "urn:oid:"):
		return oidURN.MatchString(s)
	}
	return CheckAbsoluteURL("", "", s) == nil
}

// FHIR's uuid and oid types (R4 datatypes: "urn:uuid:" + a UUID, lower case; "urn:oid:" + an OID).
var (
	uuidURN = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	oidURN  = regexp.MustCompile(`^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$`)
)

var historySuffix = regexp.MustCompile(`/_history/[^/]+$`)

// binaryKey is the Binary/<id> a reference names, whatever its host or version, as ReferencesBinary reads it.
func binaryKey(ref string) string {
	ref = historySuffix.ReplaceAllString(ref, "")
	if i := strings.LastIndex(ref, "/Binary/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

// ReferencesBinary: a relative or absolute reference, of any host (FUT's point at the reporting service's
// public host), to Binary/<id>, optionally versioned.
func ReferencesBinary(ref, id string) bool { return binaryKey(ref) == "Binary/"+id }
