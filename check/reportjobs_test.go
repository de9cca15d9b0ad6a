package check

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fixtures.Example(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSpecExampleDecodesIntoTheReportJobParts(t *testing.T) {
	jobs, err := DecodeReportJobs(example(t, "get-report-job-status.od-example.json"))
	if err != nil || len(jobs) != 1 {
		t.Fatalf("decode: %v, %d jobs", err, len(jobs))
	}
	j := jobs[0]
	if j.ReportClass != "com.systematic.ehealth.reporting.reports.PatientsUsageReport" || j.UserID != "0aaca7cd-67c3-48dd-a8c4-0cceecb5d276" ||
		j.Status != "DONE" || !ReferencesBinary(j.Binary, "7") || j.Parameters["anonymization"] != "None" ||
		j.Created != "2023-10-12T09:51:50+00:00" || j.Ended != "2023-10-12T09:51:51+00:00" {
		t.Fatalf("decoded %+v", j)
	}
}

func TestJobTimesMustBeOrdered(t *testing.T) {
	ok := ReportJob{Created: "2023-10-12T09:51:50+00:00", Started: "2023-10-12T09:51:50+00:00", Ended: "2023-10-12T09:51:51+00:00"}
	if err := CheckJobTimes("RJS-STRUCTURE", 0, ok); err != nil {
		t.Fatal(err)
	}
	for _, sameDay := range []ReportJob{
		{Created: "2023-10-12", Started: "2023-10-12T00:00:01+00:00"},
		{Created: "2023-10-12", Started: "2023-10-11T23:30:00-05:00"}, // 04:30 on the 12th in UTC
		{Created: "2023-10-12T23:59:59+00:00", Started: "2023-10-12", Ended: "2023-10"},
		{Created: "2023-10-13", Started: "2023-10-12T20:00:00+00:00"}, // the 13th in UTC+14:00
	} {
		if err := CheckJobTimes("RJS-STRUCTURE", 0, sameDay); err != nil {
			t.Errorf("%+v: a date is the span of its day in any zone, and meets a time within it: %v", sameDay, err)
		}
	}
	for _, dayAfter := range []ReportJob{
		{Created: "2026-12-05", Started: "2026-12-03T09:29:27+00:00"},
		{Created: "2023-10-12T09:51:50+00:00", Ended: "2023-10-10"},
		{Created: "2023-11", Started: "2023-10-12T09:51:50+00:00"},
		{Created: "2024", Ended: "2023-12-29"},
	} {
		if err := CheckJobTimes("RJS-STRUCTURE", 0, dayAfter); !errors.Is(err, ErrNonConformant) {
			t.Errorf("%+v: a value whose whole span comes before an earlier one's must fail, got %v", dayAfter, err)
		}
	}
	bad := ReportJob{Created: "2023-10-12T09:51:50+00:00", Started: "2023-10-12T09:51:49+00:00"}
	if err := CheckJobTimes("RJS-STRUCTURE", 0, bad); !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "created ≤ started") {
		t.Fatalf("started before created must fail, got %v", err)
	}
	hidden := ReportJob{Created: "2023-10-12T09:51:50+00:00", Started: "2023-10-12", Ended: "2023-10-12T09:51:49+00:00"}
	if err := CheckJobTimes("RJS-STRUCTURE", 0, hidden); !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "created ≤ ended") {
		t.Fatalf("ended before created must fail even with a bare-date started between them, got %v", err)
	}
	if err := CheckJobTimes("RJS-STRUCTURE", 0, ReportJob{Created: "12/10/2023"}); !errors.Is(err, ErrNonConformant) {
		t.Fatalf("a non-FHIR dateTime must fail, got %v", err)
	}
}

func TestAFinishedJobCarriesEnded(t *testing.T) {
	running := ReportJob{Status: "RUNNING", Created: "2023-10-12T09:51:50+00:00", Started: "2023-10-12T09:51:50+00:00"}
	if err := CheckReportJob("RJS-STRUCTURE", 0, running); err != nil {
		t.Fatalf("a running job has no end yet: %v", err)
	}
	for _, status := range []string{"DONE", "FAILED"} {
		j := running
		j.Status = status
		err := CheckReportJob("RJS-STRUCTURE", 3, j)
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "report job 3 (status "+status+")") || !strings.Contains(err.Error(), "ended") {
			t.Fatalf("a %s job without ended must fail naming the job, got %v", status, err)
		}
		j.Ended = "2023-10-12T09:51:49+00:00"
		if err := CheckReportJob("RJS-STRUCTURE", 0, j); !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "≤ ended") {
			t.Fatalf("a %s job that ended before it started must fail, got %v", status, err)
		}
		j.Ended = "2023-10-12T09:51:51+00:00"
		if err := CheckReportJob("RJS-STRUCTURE", 0, j); err != nil {
			t.Fatalf("a %s job with its end in order: %v", status, err)
		}
	}
}

// A job stops with a terminal status, or with an ended time whatever its status: the specification
// enumerates no statuses, and a job that ended with one no source names is judged then, not waited on until
// MAX_WAIT.
func TestAJobStopsWithATerminalStatusOrAnEndedTime(t *testing.T) {
	for _, c := range []struct {
		job               ReportJob
		terminal, stopped bool
	}{
		{ReportJob{Status: "RUNNING"}, false, false},
		{ReportJob{Status: "DONE"}, true, true},
		{ReportJob{Status: "FAILED", Ended: "2023-10-12T09:51:51+00:00"}, true, true},
		{ReportJob{Status: "ERROR", Ended: "2023-10-12T09:51:51+00:00"}, false, true},
	} {
		if c.job.Terminal() != c.terminal || c.job.Stopped() != c.stopped {
			t.Errorf("%+v: Terminal %v, Stopped %v, want %v, %v", c.job, c.job.Terminal(), c.job.Stopped(), c.terminal, c.stopped)
		}
	}
}

func TestReferencesBinary(t *testing.T) {
	for ref, want := range map[string]bool{
		"Binary/21": true, "https://reporting.local/fhir/Binary/21": true, "Binary/21/_history/2": true,
		"Binary/121": false, "https://x/fhir/Binary/2": false, "DocumentReference/21": false,
	} {
		if got := ReferencesBinary(ref, "21"); got != want {
			t.Errorf("ReferencesBinary(%q, 21) = %v, want %v", ref, got, want)
		}
	}
}

// A fullUrl is an absolute URL with a host, or a urn:uuid:/urn:oid: as FHIR's uuid and oid types define
// them: the prefix alone is not enough.
func TestIsAbsoluteOrURN(t *testing.T) {
	for s, want := range map[string]bool{
		"urn:uuid:ce35bcd5-4bb2-4c6e-b230-5347df1fe9bc": true, "urn:oid:1.2.208.176.1.2": true,
		"https://fut.example/fhir/Parameters/1": true, "http://h/x": true,
		"urn:uuid:not a uuid": false, "urn:uuid:CE35BCD5-4BB2-4C6E-B230-5347DF1FE9BC": false, "urn:oid:1.02": false,
		"http://": false, "https:///Parameters/1": false, "ce35bcd5-4bb2-4c6e-b230-5347df1fe9bc": false, "Parameters/1": false,
	} {
		if got := IsAbsoluteOrURN(s); got != want {
			t.Errorf("IsAbsoluteOrURN(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestEachReportJobIsListedOnce(t *testing.T) {
	a := ReportJob{FullURL: "urn:uuid:1b2c1d3e-4f50-4a61-8b72-9c83d4e5f607", Binary: "Binary/7"}
	b := ReportJob{FullURL: "urn:uuid:2b2c1d3e-4f50-4a61-8b72-9c83d4e5f607", Binary: "Binary/8"}
	if err := CheckDistinctJobs("RJS-STRUCTURE", []ReportJob{a, b, {}, {}}); err != nil {
		t.Fatalf("two jobs, and two without fullUrl or binary: %v", err)
	}
	for name, jobs := range map[string][]ReportJob{
		"one fullUrl twice":                     {a, b, {FullURL: a.FullURL, Binary: "Binary/9"}},
		"one Binary twice":                      {a, b, {FullURL: "urn:uuid:3b2c1d3e-4f50-4a61-8b72-9c83d4e5f607", Binary: "Binary/8"}},
		"one Binary, once versioned, on a host": {a, {Binary: "https://r.example/fhir/Binary/7/_history/2"}},
	} {
		if err := CheckDistinctJobs("RJS-STRUCTURE", jobs); !errors.Is(err, ErrNonConformant) {
			t.Errorf("%s: want a violation, got %v", name, err)
		}
	}
}

// FHIR's dateTime and instant allow a leap second (ss = 60), which Go's RFC 3339 parser refuses: a job time or
// an instant that has one is valid and is the first instant of the next minute.
func TestALeapSecondIsAFHIRDateTime(t *testing.T) {
	j := ReportJob{Created: "2016-12-31T23:59:59Z", Started: "2016-12-31T23:59:60Z", Ended: "2017-01-01T00:00:00Z"}
	if err := CheckJobTimes("RJS-STRUCTURE", 0, j); err != nil {
		t.Fatalf("a leap second is a FHIR dateTime: %v", err)
	}
	at, hasTime, err := ParseFHIRDateTime("2016-12-31T23:59:60.5+00:00")
	if err != nil || !hasTime || !at.Equal(time.Date(2017, 1, 1, 0, 0, 0, 5e8, time.UTC)) {
		t.Fatalf("ParseFHIRDateTime: %v %v %v", at, hasTime, err)
	}
	if at, err := ParseFHIRInstant("2016-12-31T23:59:60Z"); err != nil || !at.Equal(time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseFHIRInstant: %v %v", at, err)
	}
	for _, bad := range []string{"2016-02-30T10:00:00Z", "2016-12-31T23:59:61Z"} {
		if _, _, err := ParseFHIRDateTime(bad); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
}

// The OperationDefinition's parts give the time of "creation, start, and end of execution": a job that FAILED
// before its execution started has neither a start nor an end of execution, and no source asks for an ended
// then (FUT's one FAILED example had started, and ended). A FAILED job that started, and a DONE job, have
// ended their execution and carry its end.
func TestAFailedJobThatNeverStartedNeedsNoEnded(t *testing.T) {
	never := ReportJob{Status: "FAILED", Created: "2023-10-12T09:51:50+00:00"}
	if err := CheckReportJob("RJS-STRUCTURE", 0, never); err != nil {
		t.Fatalf("a FAILED job that never started has no end of execution to give: %v", err)
	}
	for _, j := range []ReportJob{
		{Status: "FAILED", Created: "2023-10-12T09:51:50+00:00", Started: "2023-10-12T09:51:50+00:00"},
		{Status: "DONE", Created: "2023-10-12T09:51:50+00:00"},
	} {
		if err := CheckReportJob("RJS-STRUCTURE", 0, j); !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "ended") {
			t.Errorf("%+v: its execution ended, and it says not when: want a violation, got %v", j, err)
		}
	}
}

// A job read without a status (no status part, or one that is no valueString) fails, naming the part: the
// wait would otherwise take it for a running job, or, with an ended time, for one that stopped with a status
// no source names.
func TestAReportJobWithoutAStatusFails(t *testing.T) {
	j := ReportJob{Created: "2023-10-12T09:51:50+00:00", Ended: "2023-10-12T09:51:51+00:00"}
	if err := CheckReportJob("RJS-STRUCTURE", 2, j); !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "report job 2 status") {
		t.Fatalf("want a violation naming the status part, got %v", err)
	}
}

// FUT's reports are "a Base64 encoded .zip file containing JSON files": a zip archive of at least one file.
func TestADoneReportIsAZipArchiveOfFiles(t *testing.T) {
	archive := func(names ...string) []byte {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for _, n := range names {
			w, err := zw.Create(n)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write([]byte(`{}`))
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	if skipped, err := CheckReportArchive(archive("report.json")); err != nil || skipped != "" {
		t.Errorf("a zip of report.json: %v, not checked %q", err, skipped)
	}
	for name, data := range map[string][]byte{
		"text":            []byte("Report generated."),
		"no file":         archive(),
		"a directory":     archive("reports/"),
		"the placeholder": []byte("*NOT GENERATED YET*"),
	} {
		if _, err := CheckReportArchive(data); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}
