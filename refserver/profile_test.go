package refserver

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestProfileBulkDataReleasesAFinishedExportOnDelete(t *testing.T) {
	e := newEnv(t, Config{Profile: ProfileBulkData})
	poll := e.kickoff(tokenA, "")
	running := e.get(poll, tokenA)
	wantStatus(t, running, http.StatusAccepted)
	if got := running.header.Get("X-Progress"); got != "" {
		t.Errorf("bulkdata sends no X-Progress (a MAY), got %q", got)
	}
	e.clock.Advance(DefaultExportDuration)
	wantStatus(t, e.get(poll, tokenA), http.StatusOK)
	wantOO(t, e.do(req{method: http.MethodDelete, url: poll, token: tokenA}), http.StatusAccepted, sevInformation, codeInformational)
	wantOO(t, e.get(poll, tokenA), http.StatusNotFound, "error", codeNotFound)
}

func TestProfileFUTKeepsTheManifestAfterADeleteOnAFinishedExport(t *testing.T) {
	e := newEnv(t, Config{})
	poll := e.kickoff(tokenA, "")
	if e.get(poll, tokenA).header.Get("X-Progress") == "" {
		t.Error("fut sends X-Progress")
	}
	e.clock.Advance(DefaultExportDuration)
	wantOO(t, e.do(req{method: http.MethodDelete, url: poll, token: tokenA}), http.StatusNotFound, "error", codeNotFound)
	wantStatus(t, e.get(poll, tokenA), http.StatusOK)
}

// HAPI 8.0 as the digest reads its code: a cancelled job reports progress, a DELETE's OperationOutcome has
// no Content-Type (and the provider's error one no issue code), and a poll without _jobId crashes.
func TestProfileHAPI80ReportsACancelledJobAsProgress(t *testing.T) {
	e := newEnv(t, Config{Profile: ProfileHAPI80})
	poll := e.kickoff(tokenA, "")
	cancel := e.do(req{method: http.MethodDelete, url: poll, token: tokenA})
	wantOOBody(t, cancel, http.StatusAccepted, sevInformation, codeInformational)
	if ct, sent := cancel.header["Content-Type"]; sent {
		t.Errorf("HAPI's DELETE answer has no Content-Type, got %q", ct)
	}
	e.clock.Advance(2 * DefaultExportDuration)
	r := e.get(poll, tokenA)
	wantStatus(t, r, http.StatusAccepted)
	if p := r.header.Get("X-Progress"); !strings.Contains(p, "Status set to CANCELLED at ") {
		t.Errorf("X-Progress %q, want HAPI's CANCELLED text", p)
	}
	wantOOBody(t, e.do(req{method: http.MethodDelete, url: poll, token: tokenA}), http.StatusAccepted, sevInformation, codeInformational)

	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		if d := wantOO(t, e.do(req{method: method, url: "/$export-poll-status", token: tokenA}), http.StatusInternalServerError, "error", codeProcessing); !strings.HasPrefix(d, "HAPI-0389: ") || !strings.Contains(d, "NullPointerException") {
			t.Errorf("%s without _jobId: want HAPI's crash, got %q", method, d)
		}
	}

	finished := e.kickoff(tokenA, "")
	e.clock.Advance(DefaultExportDuration)
	r = e.do(req{method: http.MethodDelete, url: finished, token: tokenA})
	wantStatus(t, r, http.StatusNotFound)
	if !strings.Contains(string(r.body), `"severity":"error"`) || strings.Contains(string(r.body), `"code"`) {
		t.Errorf("HAPI 8.0's provider OperationOutcome has no issue code: %s", r.body)
	}
}

func TestUnknownProfileIsRefused(t *testing.T) {
	if _, err := NewServer(Config{Profile: "hapi-9"}); err == nil || !strings.Contains(err.Error(), "bulkdata") {
		t.Fatalf("want an error listing the profiles, got %v", err)
	}
}

// TestManifestTransactionTimeByProfile: the HL7 IG's transactionTime is when the query runs, which HAPI ≥ 8.2
// writes as the job's start; HAPI ≤ 8.1 (FUT's 8.0) writes its end (hapi-fhir #6841, PR #6842).
func TestManifestTransactionTimeByProfile(t *testing.T) {
	const kickoff, end = "2025-12-05T11:33:54.465+00:00", "2025-12-05T11:33:56.465+00:00"
	for p, want := range map[Profile]string{ProfileFUT: kickoff, ProfileBulkData: kickoff, ProfileHAPI80: end} {
		t.Run(string(p), func(t *testing.T) {
			e := newEnv(t, Config{Profile: p})
			poll := e.kickoff(tokenA, "")
			e.clock.Advance(time.Hour)
			if m, _ := e.manifest(poll, tokenA); m.TransactionTime != want {
				t.Fatalf("transactionTime: expected %s, got %q", want, m.TransactionTime)
			}
		})
	}
}

// TestProfileHAPI80ErrorOutcomes: HAPI 8.0 answers every exception its Bulk Export provider or framework throws
// with one issue of code "processing" and the exception's HAPI-#### message (ExceptionHandlingInterceptor
// .populateDetails), and names a job in its cancel messages in angle brackets (JpaJobPersistenceImpl
// .cancelInstance, BulkDataExportProvider.handleDeleteRequest). A POST without _jobId answers as its body
// allows: a Parameters without one 400 HAPI-2227, an empty body with a JSON Content-Type 400 HAPI-0450 (the
// parser finds no content), an empty body without one the same crash as a GET (no request resource).
func TestProfileHAPI80ErrorOutcomes(t *testing.T) {
	e := newEnv(t, Config{Profile: ProfileHAPI80})
	poll := e.kickoff(tokenA, "")
	id := poll[strings.LastIndex(poll, "=")+1:]
	unknown := id[:len(id)-1] + "x"
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		d := wantOO(t, e.do(req{method: method, url: "/$export-poll-status?_jobId=" + unknown, token: tokenA}), http.StatusNotFound, sevError, codeProcessing)
		if want := "HAPI-2040: Unknown instance ID: " + unknown + ". Please check if the input job ID is valid."; d != want {
			t.Errorf("%s unknown job: diagnostics %q, want %q", method, d, want)
		}
	}
	fhirJSON := map[string]string{"Content-Type": "application/fhir+json"}
	post := func(headers map[string]string, body string) response {
		return e.do(req{method: http.MethodPost, url: "/$export-poll-status", token: tokenA, headers: headers, body: body})
	}
	if d := wantOO(t, post(fhirJSON, `{"resourceType":"Parameters"}`), http.StatusBadRequest, sevError, codeProcessing); !strings.HasPrefix(d, "HAPI-2227: ") {
		t.Errorf("POST without _jobId: diagnostics %q, want HAPI-2227", d)
	}
	if d := wantOO(t, post(fhirJSON, ""), http.StatusBadRequest, sevError, codeProcessing); !strings.HasPrefix(d, "HAPI-0450: ") {
		t.Errorf("POST of an empty FHIR JSON body: diagnostics %q, want HAPI-0450", d)
	}
	if d := wantOO(t, post(nil, ""), http.StatusInternalServerError, sevError, codeProcessing); !strings.HasPrefix(d, "HAPI-0389: ") {
		t.Errorf("POST of an empty body without Content-Type: diagnostics %q, want HAPI's crash", d)
	}

	if d := wantOOBody(t, e.do(req{method: http.MethodDelete, url: poll, token: tokenA}), http.StatusAccepted, sevInformation, codeInformational); d != "Job instance <"+id+"> successfully cancelled." {
		t.Errorf("cancel: diagnostics %q", d)
	}
	finished := e.kickoff(tokenA, "")
	e.clock.Advance(DefaultExportDuration)
	fid := finished[strings.LastIndex(finished, "=")+1:]
	r := e.do(req{method: http.MethodDelete, url: finished, token: tokenA})
	if !strings.Contains(string(r.body), "Job instance <"+fid+"> was already cancelled or has completed.  Nothing to do.") {
		t.Errorf("delete of a finished export: %s", r.body)
	}
}
