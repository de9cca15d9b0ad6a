package steps

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// worldWithResponse is a World whose last response is body, as if the server had just answered it.
func worldWithResponse(t *testing.T, body []byte, strict bool) (*World, *Findings) {
	t.Helper()
	reqs, err := features.Requirements()
	if err != nil {
		t.Fatal(err)
	}
	findings := &Findings{}
	target, err := Target{ExportBaseURL: "http://fut.example/fhir", ReportBaseURL: "http://fut.example/fhir", Strict: strict, Findings: findings}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	w := &World{target: &target, requirements: reqs, scenario: "unit"}
	w.last = &Exchange{Method: "POST", URL: "http://fut.example/fhir/$get-report-job-status", Status: 200,
		Header: http.Header{"Content-Type": {"application/fhir+json"}}, Body: body}
	return w, findings
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := fixtures.Example(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The OperationDefinition's own example output passes the structural checks; its bare-UUID fullUrl is a
// warning (RJS-FULLURL), not a failure, and a failure under STRICT.
func TestSpecExamplePassesStructureWithAFullUrlWarning(t *testing.T) {
	body := example(t, "get-report-job-status.od-example.json")
	w, findings := worldWithResponse(t, body, false)
	if err := w.everyJobIsWellFormed(context.Background()); err != nil {
		t.Fatalf("the spec's example must pass: %v", err)
	}
	warnings := findings.Warnings()
	if len(warnings) != 1 || warnings[0].Requirement != "RJS-FULLURL" || !strings.Contains(warnings[0].Message, "ce35bcd5-4bb2-4c6e-b230-5347df1fe9bc") {
		t.Fatalf("want one RJS-FULLURL warning naming the bare UUID, got %+v", warnings)
	}
	strictWorld, _ := worldWithResponse(t, body, true)
	var v *Violation
	if err := strictWorld.everyJobIsWellFormed(context.Background()); !errors.As(err, &v) || v.Requirement != "RJS-FULLURL" {
		t.Fatalf("under STRICT the bare UUID must fail RJS-FULLURL, got %v", err)
	}
}

func TestSpecExampleDecodesIntoTheReportJobParts(t *testing.T) {
	jobs, err := decodeReportJobs(example(t, "get-report-job-status.od-example.json"))
	if err != nil || len(jobs) != 1 {
		t.Fatalf("decode: %v, %d jobs", err, len(jobs))
	}
	j := jobs[0]
	if j.reportClass != "com.systematic.ehealth.reporting.reports.PatientsUsageReport" || j.userID != "0aaca7cd-67c3-48dd-a8c4-0cceecb5d276" ||
		j.status != "DONE" || !referencesBinary(j.binary, "7") || j.parameters["anonymization"] != "None" ||
		j.created != "2023-10-12T09:51:50+00:00" || j.ended != "2023-10-12T09:51:51+00:00" {
		t.Fatalf("decoded %+v", j)
	}
}

func TestMalformedReportJobsFailStructure(t *testing.T) {
	for _, name := range []string{"report-job.binary-as-string.json", "report-job.two-report-jobs.json", "report-job.bad-created.json", "report-bundle.empty-entry-array.json"} {
		body := example(t, "invalid/"+name)
		w, _ := worldWithResponse(t, body, false)
		err := w.everyJobIsWellFormed(context.Background())
		if !errors.Is(err, ErrNonConformant) {
			t.Errorf("%s: want a violation, got %v", name, err)
		}
	}
}

func TestJobTimesMustBeOrdered(t *testing.T) {
	ok := reportJob{created: "2023-10-12T09:51:50+00:00", started: "2023-10-12T09:51:50+00:00", ended: "2023-10-12T09:51:51+00:00"}
	if err := checkJobTimes(0, ok); err != nil {
		t.Fatal(err)
	}
	partial := reportJob{created: "2023-10-12", started: "2023-10-11T09:51:50+00:00"} // not comparable: a date against a time
	if err := checkJobTimes(0, partial); err != nil {
		t.Fatalf("a partial date is not compared: %v", err)
	}
	bad := reportJob{created: "2023-10-12T09:51:50+00:00", started: "2023-10-12T09:51:49+00:00"}
	if err := checkJobTimes(0, bad); !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "created ≤ started") {
		t.Fatalf("started before created must fail, got %v", err)
	}
	if err := checkJobTimes(0, reportJob{created: "12/10/2023"}); !errors.Is(err, ErrNonConformant) {
		t.Fatalf("a non-FHIR dateTime must fail, got %v", err)
	}
}

func TestReferencesBinary(t *testing.T) {
	for ref, want := range map[string]bool{
		"Binary/21": true, "https://reporting.local/fhir/Binary/21": true, "Binary/21/_history/2": true,
		"Binary/121": false, "https://x/fhir/Binary/2": false, "DocumentReference/21": false,
	} {
		if got := referencesBinary(ref, "21"); got != want {
			t.Errorf("referencesBinary(%q, 21) = %v, want %v", ref, got, want)
		}
	}
}
