package refserver

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestExportPollStatusByPOST: HAPI serves $export-poll-status to POST too (an idempotent, delete-enabled
// operation), the _jobId in the query or in a Parameters body, and answers a POST that names none 400
// HAPI-2227 (BulkDataExportProvider.exportPollStatus; BulkDataExportProviderTest
// testOperationExportPollStatus_POST_*). HAPI's generic client invokes operations by POST. The HL7 IG's
// polling location is GET (and DELETE) only.
func TestExportPollStatusByPOST(t *testing.T) {
	fhirJSON := map[string]string{"Content-Type": "application/fhir+json"}
	for _, p := range []Profile{ProfileFUT, ProfileHAPI80} {
		t.Run(string(p), func(t *testing.T) {
			e := newEnv(t, Config{Profile: p})
			poll := e.kickoff(tokenA, "")
			id := poll[strings.LastIndex(poll, "=")+1:]
			byBody := func(params string) response {
				return e.do(req{method: http.MethodPost, url: "/$export-poll-status", token: tokenA, headers: fhirJSON,
					body: `{"resourceType":"Parameters","parameter":[` + params + `]}`})
			}
			jobParam := `{"name":"_jobId","valueString":"` + id + `"}`
			// HAPI's own test sends an _outputFormat beside the _jobId; the other parameters are ignored.
			running := byBody(`{"name":"_outputFormat","valueString":"application/fhir+ndjson"},` + jobParam)
			wantStatus(t, running, http.StatusAccepted)
			if !strings.HasPrefix(running.header.Get("X-Progress"), "Build in progress - Status set to IN_PROGRESS at ") {
				t.Fatalf("X-Progress: got %q", running.header.Get("X-Progress"))
			}
			wantStatus(t, e.do(req{method: http.MethodPost, url: poll, token: tokenA}), http.StatusAccepted)

			e.clock.Advance(DefaultExportDuration)
			done := byBody(jobParam)
			wantStatus(t, done, http.StatusOK)
			if ct := done.header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("content-type: expected application/json, got %q", ct)
			}
			var m testManifest
			decodeJSON(t, done.body, &m)
			if len(m.Output) == 0 || m.RequiresAccessToken == nil || !*m.RequiresAccessToken {
				t.Fatalf("manifest: got %s", done.body)
			}
			wantStatus(t, e.do(req{method: http.MethodPost, url: poll, token: tokenA}), http.StatusOK)

			// HAPI 8.0 parses an empty FHIR JSON body and fails (HAPI-0450): TestProfileHAPI80ErrorOutcomes.
			bodies := []string{`{"resourceType":"Parameters"}`}
			if p == ProfileFUT {
				bodies = append(bodies, "")
			}
			for _, body := range bodies {
				r := e.do(req{method: http.MethodPost, url: "/$export-poll-status", token: tokenA, headers: fhirJSON, body: body})
				d := wantOO(t, r, http.StatusBadRequest, sevError, p.exceptionCode(codeRequired))
				if !strings.Contains(d, "requires a job ID") {
					t.Fatalf("diagnostics: got %q", d)
				}
			}
			wantOO(t, byBody(`{"name":"_jobId","valueString":"`+id[:len(id)-1]+`x"}`), http.StatusNotFound, sevError, p.exceptionCode(codeNotFound))
			wantOO(t, byBody(jobParam+","+jobParam), http.StatusBadRequest, sevError, codeInvalid)
			wantOO(t, byBody(`{"name":"_jobId","valueInteger":3}`), http.StatusBadRequest, sevError, codeInvalid)
			wantOO(t, byBody(`{"name":"_jobId","valueString":"a b"}`), http.StatusBadRequest, sevError, codeInvalid)
			wantOO(t, e.do(req{method: http.MethodPost, url: "/$export-poll-status", token: tokenA, headers: fhirJSON, body: `{"resourceType":"Bundle"}`}),
				http.StatusBadRequest, sevError, codeInvalid)
			wantOO(t, e.do(req{method: http.MethodPost, url: "/$export-poll-status", token: tokenA,
				headers: map[string]string{"Content-Type": "text/plain"}, body: jobParam}), http.StatusUnsupportedMediaType, sevError, codeNotSupported)
			// Another user's job answers like an unknown one, by POST as by GET.
			wantOO(t, e.do(req{method: http.MethodPost, url: poll, token: tokenB}), http.StatusNotFound, sevError, p.exceptionCode(codeNotFound))
		})
	}

	t.Run(string(ProfileBulkData), func(t *testing.T) {
		e := newEnv(t, Config{Profile: ProfileBulkData})
		poll := e.kickoff(tokenA, "")
		r := e.do(req{method: http.MethodPost, url: poll, token: tokenA})
		wantOO(t, r, http.StatusMethodNotAllowed, sevError, codeNotSupported)
		if allow := r.header.Get("Allow"); allow != "GET, HEAD, DELETE" {
			t.Fatalf("allow: expected %q, got %q", "GET, HEAD, DELETE", allow)
		}
		e.clock.Advance(time.Hour)
		wantStatus(t, e.get(poll, tokenA), http.StatusOK)
	})
}
