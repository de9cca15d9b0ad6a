package harness

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// patientLevelOnly answers as CMS's BCDA (CMSgov/bcda-app, bcda/web/router.go) does at its FHIR base: the
// kick-off is GET [base]/Patient/$export (or Group/{groupId}/$export), served here by the reference server's
// own $export; [base]/$export is no route, answered by its router's plain-text 404, and a POST to the
// kick-off by its 405 with no body. patient and system count the kick-offs sent to each level.
func patientLevelOnly(inner http.Handler, patient, system *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/Patient/$export") && r.Method == http.MethodGet:
			patient.Add(1)
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimSuffix(r.URL.Path, "/Patient/$export") + "/$export"
			r2.URL.RawPath = ""
			inner.ServeHTTP(w, r2)
		case strings.HasSuffix(r.URL.Path, "/Patient/$export"):
			w.WriteHeader(http.StatusMethodNotAllowed)
		case strings.HasSuffix(r.URL.Path, "/$export"):
			system.Add(1)
			http.NotFound(w, r) // chi's default: 404, "404 page not found", text/plain
		default:
			inner.ServeHTTP(w, r)
		}
	})
}

// The HL7 Bulk Data IG v2.0.0 defines three kick-off endpoints ("Bulk Data Kick-off Request": all patients,
// a group, the system level), and its CapabilityStatement bulk-data gives each the expectation SHOULD: a server
// that serves only Patient/$export and Group/[id]/$export, as BCDA does, is one of the IG's. In bulkdata the
// harness kicked off [base]/$export alone, so such a server failed EXP-KICKOFF and every scenario after it.
// EXPORT_KICKOFF names the endpoint; the default stays the system level (FUT's), whose 404 still fails
// EXP-KICKOFF where the CapabilityStatement (here the reference server's) declares a system-level $export;
// one that declares none ends the run in the preflight instead (systemexport_test.go).
func TestABulkdataServerWithoutSystemLevelExportIsKickedOffWhereItExports(t *testing.T) {
	t.Run("the system-level kick-off, by default and declared, fails EXP-KICKOFF", func(t *testing.T) {
		t.Parallel()
		var patient, system atomic.Int64
		h := patientLevelOnly(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"}), &patient, &system)
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if failed := failedRequirements(res); res.Passed || strings.Join(failed, ",") != "EXP-KICKOFF" || system.Load() == 0 || patient.Load() != 0 {
			t.Fatalf("want EXP-KICKOFF failed on [base]/$export's 404, got passed=%v failed=%v (system %d, patient %d kick-offs)\n%s", res.Passed, failed, system.Load(), patient.Load(), out)
		}
	})
	t.Run("EXPORT_KICKOFF=Patient/$export passes the export feature", func(t *testing.T) {
		t.Parallel()
		var patient, system atomic.Int64
		h := patientLevelOnly(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"}), &patient, &system)
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Features: []string{"export"}, ExportKickoff: "Patient/$export"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if !res.Passed || len(res.Failures) > 0 {
			t.Fatalf("want the export feature passed at Patient/$export, got passed=%v failed=%v\n%s", res.Passed, failedRequirements(res), out)
		}
		if system.Load() != 0 || patient.Load() == 0 {
			t.Fatalf("want every kick-off at Patient/$export (the preflight's too), got %d there and %d at [base]/$export\n%s", patient.Load(), system.Load(), out)
		}
	})
}

// EXPORT_KICKOFF is one of the IG's three endpoints, relative to the base, and other than $export only in
// bulkdata: FUT's $export is system-level.
func TestExportKickoffIsOneOfTheIGsEndpoints(t *testing.T) {
	for _, tc := range []struct{ kickoff, profile, want string }{
		{"$export", "", ""},
		{"$export", "hapi-8.0", ""},
		{"Patient/$export", "bulkdata", ""},
		{"Group/all/$export", "bulkdata", ""},
		{"Group/a.b-1/$export", "bulkdata", ""},
		{"Patient/$export", "", "only PROFILE=bulkdata"},
		{"Group/all/$export", "fut", "only PROFILE=bulkdata"},
		{"/Patient/$export", "bulkdata", "expected a kick-off endpoint relative to the FHIR base"},
		{"Patient/$export?_type=Patient", "bulkdata", "expected a kick-off endpoint"},
		{"Group//$export", "bulkdata", "expected a kick-off endpoint"},
		{"Observation/$export", "bulkdata", "expected a kick-off endpoint"},
		{"$export-poll-status", "bulkdata", "expected a kick-off endpoint"},
		{"https://other.example/fhir/$export", "bulkdata", "expected a kick-off endpoint"},
	} {
		err := Config{ExportKickoff: tc.kickoff, Profile: tc.profile}.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("EXPORT_KICKOFF=%q PROFILE=%q: want no error, got %v", tc.kickoff, tc.profile, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), "EXPORT_KICKOFF") || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("EXPORT_KICKOFF=%q PROFILE=%q: want an error saying %q, got %v", tc.kickoff, tc.profile, tc.want, err)
		}
	}
}

// The variable reaches the run from the environment, as every other.
func TestExportKickoffIsReadFromTheEnvironment(t *testing.T) {
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"EXPORT_KICKOFF": "Group/all/$export", "PROFILE": "bulkdata"}[k]
	})
	if err != nil || cfg.ExportKickoff != "Group/all/$export" {
		t.Fatalf("want EXPORT_KICKOFF read, got %q, %v", cfg.ExportKickoff, err)
	}
}
