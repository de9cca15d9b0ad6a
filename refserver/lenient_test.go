package refserver

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLenientKickoffReportsWhatItIgnored: with Prefer: handling=lenient the server processes a kick-off with
// unsupported parameters or types instead of refusing it, and then "SHOULD include a FHIR OperationOutcome
// resource for each of these parameters" in the manifest's error files (HL7 Bulk Data IG v2, Complete Status,
// `error`). Each error file is NDJSON of OperationOutcomes, served like an output file.
func TestLenientKickoffReportsWhatItIgnored(t *testing.T) {
	lenient := map[string]string{"Prefer": "respond-async, handling=lenient", "Cache-Control": "no-cache"}
	for _, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			e := newEnv(t, Config{Profile: p})
			r := e.do(req{method: http.MethodGet, url: "/$export?_type=Patient,Nope&_elements=id", token: tokenA, headers: lenient})
			wantStatus(t, r, http.StatusAccepted)
			poll := r.header.Get("Content-Location")
			e.clock.Advance(time.Hour)
			body := e.get(poll, tokenA)
			wantStatus(t, body, http.StatusOK)
			var m struct {
				Output []struct{ Type, URL string }
				Error  []struct {
					Type, URL string
					Count     *int
				}
			}
			decodeJSON(t, body.body, &m)
			if len(m.Output) != 1 || m.Output[0].Type != "Patient" {
				t.Fatalf("output: expected the Patient file only, got %s", body.body)
			}
			if len(m.Error) != 1 || m.Error[0].Type != "OperationOutcome" || !strings.HasPrefix(m.Error[0].URL, e.base+"/Binary/") {
				t.Fatalf("error: expected one OperationOutcome file, got %s", body.body)
			}
			if c := m.Error[0].Count; (c != nil) != p.countsOutput() || c != nil && *c != 2 {
				t.Fatalf("error: expected a count of 2 in bulkdata only, got %s", body.body)
			}
			file := e.get(m.Error[0].URL, tokenA)
			wantNDJSON(t, "error file", file, "OperationOutcome", 2)
			var said []string
			for _, line := range bytes.Split(bytes.TrimSpace(file.body), []byte("\n")) {
				var oo testOO
				if err := json.Unmarshal(line, &oo); err != nil || len(oo.Issue) != 1 || oo.Issue[0].Severity != "warning" || oo.Issue[0].Code != codeNotSupported {
					t.Fatalf("error file line: expected a one-issue warning OperationOutcome (not-supported), got %s", line)
				}
				said = append(said, oo.Issue[0].Diagnostics)
			}
			if all := strings.Join(said, "\n"); !strings.Contains(all, "_elements") || !strings.Contains(all, "Nope") {
				t.Fatalf("error file: expected the ignored _elements and the dropped type Nope named, got %q", all)
			}
			asBinary := e.do(req{method: http.MethodGet, url: m.Error[0].URL, token: tokenA, headers: map[string]string{"Accept": "application/fhir+json"}})
			wantStatus(t, asBinary, http.StatusOK)
			var bin struct {
				ResourceType, ContentType string
				Data                      []byte
			}
			decodeJSON(t, asBinary.body, &bin)
			if bin.ResourceType != "Binary" || !bytes.Equal(bin.Data, file.body) {
				t.Fatalf("error file as a Binary: expected its data to be the NDJSON file, got %s", asBinary.body)
			}
			wantOO(t, e.get(m.Error[0].URL, tokenB), http.StatusNotFound, sevError, codeNotFound)
			errorFile := m.Error[0].URL

			// A lenient kick-off that ignored nothing has no error file.
			r = e.do(req{method: http.MethodGet, url: "/$export?_type=Patient", token: tokenA, headers: lenient})
			e.clock.Advance(time.Hour)
			decodeJSON(t, e.get(r.header.Get("Content-Location"), tokenA).body, &m)
			if len(m.Error) != 0 {
				t.Fatalf("error: expected none when nothing was ignored, got %v", m.Error)
			}
			// The error file goes with its export when retention ends.
			e.clock.Advance(DefaultRetention)
			wantOO(t, e.get(errorFile, tokenA), http.StatusNotFound, sevError, codeNotFound)
		})
	}
}

// TestLenientKickoffsIgnoringOtherThingsAreNotReused: job reuse matches identical kick-offs only; two whose
// error files differ, because they ignored different parameters, get jobs of their own.
func TestLenientKickoffsIgnoringOtherThingsAreNotReused(t *testing.T) {
	e := newEnv(t, Config{Profile: ProfileFUT})
	lenient := map[string]string{"Prefer": "respond-async, handling=lenient"}
	first := e.do(req{method: http.MethodGet, url: "/$export?_type=Patient&_elements=id", token: tokenA, headers: lenient})
	again := e.do(req{method: http.MethodGet, url: "/$export?_type=Patient&_elements=id", token: tokenA, headers: lenient})
	other := e.do(req{method: http.MethodGet, url: "/$export?_type=Patient&includeAssociatedData=LatestProvenanceResources", token: tokenA, headers: lenient})
	if first.header.Get("Content-Location") != again.header.Get("Content-Location") {
		t.Fatalf("identical lenient kick-offs: expected one job, got %q and %q", first.header.Get("Content-Location"), again.header.Get("Content-Location"))
	}
	if first.header.Get("Content-Location") == other.header.Get("Content-Location") {
		t.Fatalf("kick-offs ignoring different parameters: expected two jobs, got one")
	}
}

// TestBlankTypeFilterIsNoFilterInHAPIProfiles: HAPI FHIR drops blank _typeFilter (and _typePostFetchFilterUrl)
// values before it starts the job (BulkExportJobParametersBuilder.parseFilters: the value split before each
// "Type?", StringUtils::isNotBlank; hapifhir/hapi-fhir 056b0ce), so a kick-off that sends the parameter empty,
// as projecttacoma/bulk-data-utilities does on every kick-off ("_typeFilter=" when it has no filter), exports
// as if none was sent. The fut and hapi-8.0 profiles answer so: 202, and the manifest reports nothing ignored.
// bulkdata keeps the IG's answer to a parameter the server does not support: 400 + OperationOutcome without
// Prefer: handling=lenient (the IG says nothing of an empty value).
func TestBlankTypeFilterIsNoFilterInHAPIProfiles(t *testing.T) {
	for _, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			e := newEnv(t, Config{Profile: p})
			r := e.do(req{method: http.MethodGet, url: "/$export?_type=Patient&_typeFilter=&_typePostFetchFilterUrl=%20", token: tokenA,
				headers: map[string]string{"Prefer": "respond-async", "Accept": "application/fhir+json"}})
			if p == ProfileBulkData {
				wantStatus(t, r, http.StatusBadRequest)
				return
			}
			wantStatus(t, r, http.StatusAccepted)
			e.clock.Advance(time.Hour)
			m, body := e.manifest(r.header.Get("Content-Location"), tokenA)
			if len(m.Output) != 1 || m.Output[0].Type != "Patient" || len(m.Error) != 0 {
				t.Fatalf("manifest: expected the Patient file and no error file (a blank filter is no filter), got %s", body.body)
			}
			// A filter that says something is still refused: this server runs no _typeFilter query.
			r = e.do(req{method: http.MethodGet, url: "/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dmale", token: tokenA,
				headers: map[string]string{"Prefer": "respond-async"}})
			wantStatus(t, r, http.StatusBadRequest)
		})
	}
}
