package harness

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
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

// smartSimulatedError answers as the SMART reference bulk-data-server does under one of its simulated errors
// (the sim segment's err, ExportManager.ts @ 0583be50 and @ 008dee94), over inner's answers:
//
//   - "transient_error": the first poll of each export is 500 with an OperationOutcome of code transient
//     ("An unknown error occurred (transient_error). Please try again."), the next ones as usual;
//   - "some_file_generation_failed": the first file of each type is listed under error instead of output,
//     as type OperationOutcome, keeping the count of the resources it would have held (Manifest.addError:
//     {...entry, type: "OperationOutcome"}), and its URL serves one OperationOutcome line, without a newline
//     (download: the sim's fileError);
//   - "too_many_files": an export of more files than maxFiles, whose every poll answers 413 and the text
//     "Too many files" (handleStatus; SMART's own test "protects against too many generated files").
//
// n counts the answers it changed.
func smartSimulatedError(inner http.Handler, err string, n *atomic.Int64) http.Handler {
	var mu sync.Mutex
	polled := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isPoll := r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/bulkstatus/")
		switch {
		case err == "transient_error" && isPoll:
			mu.Lock()
			first := !polled[r.URL.Path]
			polled[r.URL.Path] = true
			mu.Unlock()
			if first {
				n.Add(1)
				b, _ := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": []map[string]string{{"severity": "error", "code": "transient", "diagnostics": "An unknown error occurred (transient_error). Please try again."}}})
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write(b)
				return
			}
		case err == "too_many_files" && isPoll:
			n.Add(1)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte("Too many files"))
			return
		case err == "some_file_generation_failed" && r.URL.Query().Get("fileError") != "":
			w.Header().Set("Content-Type", "application/fhir+ndjson")
			_, _ = w.Write(smartOutcome("error", r.URL.Query().Get("fileError")))
			return
		}
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if err == "some_file_generation_failed" && isPoll && rec.Code == http.StatusOK {
			var m map[string]any
			if json.Unmarshal(body, &m) == nil {
				output, errs := []any{}, []any{}
				seen := map[string]bool{}
				for _, it := range m["output"].([]any) {
					item := it.(map[string]any)
					if typ := item["type"].(string); !seen[typ] {
						seen[typ] = true
						item["type"] = "OperationOutcome"
						item["url"] = item["url"].(string) + "?fileError=" + url.QueryEscape("Failed to export 1."+typ+".ndjson")
						errs = append(errs, item)
						continue
					}
					output = append(output, it)
				}
				m["output"], m["error"] = output, errs
				body, _ = json.Marshal(m)
				n.Add(1)
			}
		}
		writeRewritten(w, rec.Header(), rec.Code, body)
	})
}

// The SMART reference server's simulated errors, as bulkdata judges them: a transient poll failure is waited
// out (passes); an export of too many files, 413 with a text body, is an export the server failed (skipped),
// its answer no OperationOutcome (EXP-POLL-ERROR warns, BDA2's SHOULD); and the error files of
// some_file_generation_failed fail EXP-OUTPUT, rightly: each holds one OperationOutcome where its count says
// as many resources as the file it replaces (BDA2: count is "the number of resources in the file", and error
// items follow "the same structure as the output array").
func TestTheSMARTReferenceServersSimulatedErrorsAreJudgedByTheIG(t *testing.T) {
	for _, c := range []struct {
		err    string
		failed []string
		says   string // in the output: the failure's or the warning's words
	}{
		{"transient_error", nil, ""},
		{"too_many_files", nil, "a FHIR OperationOutcome in JSON (BDA2: SHOULD)"},
		{"some_file_generation_failed", []string{"EXP-OUTPUT"}, "resources, as the manifest's count says"},
	} {
		t.Run(c.err, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			inner := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"})
			res, out, err := runAgainst(t, smartSimulatedError(inner, c.err, &n), Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF,@EXP-POLL-200,@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if n.Load() == 0 {
				t.Fatalf("no answer was changed: the test proves nothing\n%s", tailOf(out))
			}
			if failed := failedRequirements(res); !slices.Equal(failed, c.failed) {
				t.Fatalf("failed %v, want %v\n%s", failed, c.failed, tailOf(out))
			}
			if c.says != "" && !strings.Contains(out, c.says) {
				t.Errorf("want the verdict saying %q\n%s", c.says, tailOf(out))
			}
			warned := slices.ContainsFunc(res.Findings.Warnings(), func(f steps.Finding) bool { return f.Requirement == "EXP-POLL-ERROR" })
			if warned != (c.err == "too_many_files") {
				t.Errorf("EXP-POLL-ERROR warned=%v, want it for the 413 with a text body only: %+v", warned, res.Findings.Warnings())
			}
			if c.err == "too_many_files" && !slices.ContainsFunc(res.Findings.Skips(), func(f steps.Finding) bool {
				return f.Requirement == "EXP-POLL-200" && strings.Contains(f.Message, "the server failed the export")
			}) {
				t.Errorf("want EXP-POLL-200 skipped as an export the server failed: %+v", res.Findings.Skips())
			}
		})
	}
}
