package harness

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// outputFormats serves h, counting the kick-offs by the _outputFormat they name (formats) and the DELETEs of
// their polling locations (deletes); with fullTypeOnly it refuses, as an IG server that knows only the full
// media type would, a kick-off whose _outputFormat is anything but application/fhir+ndjson: 400 with an
// OperationOutcome, no job started.
func outputFormats(h http.Handler, fullTypeOnly bool, formats *sync.Map, deletes *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes.Add(1)
		}
		if strings.HasSuffix(r.URL.Path, "/$export") && r.Method == http.MethodGet {
			f := r.URL.Query().Get("_outputFormat")
			n, _ := formats.LoadOrStore(f, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
			if fullTypeOnly && f != "" && f != "application/fhir+ndjson" {
				w.Header().Set("Content-Type", "application/fhir+json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"_outputFormat ` + f + ` is not supported"}]}`))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func formatCount(formats *sync.Map, f string) int64 {
	if n, ok := formats.Load(f); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

// BDA2 "Query Parameters", _outputFormat: "The server SHALL accept the full content type of
// application/fhir+ndjson as well as the abbreviated representations application/ndjson and ndjson."
// Inferno's Bulk Data test kit (inferno-framework/bulk-data-test-kit, export_parameters_tests.rb
// perform_outputFormat_param_test) kicks off with each of the three and fails any answer but 202. The
// harness sent the full type alone, so a server refusing the abbreviations passed every scenario: a false pass
// of an IG SHALL that Inferno checks. EXP-OUTPUT-FORMAT kicks off with each abbreviation: MUST in bulkdata,
// MAY in fut and hapi-8.0 (FUT names the full type alone; HAPI's code takes the three), reported there, never
// failed.
func TestAServerRefusingTheIGsOutputFormatAbbreviationsFailsInBulkdata(t *testing.T) {
	t.Run("refused: EXP-OUTPUT-FORMAT fails", func(t *testing.T) {
		t.Parallel()
		var formats sync.Map
		var deletes atomic.Int64
		h := outputFormats(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), true, &formats, &deletes)
		// the whole export feature: before EXP-OUTPUT-FORMAT, every scenario of it passed this server
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Features: []string{"export"}})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if failed := failedRequirements(res); res.Passed || strings.Join(failed, ",") != "EXP-OUTPUT-FORMAT" {
			t.Fatalf("want EXP-OUTPUT-FORMAT alone failed (application/ndjson and ndjson refused), got passed=%v failed=%v\n%s", res.Passed, failed, tailOf(out))
		}
		for _, f := range []string{"application/ndjson", "ndjson"} {
			if formatCount(&formats, f) == 0 {
				t.Errorf("no kick-off with _outputFormat=%s was sent\n%s", f, tailOf(out))
			}
		}
		if !strings.Contains(out, "400 Bad Request") {
			t.Errorf("the failure must name the refusal's status\n%s", tailOf(out))
		}
	})
	t.Run("accepted: passes, each job cancelled", func(t *testing.T) {
		t.Parallel()
		var formats sync.Map
		var deletes atomic.Int64
		h := outputFormats(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), false, &formats, &deletes)
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT-FORMAT"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if !res.Passed || len(res.Failures) != 0 {
			t.Fatalf("want EXP-OUTPUT-FORMAT passed, got passed=%v failed=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
		}
		if formatCount(&formats, "application/ndjson") != 1 || formatCount(&formats, "ndjson") != 1 {
			t.Errorf("want one kick-off with each abbreviation, got application/ndjson %d, ndjson %d", formatCount(&formats, "application/ndjson"), formatCount(&formats, "ndjson"))
		}
		if deletes.Load() < 2 {
			t.Errorf("want the two jobs left running cancelled at the end of their scenarios, got %d DELETEs", deletes.Load())
		}
	})
	t.Run("fut: a MAY, reported, never failed", func(t *testing.T) {
		t.Parallel()
		var formats sync.Map
		var deletes atomic.Int64
		h := outputFormats(refserverHandler(t, refserver.Config{}), true, &formats, &deletes)
		res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF,@EXP-OUTPUT-FORMAT"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if !res.Passed || len(res.Failures) != 0 {
			t.Fatalf("fut: want a pass, EXP-OUTPUT-FORMAT a MAY, got passed=%v failed=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
		}
		reported := map[string]bool{} // the scenarios whose refused kick-off was reported
		for _, f := range res.Findings.Warnings() {
			if f.Requirement == "EXP-OUTPUT-FORMAT" && strings.Contains(f.Message, "400 Bad Request") {
				reported[f.Scenario] = true
			}
		}
		if len(reported) != 2 || formatCount(&formats, "application/ndjson") != 1 || formatCount(&formats, "ndjson") != 1 {
			t.Errorf("fut: want each refused abbreviation reported (MAY), in 2 scenarios, got %d, %+v\n%s", len(reported), res.Findings.Warnings(), tailOf(out))
		}
	})
}
