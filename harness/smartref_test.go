package harness

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// smartSeen counts what smartBulkDataServer changed, so that a test can tell it proved something.
type smartSeen struct {
	kickoffs, running, manifests, outcomes, deletes, files, gzipped atomic.Int64
}

// smartOutcome is an OperationOutcome as the SMART reference bulk-data-server writes every one
// (lib.ts createOperationOutcome): one issue of code processing, its text as diagnostics and a narrative.
func smartOutcome(severity, message string) []byte {
	b, _ := json.Marshal(map[string]any{
		"resourceType": "OperationOutcome",
		"text":         map[string]string{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml"><h1>Operation Outcome</h1><pre>` + message + `</pre></div>`},
		"issue":        []map[string]string{{"severity": severity, "code": "processing", "diagnostics": message}},
	})
	return b
}

// smartBulkDataServer answers as the SMART reference bulk-data-server (smart-on-fhir/bulk-data-server,
// ExportManager.ts @ 0583be50, lib.ts and bulk_data_handler.ts @ 0277e78, Manifest.ts @ 0583be50) where its
// answers differ from the reference server's in bulkdata. inner should complete its exports at once: SMART's
// newest kick-off answers only once the manifest is built (buildManifest(...).then(202)), so its first poll
// is already 200.
//
//   - every JSON answer is Express's res.json: Content-Type application/json; charset=utf-8, OperationOutcomes
//     (the kick-off's, a DELETE's, every error's) and the manifest alike;
//   - the kick-off's 202 carries an OperationOutcome of severity information ("Your request has been accepted.
//     You can check its status at …", outcomes.exportAccepted);
//   - a DELETE, of a running or a completed export, is 202 with an OperationOutcome of severity information
//     ("The procedure was canceled", outcomes.cancelAccepted); the job's file is removed, so every later poll
//     is 404 "The export was not found" and every file 404 "The exported resources have been deleted";
//   - the manifest carries outputOrganizedBy "" (its organizeOutputBy, a Bulk Data v2.1 kick-off parameter,
//     not sent), deleted [] and error [], and transactionTime as moment().format() writes it: seconds and a
//     numeric offset ("+00:00"), no fraction;
//   - the files carry Content-Disposition: attachment, are streamed (no Content-Length) and gzipped to a
//     request whose Accept-Encoding names gzip (ExportManager.download: Content-Encoding gzip, or deflate).
func smartBulkDataServer(inner http.Handler, seen *smartSeen) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		header := rec.Header().Clone()
		isJSON := strings.HasPrefix(header.Get("Content-Type"), "application/fhir+json") || strings.HasPrefix(header.Get("Content-Type"), "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/$export") && rec.Code == http.StatusAccepted:
			body = smartOutcome("information", `Your request has been accepted. You can check its status at "`+header.Get("Content-Location")+`"`)
			header.Set("Content-Type", "application/json; charset=utf-8")
			seen.kickoffs.Add(1)
		case r.Method == http.MethodGet && rec.Code == http.StatusAccepted:
			// A running export, in the versions that simulate its duration (ExportManager.ts @ 008dee94,
			// handleStatus: the sim's dur, 10 s by default): no body, its progress and a delay of 2 s.
			header.Set("X-Progress", "50% complete, Please wait...")
			header.Set("Retry-After", "2")
			seen.running.Add(1)
		case r.Method == http.MethodDelete && rec.Code == http.StatusAccepted:
			body = smartOutcome("information", "The procedure was canceled")
			header.Set("Content-Type", "application/json; charset=utf-8")
			seen.deletes.Add(1)
		case rec.Code == http.StatusOK && isJSON && bytes.Contains(body, []byte(`"transactionTime"`)):
			var m map[string]any
			if err := json.Unmarshal(body, &m); err == nil {
				if tt, err := time.Parse(time.RFC3339Nano, m["transactionTime"].(string)); err == nil {
					m["transactionTime"] = tt.UTC().Format("2006-01-02T15:04:05-07:00")
				}
				m["outputOrganizedBy"] = ""
				for _, k := range []string{"deleted", "error"} {
					if m[k] == nil {
						m[k] = []any{}
					}
				}
				body, _ = json.Marshal(m)
				header.Set("Content-Type", "application/json; charset=utf-8")
				seen.manifests.Add(1)
			}
		case isJSON && bytes.Contains(body, []byte(`"OperationOutcome"`)):
			header.Set("Content-Type", "application/json; charset=utf-8")
			seen.outcomes.Add(1)
		case rec.Code == http.StatusOK && strings.HasPrefix(header.Get("Content-Type"), "application/fhir+ndjson"):
			header.Set("Content-Disposition", "attachment")
			header.Del("Content-Length") // streamed: chunked
			if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				var gz bytes.Buffer
				zw := gzip.NewWriter(&gz)
				_, _ = zw.Write(body)
				_ = zw.Close()
				body = gz.Bytes()
				header.Set("Content-Encoding", "gzip")
				seen.gzipped.Add(1)
			}
			seen.files.Add(1)
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		if header.Get("Content-Disposition") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// The SMART reference bulk-data-server, read in full (README, "Independent Bulk Data servers"), answers as
// the IG allows wherever the harness's scenarios meet it, and bulkdata passes it: its newest version, whose
// kick-off answers once the export is complete (the scenarios that need a running export are skipped), and
// the versions that simulate an export's duration (dur, 10 s by default), whose running exports answer 202
// with X-Progress and Retry-After: 2 and are cancelled with a 202 and an OperationOutcome of severity
// information. Its OperationOutcomes in the application/json the status requests ask for are listed as the
// known deviation operation-outcome-as-requested-json; nothing is failed or warned of.
func TestTheSMARTReferenceBulkDataServerPassesBulkdata(t *testing.T) {
	for _, c := range []struct {
		name     string
		duration time.Duration
		skipped  []string // the requirements skipped: their export completed before its first poll
	}{
		{"newest: kick-off answered once the export is complete", time.Nanosecond, []string{"EXP-CANCEL", "EXP-CANCELLED-404", "EXP-POLL-202", "EXP-RETRY-AFTER"}},
		{"simulated duration", 2 * time.Second, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var seen smartSeen
			inner := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, ExportDuration: c.duration, PollPath: "bulkstatus"})
			res, out, err := runAgainst(t, smartBulkDataServer(inner, &seen), Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int64{"kick-off": seen.kickoffs.Load(), "manifest": seen.manifests.Load(), "error OperationOutcome": seen.outcomes.Load(), "DELETE": seen.deletes.Load(), "file": seen.files.Load(), "gzipped file": seen.gzipped.Load()}
			if c.skipped == nil {
				counts["running export"] = seen.running.Load()
			}
			for name, n := range counts {
				if n == 0 {
					t.Errorf("no %s answered as SMART's: the test proves less than it says", name)
				}
			}
			if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Warnings()) != 0 {
				t.Fatalf("the SMART reference server's answers were failed or warned of in bulkdata: failures %v, warnings %+v\n%s", failedRequirements(res), res.Findings.Warnings(), tailOf(out))
			}
			var skipped []string
			for _, f := range res.Findings.Skips() {
				skipped = append(skipped, f.Requirement)
			}
			slices.Sort(skipped)
			if !slices.Equal(skipped, c.skipped) {
				t.Errorf("skipped %v, want %v: %+v", skipped, c.skipped, res.Findings.Skips())
			}
			known := knownDeviationsSaying(res, "operation-outcome-as-requested-json")
			if !known["EXP-UNKNOWN-JOB"] || !known["EXP-DELETE-DONE"] {
				t.Errorf("want the application/json OperationOutcomes of the unknown job and of the poll after a DELETE listed as operation-outcome-as-requested-json; got %+v", res.Findings.KnownDeviations())
			}
		})
	}
}
