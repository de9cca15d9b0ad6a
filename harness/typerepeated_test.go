package harness

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// typeKickoffs serves h, recording the _type values of every kick-off by GET (one entry a kick-off, its values
// joined by "&": "Patient&Observation" is _type repeated, "Patient,Observation" one comma list) and counting
// DELETEs. refuse says which kick-offs it refuses, as a server would that binds _type once (Oracle Health's
// Millennium, by its documentation and Cumulus ETL's notes) or supports no _type at all: 400 with an
// OperationOutcome, no job started.
type typeKickoffs struct {
	mu      sync.Mutex
	types   []string
	deletes atomic.Int64
}

func (k *typeKickoffs) handler(h http.Handler, refuse func(types []string) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			k.deletes.Add(1)
		}
		if strings.HasSuffix(r.URL.Path, "/$export") && r.Method == http.MethodGet {
			types := r.URL.Query()["_type"]
			k.mu.Lock()
			k.types = append(k.types, strings.Join(types, "&"))
			k.mu.Unlock()
			if refuse(types) {
				w.Header().Set("Content-Type", "application/fhir+json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"_type may be given once"}]}`))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (k *typeKickoffs) sent(types string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, t := range k.types {
		if t == types {
			n++
		}
	}
	return n
}

func refuseRepeated(types []string) bool { return len(types) > 1 }
func refuseAnyType(types []string) bool  { return len(types) > 0 }

// BDA2 "Bulk Data Kick-off Request": "A client MAY repeat kick-off parameters that accept comma delimited
// values multiple times in a kick-off request. The server SHALL treat the values provided as if they were
// comma delimited values within a single instance of the parameter." SMART's Bulk Data Tester
// (smart-on-fhir/bdt src/testSuite/kick-off.test.ts @ 1096496e, "Accepts multiple _type parameters") kicks off
// with two types so and fails any answer but a successful kick-off. The harness sent _type once, comma-separated,
// so a server that refuses it repeated passed every scenario. EXP-TYPE-REPEATED: MUST in bulkdata, MAY in fut
// and hapi-8.0 (FUT's _type is 0..1).
func TestAServerRefusingARepeatedTypeFailsInBulkdata(t *testing.T) {
	t.Run("refused and the comma list accepted: EXP-TYPE-REPEATED fails", func(t *testing.T) {
		t.Parallel()
		var k typeKickoffs
		h := k.handler(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), refuseRepeated)
		// the whole export feature: before EXP-TYPE-REPEATED, every scenario of it passed this server
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Features: []string{"export"}})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if failed := failedRequirements(res); res.Passed || strings.Join(failed, ",") != "EXP-TYPE-REPEATED" {
			t.Fatalf("want EXP-TYPE-REPEATED alone failed (_type repeated refused), got passed=%v failed=%v\n%s", res.Passed, failed, tailOf(out))
		}
		if k.sent("Patient&Observation") != 1 || k.sent("Patient,Observation") != 1 {
			t.Errorf("want one kick-off with _type repeated and one with the same types once, got %q", k.types)
		}
		if !strings.Contains(out, "400 Bad Request") || !strings.Contains(out, "_type=Patient&_type=Observation") {
			t.Errorf("the failure must show the repeated kick-off and its refusal\n%s", tailOf(out))
		}
	})
	t.Run("the comma list refused too: skipped and not failed", func(t *testing.T) {
		t.Parallel()
		var k typeKickoffs
		h := k.handler(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), refuseAnyType)
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-TYPE-REPEATED"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if len(res.Failures) != 0 {
			t.Fatalf("a server supporting no _type (BDA2: optional for a server) must not fail, got %v\n%s", failedRequirements(res), tailOf(out))
		}
		skips := res.Findings.Skips()
		if len(skips) != 1 || skips[0].Requirement != "EXP-TYPE-REPEATED" || !strings.Contains(skips[0].Message, "_type=Patient,Observation answered 400 Bad Request") {
			t.Errorf("want EXP-TYPE-REPEATED skipped, naming the refused comma list, got %+v\n%s", skips, tailOf(out))
		}
	})
	t.Run("fut: a MAY reported and never failed", func(t *testing.T) {
		t.Parallel()
		var k typeKickoffs
		h := k.handler(refserverHandler(t, refserver.Config{}), refuseRepeated)
		res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF,@EXP-TYPE-REPEATED"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if !res.Passed || len(res.Failures) != 0 {
			t.Fatalf("fut: want a pass, EXP-TYPE-REPEATED a MAY, got passed=%v failed=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
		}
		reported := false
		for _, f := range res.Findings.Warnings() {
			reported = reported || f.Requirement == "EXP-TYPE-REPEATED" && strings.Contains(f.Message, "400 Bad Request")
		}
		if !reported {
			t.Errorf("fut: want the refused repeated _type reported (MAY), got %+v\n%s", res.Findings.Warnings(), tailOf(out))
		}
	})
}

// A server that treats a repeated _type as one comma list, as BDA2 requires, passes EXP-TYPE-REPEATED in every
// profile, the job it starts cancelled at the scenario's end; the two types are EXPORT_TYPES' first two, and
// with one type in EXPORT_TYPES the scenario is skipped, no type the run does not export sent.
func TestARepeatedTypeAcceptedPassesInEveryProfile(t *testing.T) {
	for _, p := range []refserver.Profile{refserver.ProfileFUT, refserver.ProfileBulkData, refserver.ProfileHAPI80} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			var k typeKickoffs
			h := k.handler(refserverHandler(t, refserver.Config{Profile: p}), func([]string) bool { return false })
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, Tags: "@EXP-TYPE-REPEATED"})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Warnings()) != 0 || len(res.Findings.Skips()) != 0 {
				t.Fatalf("want EXP-TYPE-REPEATED passed, got passed=%v failed=%v warnings=%+v skips=%+v\n%s", res.Passed, failedRequirements(res), res.Findings.Warnings(), res.Findings.Skips(), tailOf(out))
			}
			if k.sent("Patient&Observation") != 1 || k.sent("Patient,Observation") != 0 {
				t.Errorf("want one kick-off with _type repeated (Patient, Observation) and none with the comma list, got %q", k.types)
			}
			if k.deletes.Load() < 1 {
				t.Errorf("want the job left running cancelled at the end of the scenario, got no DELETE")
			}
		})
	}
	t.Run("EXPORT_TYPES: its first two", func(t *testing.T) {
		t.Parallel()
		var k typeKickoffs
		h := k.handler(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), func([]string) bool { return false })
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, ExportTypes: "Observation,CarePlan,Patient", Tags: "@EXP-TYPE-REPEATED"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if !res.Passed || len(res.Failures) != 0 {
			t.Fatalf("want a pass, got passed=%v failed=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
		}
		if k.sent("Observation&CarePlan") != 1 {
			t.Errorf("want a kick-off with _type=Observation&_type=CarePlan, got %q", k.types)
		}
	})
	t.Run("EXPORT_TYPES of one type: skipped", func(t *testing.T) {
		t.Parallel()
		var k typeKickoffs
		h := k.handler(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), func([]string) bool { return false })
		res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, ExportTypes: "Observation", Tags: "@EXP-TYPE-REPEATED"})
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
		if len(res.Failures) != 0 {
			t.Fatalf("want no failure, got %v\n%s", failedRequirements(res), tailOf(out))
		}
		skips := res.Findings.Skips()
		if len(skips) != 1 || !strings.Contains(skips[0].Message, "EXPORT_TYPES=Observation names one type") {
			t.Errorf("want the scenario skipped, naming EXPORT_TYPES, got %+v\n%s", skips, tailOf(out))
		}
		if slices.ContainsFunc(k.types, func(s string) bool { return strings.Contains(s, "&") }) {
			t.Errorf("no repeated _type may be sent with one type in EXPORT_TYPES, got %q", k.types)
		}
	})
}
