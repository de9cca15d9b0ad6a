package harness

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// ab2dCapability is the R4 CapabilityStatement CMS's AB2D serves (CMSgov/ab2d,
// AB2DCapabilityStatementFactory.generateR4CapabilityStatement), with its server URL: every operation is
// declared at rest level, its export by the URL of [base]/Patient/$export, no system-level $export.
func ab2dCapability(server string) string {
	return `{"resourceType":"CapabilityStatement","status":"draft","date":"2020-02-22T00:00:00-05:00",
		"publisher":"Centers for Medicare &amp; Medicaid Services","kind":"requirements",
		"software":{"name":"AB2D","version":"V2","releaseDate":"2020-05-01T00:00:00-04:00"},
		"implementation":{"description":"AB2D FHIR R4 Bulk Data Download Implementation","url":"` + server + `"},
		"fhirVersion":"4.0.0","format":["application/json","application/fhir+json"],
		"rest":[{"mode":"server","security":{"cors":true,"service":[{"coding":[{"system":"http://hl7.org/fhir/ValueSet/restful-security-service","code":"OAuth","display":"OAuth"}],"text":"OAuth"}]},
		"interaction":[{"code":"batch"}],"operation":[
		{"name":"export","definition":"` + server + `/Patient/$export"},
		{"name":"export by contract","definition":"` + server + `/Group/{contractNumber}/$export"},
		{"name":"cancel","definition":"` + server + `/Job/{jobUuid}/$status"},
		{"name":"status","definition":"` + server + `/Job/{jobUuid}/$status"},
		{"name":"download","definition":"` + server + `/Job/{jobUuid}/file/{filename}"},
		{"name":"capability","definition":"` + server + `/metadata"}]}]}`
}

// ab2dLike answers as AB2D's Spring application does for the requests a bulkdata run starts with: its
// CapabilityStatement at [base]/metadata, and for [base]/$export, which no controller maps (AB2D exports at
// [base]/Patient/$export and [base]/Group/{contractNumber}/$export only), Spring Boot's 404 error body. A
// request without the bearer token is refused 401 with no body, as AB2D's JwtTokenAuthenticationFilter does.
func ab2dLike(capability func(server string) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		server := "http://" + r.Host + "/fhir"
		if r.URL.Path == "/fhir/metadata" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(capability(server)))
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+refserver.DemoTokenA {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"timestamp":"2026-12-04T15:41:01.000+00:00","status":404,"error":"Not Found","path":"` + r.URL.Path + `"}`))
	})
}

// A server that exports at Patient and Group level only, as the HL7 IG allows ("Endpoint - All Patients",
// "Endpoint - Group of Patients" and "Endpoint - System Level Export" are three endpoints a server may offer;
// its "Server Capability Documentation" asks "Does the server support system-wide (or all-patients, or
// Group-level) export?"), answers the system-level kick-off 404. In bulkdata that is no deviation of
// EXP-KICKOFF: the run ends in the preflight, checking nothing and charging nothing. AB2D answered so, and
// failed EXP-KICKOFF (MUST) before.
func TestBulkdataAServerWithoutASystemLevelExportIsNotFailed(t *testing.T) {
	target := serve(t, ab2dLike(ab2dCapability))
	wantPreflightError(t, Config{Target: target, Token: refserver.DemoTokenA, Profile: "bulkdata"},
		"offers no system-level export: GET "+target+"/$export?", "set EXPORT_KICKOFF=Patient/$export")
	// kicking off where the server exports, the preflight asks the system level nothing: AB2D-like, the
	// Patient-level kick-off too answers 404 here, and the scenarios judge that
	res, out, err := runAgainst(t, ab2dLike(ab2dCapability), Config{Token: refserver.DemoTokenA, Profile: "bulkdata", ExportKickoff: "Patient/$export", Tags: "@EXP-KICKOFF"})
	var pe *PreflightError
	if errors.As(err, &pe) || res.Passed || len(res.Failures) == 0 || res.Failures[0].Requirement != "EXP-KICKOFF" || !strings.Contains(out, "/fhir/Patient/$export?") {
		t.Fatalf("with EXPORT_KICKOFF=Patient/$export want the scenarios to kick off there, got passed=%v failures=%+v err=%v\n%s", res.Passed, res.Failures, err, out)
	}
}

// The same 404 from a server whose CapabilityStatement declares the IG's system-level $export is the server
// failing its own operation: the scenarios judge it, and EXP-KICKOFF fails.
func TestBulkdataADeclaredSystemLevelExportAnswering404FailsTheKickoff(t *testing.T) {
	declared := func(string) string {
		return `{"resourceType":"CapabilityStatement","fhirVersion":"4.0.1","rest":[{"mode":"server","operation":[
			{"name":"export","definition":"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}]}]}`
	}
	res, out, err := runAgainst(t, ab2dLike(declared), Config{Token: refserver.DemoTokenA, Profile: "bulkdata", Tags: "@EXP-KICKOFF"})
	var pe *PreflightError
	if errors.As(err, &pe) {
		t.Fatalf("want the scenarios to judge the 404, got a preflight error: %v", err)
	}
	if res.Passed || len(res.Failures) == 0 || res.Failures[0].Requirement != "EXP-KICKOFF" || !strings.Contains(out, "404 Not Found") {
		t.Fatalf("want EXP-KICKOFF failed on the 404, got passed=%v failures=%+v err=%v\n%s", res.Passed, res.Failures, err, out)
	}
}

// fut requires FUT's system-level $export (FUT-OD-EXPORT): there the preflight probes $export-poll-status,
// and a server without a system-level export is left to the scenarios, which fail it.
func TestFUTAServerWithoutASystemLevelExportIsJudged(t *testing.T) {
	res, _, err := runAgainst(t, ab2dLike(ab2dCapability), Config{Token: refserver.DemoTokenA, Profile: "fut", Tags: "@EXP-KICKOFF"})
	var pe *PreflightError
	if errors.As(err, &pe) || res.Passed || len(res.Failures) == 0 || res.Failures[0].Requirement != "EXP-KICKOFF" {
		t.Fatalf("want EXP-KICKOFF failed in fut, got passed=%v failures=%+v err=%v", res.Passed, res.Failures, err)
	}
}

func TestDeclaresSystemExport(t *testing.T) {
	for def, want := range map[string]bool{
		"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export":              true,
		"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export":      false,
		"http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export":        false,
		"https://sandbox.ab2d.cms.gov/api/v2/fhir/Patient/$export":                false,
		"https://sandbox.ab2d.cms.gov/api/v2/fhir/Group/{contractNumber}/$export": false,
		"": true,
	} {
		cs := capabilityStatement{Rest: []struct {
			Operation []capabilityOperation `json:"operation"`
			Resource  []struct {
				Operation []capabilityOperation `json:"operation"`
			} `json:"resource"`
		}{{Operation: []capabilityOperation{{Name: "export", Definition: def}}}}}
		if got := cs.declaresSystemExport(); got != want {
			t.Errorf("export defined by %q: declaresSystemExport %v, want %v", def, got, want)
		}
	}
	if (capabilityStatement{}).declaresSystemExport() {
		t.Error("a statement without operations declares no system-level export")
	}
}
