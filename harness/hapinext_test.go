package harness

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// hapi86Outcomes serves h, its OperationOutcomes of a cancel and of a cancelled export without a Content-Type,
// as HAPI FHIR ≥ 8.6 answers them: BulkDataExportProvider.handleDeleteRequest (every DELETE) and
// processCancelledJobResponse (a poll of a cancelled job: 404, "was cancelled.  No status to report.", added by
// hapi-fhir PRs #7262 and #7292) set the status and write the body, no Content-Type (hapi-fhir commit
// dba91c87; an unknown job's 404 comes from an exception and keeps application/fhir+json). n counts the answers
// it changed.
func hapi86Outcomes(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		poll := strings.HasSuffix(r.URL.Path, "$export-poll-status")
		cancelled := r.Method == http.MethodGet && rec.Code == http.StatusNotFound && bytes.Contains(rec.Body.Bytes(), []byte("was cancelled."))
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if poll && (r.Method == http.MethodDelete || cancelled) && rec.Body.Len() > 0 {
			w.Header()["Content-Type"] = nil // none at all: net/http would sniff one for a missing header
			n.Add(1)
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// FUT is moving from HAPI FHIR 8.0 to 8.6 (README, "HAPI FHIR after 8.0"). HAPI ≥ 8.6 answers a poll of a
// cancelled export 404 with an OperationOutcome whose issue has a code (changelogs 8_6_0/7261, 7291, 7307), but
// sets no Content-Type on it, nor on any DELETE's answer. Both profiles that rest on HAPI accept that as their
// known deviation operation-outcome-media-type and pass: fut, whose answer it is, and hapi-8.0, which also
// accepts HAPI 8.0's 202. A harness that failed it would fail FUT after its upgrade for a media type no FUT
// document names.
func TestHAPI86CancelAnswersWithoutContentTypePassFutAndHAPI80(t *testing.T) {
	for _, profile := range []string{"fut", "hapi-8.0"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			var changed atomic.Int64
			h := hapi86Outcomes(refserverHandler(t, refserver.Config{Profile: refserver.ProfileFUT}), &changed)
			res, out, err := runAgainst(t, h, Config{Profile: profile, Token: refserver.DemoTokenA, Tags: "@EXP-CANCEL,@EXP-CANCELLED-404,@EXP-DELETE-DONE"})
			if err != nil {
				t.Fatal(err)
			}
			if changed.Load() == 0 {
				t.Fatalf("no answer lost its Content-Type: the test proves nothing\n%s", tailOf(out))
			}
			if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Warnings()) != 0 {
				t.Fatalf("HAPI 8.6's cancel answers were failed or warned of in %s: failures=%v warnings=%+v\n%s", profile, failedRequirements(res), res.Findings.Warnings(), tailOf(out))
			}
			known := knownDeviationsSaying(res, "operation-outcome-media-type", "no Content-Type")
			for _, id := range []string{"EXP-CANCEL", "EXP-CANCELLED-404", "EXP-DELETE-DONE"} {
				if !known[id] {
					t.Errorf("want %s's OperationOutcome without a Content-Type listed as the known deviation operation-outcome-media-type; got %+v", id, res.Findings.KnownDeviations())
				}
			}
		})
	}
}
