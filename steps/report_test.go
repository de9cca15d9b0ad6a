package steps

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
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
	w.last = &check.Exchange{Method: "POST", URL: "http://fut.example/fhir/$get-report-job-status", Status: 200,
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
	if err := w.everyJobIsWellFormed(w.last); err != nil {
		t.Fatalf("the spec's example must pass: %v", err)
	}
	warnings := findings.Warnings()
	if len(warnings) != 1 || warnings[0].Requirement != "RJS-FULLURL" || !strings.Contains(warnings[0].Message, "ce35bcd5-4bb2-4c6e-b230-5347df1fe9bc") {
		t.Fatalf("want one RJS-FULLURL warning naming the bare UUID, got %+v", warnings)
	}
	strictWorld, _ := worldWithResponse(t, body, true)
	strictWorld.scenarioReqs = []string{"RJS-STRUCTURE", "RJS-FULLURL"} // the scenario that checks RJS-FULLURL
	var v *check.Violation
	if err := strictWorld.everyJobIsWellFormed(strictWorld.last); !errors.As(err, &v) || v.Requirement != "RJS-FULLURL" {
		t.Fatalf("under STRICT the bare UUID must fail RJS-FULLURL, got %v", err)
	}
	// the scenario of a finished job checks RJS-STRUCTURE only: there the bare UUID stays a warning
	finishedWorld, strictFindings := worldWithResponse(t, body, true)
	finishedWorld.scenarioReqs = []string{"RJS-STRUCTURE"}
	if err := finishedWorld.everyJobIsWellFormed(finishedWorld.last); err != nil || len(strictFindings.Warnings()) != 1 {
		t.Fatalf("under STRICT, a scenario not tagged RJS-FULLURL must warn and pass, got %v, warnings %+v", err, strictFindings.Warnings())
	}
}

func TestMalformedReportJobsFailStructure(t *testing.T) {
	for _, name := range []string{"report-job.binary-as-string.json", "report-job.two-report-jobs.json", "report-job.bad-created.json", "report-bundle.empty-entry-array.json"} {
		body := example(t, "invalid/"+name)
		w, _ := worldWithResponse(t, body, false)
		err := w.everyJobIsWellFormed(w.last)
		if !errors.Is(err, check.ErrNonConformant) {
			t.Errorf("%s: want a violation, got %v", name, err)
		}
	}
}

// User B's status is compared with user A's userId, which the run knows from A's placeholder Binary or A's
// own status; knowing neither, the comparison is reported not checked rather than passed unseen, and a status
// of B's with no jobs has nothing to compare.
func TestCrossUserUserIDNotComparedWithoutTheOwnersIsNotChecked(t *testing.T) {
	w, findings := worldWithResponse(t, nil, false)
	b := []check.ReportJob{{UserID: "0aaca7cd-67c3-48dd-a8c4-0cceecb5d276", Binary: "Binary/8"}}
	w.report = reportState{owner: "A", binaryID: "7", statusUser: "B", jobs: b}
	if err := w.everyJobCarriesOneUserIDOtherThan(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	left := findings.NotChecked()
	if len(left) != 1 || !strings.Contains(left[0].Message, "not compared with user A's") {
		t.Fatalf("want the comparison reported not checked, got %+v", left)
	}
	w, findings = worldWithResponse(t, nil, false)
	w.report = reportState{owner: "A", binaryID: "7", binaryUser: b[0].UserID, statusUser: "B", jobs: b}
	if err := w.everyJobCarriesOneUserIDOtherThan(context.Background(), "A"); !errors.Is(err, check.ErrNonConformant) || len(findings.NotChecked()) != 0 {
		t.Fatalf("B's job with A's userId must fail, got %v, not checked %+v", err, findings.NotChecked())
	}
	w, findings = worldWithResponse(t, nil, false)
	w.report = reportState{owner: "A", binaryID: "7", statusUser: "B"}
	if err := w.everyJobCarriesOneUserIDOtherThan(context.Background(), "A"); err != nil || len(findings.NotChecked()) != 0 {
		t.Fatalf("no job of B's: nothing to compare, got %v, not checked %+v", err, findings.NotChecked())
	}
}

// The OperationDefinition asks for "a Bundle containing Parameters resources for each scheduled report", whose
// reportJob parts describe the job: it forbids no other parameter beside reportJob, and the harness allows
// unknown parts, so an entry with one more parameter is well-formed. Two reportJob parameters in one entry
// (two jobs in one Parameters) still fail.
func TestAnEntryWithAnotherParameterBesideItsReportJobIsWellFormed(t *testing.T) {
	od := string(example(t, "get-report-job-status.od-example.json"))
	extra := strings.Replace(od, `"parameter": [`, `"parameter": [{"name": "note", "valueString": "generated nightly"},`, 1)
	if extra == od {
		t.Fatal("the example changed: no parameter array to add to")
	}
	w, _ := worldWithResponse(t, []byte(extra), true)
	if err := w.everyJobIsWellFormed(w.last); err != nil && !strings.Contains(err.Error(), "RJS-FULLURL") {
		t.Fatalf("an entry with another parameter beside reportJob must pass RJS-STRUCTURE: %v", err)
	}
	jobs, err := check.DecodeReportJobs([]byte(extra))
	if err != nil || len(jobs) != 1 || jobs[0].Status != "DONE" || !check.ReferencesBinary(jobs[0].Binary, "7") {
		t.Fatalf("the job is read from its reportJob parameter: %+v, %v", jobs, err)
	}
	i := strings.Index(od, `{
            "name": "reportJob"`)
	j := strings.LastIndex(od, `]
      }
    }
  ]`)
	if i < 0 || j < 0 {
		t.Fatal("the example changed: cannot find its reportJob parameter")
	}
	job := strings.TrimRight(strings.TrimSpace(od[i:j]), "\n ")
	twice := strings.Replace(od, job, job+",\n"+job, 1)
	w, _ = worldWithResponse(t, []byte(twice), false)
	if err := w.everyJobIsWellFormed(w.last); !errors.Is(err, check.ErrNonConformant) || !strings.Contains(err.Error(), "RJS-STRUCTURE") {
		t.Fatalf("two reportJob parameters in one entry must fail RJS-STRUCTURE, got %v", err)
	}
	if _, err := check.DecodeReportJobs([]byte(twice)); err == nil {
		t.Fatal("DecodeReportJobs must refuse an entry with two reportJob parameters")
	}
}
