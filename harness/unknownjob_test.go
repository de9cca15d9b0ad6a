package harness

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// unknownJobAnswer has the server answer a poll of a job it does not know (the reference server's 404)
// with status, contentType and body instead; n counts the answers it replaced.
func unknownJobAnswer(inner http.Handler, status int, contentType, body string, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		polling := strings.HasSuffix(r.URL.Path, "/$export-poll-status") || strings.Contains(r.URL.Path, "/bulkstatus/")
		if r.Method == http.MethodGet && polling && rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), "Unknown instance ID") {
			n.Add(1)
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

const unknownJobOutcome = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"Unknown export job"}]}`

// The answer to an unknown job is the profile's (features/PROFILES.md, "unknown-job"): FUT and HAPI answer 404
// with an OperationOutcome, the HL7 IG any 4xx, an OperationOutcome expected (a warning without one, a failure
// under STRICT); a 5xx, the server's own failure, fails everywhere. The bulkdata server is an independent
// one, polled at [base]/bulkstatus/<id>, as the SMART reference server, which answers an unknown id 400 +
// OperationOutcome in some versions.
func TestTheUnknownJobAnswerIsTheProfiles(t *testing.T) {
	for _, tc := range []struct {
		name        string
		profile     string
		status      int
		contentType string
		body        string
		strict      bool
		pass        bool
		warned      bool
	}{
		{"bulkdata 400 with an OperationOutcome", "bulkdata", 400, "application/fhir+json", unknownJobOutcome, false, true, false},
		{"bulkdata 403 with an OperationOutcome", "bulkdata", 403, "application/fhir+json", unknownJobOutcome, false, true, false},
		{"bulkdata 400 with a text body", "bulkdata", 400, "text/plain; charset=utf-8", "no such job", false, true, true},
		{"bulkdata 400 with an OperationOutcome as text/plain", "bulkdata", 400, "text/plain; charset=utf-8", unknownJobOutcome, false, true, true},
		// asked for application/json (FHIR R4 http.html's generic type): operation-outcome-as-requested-json
		{"bulkdata 404 with an OperationOutcome as application/json", "bulkdata", 404, "application/json", unknownJobOutcome, false, true, false},
		{"bulkdata 400 with a text body, STRICT", "bulkdata", 400, "text/plain; charset=utf-8", "no such job", true, false, false},
		{"bulkdata 500 with an OperationOutcome", "bulkdata", 500, "application/fhir+json", unknownJobOutcome, false, false, false},
		{"bulkdata 200", "bulkdata", 200, "application/json", `{}`, false, false, false},
		{"fut 400 with an OperationOutcome", "fut", 400, "application/fhir+json", unknownJobOutcome, false, false, false},
		{"hapi-8.0 400 with an OperationOutcome", "hapi-8.0", 400, "application/fhir+json", unknownJobOutcome, false, false, false},
		{"fut 404 with a text body", "fut", 404, "text/plain; charset=utf-8", "no such job", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := refserver.Config{Profile: refserver.Profile(tc.profile)}
			if tc.profile == "bulkdata" {
				cfg.PollPath = "bulkstatus"
			}
			var replaced atomic.Int64
			h := unknownJobAnswer(refserverHandler(t, cfg), tc.status, tc.contentType, tc.body, &replaced)
			res, out, err := runAgainst(t, h, Config{Profile: tc.profile, Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB", Strict: tc.strict})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if replaced.Load() == 0 {
				t.Fatalf("no unknown job's answer was replaced: the test proves nothing\n%s", out)
			}
			failed := failedRequirements(res)
			if tc.pass != (len(failed) == 0) || res.Passed != tc.pass {
				t.Fatalf("passed=%v, failures name %v; want passed=%v\n%s", res.Passed, failed, tc.pass, out)
			}
			if !tc.pass && !slices.Equal(failed, []string{"EXP-UNKNOWN-JOB"}) {
				t.Fatalf("failures name %v, want EXP-UNKNOWN-JOB\n%s", failed, out)
			}
			var warned []string
			for _, w := range res.Findings.Warnings() {
				if w.Requirement == "EXP-UNKNOWN-JOB" {
					warned = append(warned, w.Message)
				}
			}
			if tc.warned != (len(warned) > 0) {
				t.Fatalf("warnings on EXP-UNKNOWN-JOB: %q, want a warning: %v\n%s", warned, tc.warned, out)
			}
			says := "400 Bad Request with no OperationOutcome: "
			if strings.Contains(tc.body, "OperationOutcome") {
				says = "400 Bad Request with an OperationOutcome not as expected: Content-Type of GET "
			}
			if tc.warned && !strings.Contains(warned[0], says) {
				t.Errorf("the warning must say what the answer lacked: %s", warned[0])
			}
		})
	}
}
