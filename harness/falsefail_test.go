package harness

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// Conformant servers that the reference server does not exercise: the harness must pass them, and where it
// cannot check them it must say so without charging the server with a requirement.

// relocatingPolls serves h, its kick-offs' Content-Location moved to the origin of base (the same path and
// query): a polling location on another origin than the service's, as a server behind a gateway hands out
// when it builds its URLs from a configured public base (HAPI's HardcodedServerAddressStrategy).
func relocatingPolls(h http.Handler, base string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if loc := rec.Header().Get("Content-Location"); loc != "" {
			if i := strings.Index(loc, "/fhir/"); i >= 0 {
				w.Header().Set("Content-Location", base+loc[i:])
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// BDA2 "Bulk Data Kick-off Request": the Content-Location is "the absolute URL of an endpoint for subsequent
// status requests", of any origin. The harness sends the token only to the origins it trusts, so polls of a
// polling location on another origin go without it, and a server that wants the token refuses them (401):
// that is the run's doing, not the server's. No requirement is charged; each scenario ends as an error of the
// run naming TRUSTED_ORIGINS. Listed there, the origin gets the token and every scenario passes.
func TestAPollingLocationOnAnUntrustedOriginIsNoDeviation(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{})
	status := httptest.NewServer(inner) // the same server on another origin
	t.Cleanup(status.Close)
	h := relocatingPolls(inner, status.URL)
	cfg := Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@export"}
	res, out, err := runAgainst(t, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Failures) == 0 {
		t.Fatalf("no scenario ended on the refused polls: the test proves nothing\n%s", tailOf(out))
	}
	for _, f := range res.Failures {
		if f.NonConformant || !f.RunError() || f.Requirement != "" || !strings.Contains(f.Message, "TRUSTED_ORIGINS="+status.URL) {
			t.Errorf("a poll refused for want of the token the harness withheld must be an error of the run naming TRUSTED_ORIGINS, charged to no requirement; got %+v", f)
		}
	}
	if !res.OnlyRunErrors() {
		t.Errorf("the run must end as one that could not check, not as a non-conformant server")
	}
	if len(res.Findings.Warnings()) > 0 {
		t.Errorf("no warning may come of polls without the token: %+v", res.Findings.Warnings())
	}

	cfg.TrustedOrigins = []string{status.URL}
	res, out, err = runAgainst(t, h, cfg)
	if err != nil || !res.Passed || len(res.Findings.Warnings()) > 0 {
		t.Fatalf("with the polling origin trusted: passed=%v warnings=%+v err=%v\n%s", res.Passed, res.Findings.Warnings(), err, tailOf(out))
	}
}

// movingPolls serves h, but answers every request to a polling location (GET or DELETE) with a redirect of
// code to the same location under /moved, which h then serves; deletes counts the DELETEs that got there.
func movingPolls(h http.Handler, code int, deletes *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := strings.CutPrefix(r.URL.Path, "/moved"); ok {
			if r.Method == http.MethodDelete {
				deletes.Add(1)
			}
			r = r.Clone(r.Context())
			r.URL.Path, r.URL.RawPath = p, ""
			h.ServeHTTP(w, r)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/$export-poll-status") && r.URL.Query().Get("_jobId") != "" {
			u := *r.URL
			u.Path, u.RawPath = "/moved"+r.URL.Path, ""
			http.Redirect(w, r, u.String(), code)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RFC 9110 §15.4.2 (301) and §15.4.3 (302): a user agent MAY change the method from POST to GET when it
// follows the redirect; no other method. A polling location moved so (a gateway that normalises paths, or
// moves http to https) is sent its DELETE again as a DELETE, and the cancel is judged on the DELETE's answer:
// Go's client would send a GET, and the harness judged the poll's answer as the cancel's (EXP-CANCEL and
// EXP-DELETE-DONE failed). 307 and 308 keep the method anyway.
func TestAPollingLocationRedirectedKeepsTheDelete(t *testing.T) {
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			var deletes atomic.Int64
			h := movingPolls(refserverHandler(t, refserver.Config{}), code, &deletes)
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-CANCEL,@EXP-DELETE-DONE"})
			if err != nil || !res.Passed || len(res.Findings.Warnings()) > 0 {
				t.Fatalf("a polling location redirected with %d: passed=%v failures=%v warnings=%+v err=%v\n%s", code, res.Passed, failedRequirements(res), res.Findings.Warnings(), err, tailOf(out))
			}
			if deletes.Load() == 0 {
				t.Fatalf("no DELETE reached the moved polling location: the test proves nothing\n%s", tailOf(out))
			}
		})
	}
}

// aheadClock is the real clock plus an offset that a test moves forward: the jobs of a reference server on it
// complete as soon as the offset passes their duration.
type aheadClock struct{ offset atomic.Int64 }

func (c *aheadClock) Now() time.Time       { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *aheadClock) jump(d time.Duration) { c.offset.Add(int64(d)) }

// FUT-OD-POLL: "If the export has already finished, the delete will return '404 Not Found'". An export seen
// running whose job finishes while the DELETE is on its way (here: the server's clock passes the job's
// duration as the DELETE arrives) is answered as a finished one, conformantly: the cancel of a running export
// could not be observed, which is a skip naming why, not a failure of EXP-CANCEL or EXP-CANCELLED-404.
func TestAnExportThatFinishesBeforeItsDeleteArrivesIsNoDeviation(t *testing.T) {
	// One scenario a run: every DELETE moves the one clock of the server, and a job kicked off but not yet
	// polled would be finished by another scenario's DELETE.
	for _, tag := range []string{"@EXP-CANCEL", "@EXP-CANCELLED-404"} {
		t.Run(tag, func(t *testing.T) {
			const duration = time.Minute
			clock := &aheadClock{}
			inner := refserverHandler(t, refserver.Config{Clock: clock, ExportDuration: duration})
			var finishedFirst atomic.Int64
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodDelete && strings.HasSuffix(r.URL.Path, "/$export-poll-status") {
					clock.jump(duration) // the job finishes as the DELETE arrives
					finishedFirst.Add(1)
				}
				inner.ServeHTTP(w, r)
			})
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: tag})
			if err != nil {
				t.Fatal(err)
			}
			if finishedFirst.Load() == 0 {
				t.Fatalf("no DELETE reached the server: the test proves nothing\n%s", tailOf(out))
			}
			// its one scenario skipped, the run checked nothing: no pass, and no failure either
			if !res.NothingChecked || len(res.Failures) > 0 {
				t.Fatalf("an export that finished before its DELETE arrived was failed: %v\n%s", failedRequirements(res), tailOf(out))
			}
			skips := res.Findings.Skips()
			if len(skips) != 1 || !strings.Contains(skips[0].Message, "before its DELETE") {
				t.Fatalf("want the scenario skipped, saying the export finished before its DELETE arrived; got %+v\n%s", skips, tailOf(out))
			}
		})
	}
}

// fileScheme serves h, a reference server, with its completed manifest's requiresAccessToken false and its
// output files behind a credential of their own, as a store's pre-signed URLs are: a file request carrying
// the query sig=ok is served (as user A's), any other answered 403, with or without a bearer token. The
// manifest signs the first output file's URL alone; withToken counts the file requests that carried a bearer
// token.
func fileScheme(h http.Handler, withToken *atomic.Int64) http.Handler {
	fileURL := regexp.MustCompile(`("url":"[^"]*/Binary/[^"?]*)"`)
	return rewriting(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/Binary/") {
			h.ServeHTTP(w, r)
			return
		}
		if r.Header.Get("Authorization") != "" {
			withToken.Add(1)
		}
		if r.URL.Query().Get("sig") != "ok" {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<Error><Code>AccessDenied</Code><Message>Request has expired or is not signed</Message></Error>`)
			return
		}
		r = r.Clone(r.Context())
		r.URL.RawQuery = ""
		r.Header.Set("Authorization", "Bearer "+refserver.DemoTokenA)
		h.ServeHTTP(w, r)
	}), func(r *http.Request, status int, body []byte) []byte {
		if status != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/$export-poll-status") {
			return body
		}
		body = bytes.Replace(body, []byte(`"requiresAccessToken":true`), []byte(`"requiresAccessToken":false`), 1)
		signed := false
		return fileURL.ReplaceAllFunc(body, func(u []byte) []byte {
			if signed {
				return u
			}
			signed = true
			return fileURL.ReplaceAll(u, []byte(`$1?sig=ok"`))
		})
	})
}

// BDA2 "Complete Status": requiresAccessToken "MAY be false for file servers that use access-control schemes
// other than OAuth 2.0, such as downloads from Amazon S3 bucket URLs". A server whose manifest says false and
// whose files need a credential the harness does not hold (403 without a token, 403 with the bearer token) is
// conformant: its files the harness can read (here the one pre-signed URL) are judged, the others are not
// checked, saying why (another access-control scheme), never failed. Before, EXP-OUTPUT, EXP-OUTPUT-ACCEPT and
// EXP-OUTPUT-TOKEN failed on the 403 ("expected 200 OK: the manifest says requiresAccessToken false"). In
// bulkdata, EXP-CROSS-USER is skipped: the harness holds no credential of user B's for the files' scheme. In
// fut, the three output requirements are judged alike (EXP-CROSS-USER fails there: TestAManifestThatRequiresNoTokenOverFilesThatNeedItFails).
func TestOutputFilesOfAnotherAccessControlSchemeAreNotCheckedNotFailed(t *testing.T) {
	for _, c := range []struct {
		profile string
		server  refserver.Config
		tags    string
	}{
		{"bulkdata", refserver.Config{Profile: refserver.ProfileBulkData}, "@EXP-OUTPUT,@EXP-OUTPUT-ACCEPT,@EXP-OUTPUT-TOKEN,@EXP-CROSS-USER"},
		{"fut", refserver.Config{}, "@EXP-OUTPUT,@EXP-OUTPUT-ACCEPT,@EXP-OUTPUT-TOKEN"},
	} {
		t.Run(c.profile, func(t *testing.T) {
			t.Parallel()
			var withToken atomic.Int64
			h := fileScheme(refserverHandler(t, c.server), &withToken)
			res, out, err := runAgainst(t, h, Config{Profile: c.profile, Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: c.tags})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Warnings()) != 0 {
				t.Fatalf("a file server of another access-control scheme was failed: passed=%v failures=%v warnings=%+v\n%s", res.Passed, failedRequirements(res), res.Findings.Warnings(), tailOf(out))
			}
			if withToken.Load() == 0 {
				t.Fatalf("no refused file was asked again with the token: the test proves nothing\n%s", tailOf(out))
			}
			unchecked := map[string]bool{}
			for _, f := range res.Findings.NotChecked() {
				if strings.Contains(f.Message, "refused without a token (403 Forbidden) and with user A's bearer token (403 Forbidden)") &&
					strings.Contains(f.Message, "access-control schemes other than OAuth 2.0") {
					unchecked[f.Requirement] = true
				}
			}
			for _, id := range []string{"EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT-TOKEN"} {
				if !unchecked[id] {
					t.Errorf("want %s's refused files not checked, naming both refusals and the other scheme; got %+v", id, res.Findings.NotChecked())
				}
			}
			if c.profile != "bulkdata" {
				return
			}
			skips := res.Findings.Skips()
			if len(skips) != 1 || skips[0].Requirement != "EXP-CROSS-USER" || !strings.Contains(skips[0].Message, "requiresAccessToken false") {
				t.Errorf("want EXP-CROSS-USER skipped in bulkdata, for want of a credential of user B's in the files' scheme; got %+v", skips)
			}
		})
	}
}

// BDA2 "Bulk Data Status Request": the error status, a 4xx or 5xx, is "returned by the server if the export
// operation fails", and when to fail an export in its entirety is "left up to the server implementer". A
// server that fails every export (the reference server with FailExports: HAPI's answer to a FAILED job, 500
// and an OperationOutcome) is not failed: every scenario that needed a completed export is skipped, those that
// read the user's shared export with its one cause (the answer and what its OperationOutcome says), the report says the server failed the export,
// and the release gate fails on the requirements left unchecked. In fut the OperationOutcome's legacy
// application/json+fhir is HAPI's known deviation; in bulkdata the answer is the IG's own and warns of nothing.
func TestAnExportTheServerFailsIsSkippedNotFailed(t *testing.T) {
	for _, profile := range []refserver.Profile{refserver.ProfileFUT, refserver.ProfileBulkData} {
		t.Run(string(profile), func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Profile: profile, FailExports: true})
			res, out, err := runAgainst(t, h, Config{Profile: string(profile), Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
				Tags: "@export", Gate: true, Features: []string{"export"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Failures) > 0 {
				t.Fatalf("an export the server failed was charged to %v\n%s", failedRequirements(res), tailOf(out))
			}
			const says = "fails every export (FailExports)"
			skipped := map[string]string{}
			for _, s := range res.Findings.Skips() {
				if strings.Contains(s.Message, "the server failed the export") {
					skipped[s.Requirement] = s.Message
				}
			}
			var cause string
			for _, id := range []string{"EXP-POLL-200", "EXP-EXPIRES", "EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT-TOKEN", "EXP-RETAINED", "EXP-DELETE-DONE", "EXP-CROSS-USER"} {
				msg, ok := skipped[id]
				switch {
				case !ok:
					t.Errorf("%s: not skipped as an export the server failed; skips %+v", id, res.Findings.Skips())
				case !strings.Contains(msg, "answered 500 Internal Server Error") || !strings.Contains(msg, says):
					t.Errorf("%s: the skip must name the status and what the OperationOutcome says: %s", id, msg)
				case id == "EXP-DELETE-DONE": // an export of its own (it deletes it), which failed too
				case cause == "":
					cause = msg
				case msg != cause: // the shared export's one cause
					t.Errorf("%s: every scenario must give the same cause:\n  %s\n  %s", id, msg, cause)
				}
			}
			if !strings.Contains(out, "the server failed the export") {
				t.Errorf("the console must say the server failed the export:\n%s", tailOf(out))
			}
			if w := res.Findings.Warnings(); len(w) > 0 {
				t.Errorf("a conformant error answer warns of nothing: %+v", w)
			}
			known := slices.ContainsFunc(res.Findings.KnownDeviations(), func(f steps.Finding) bool {
				return f.Requirement == "EXP-POLL-ERROR" && strings.Contains(f.Message, "application/json+fhir")
			})
			if known != (profile == refserver.ProfileFUT) {
				t.Errorf("HAPI's application/json+fhir must be a known deviation of EXP-POLL-ERROR in fut, and only there: %+v", res.Findings.KnownDeviations())
			}
			if res.Passed || res.Gate == nil || res.Gate.Passed {
				t.Fatalf("the release gate must fail on the requirements the failed export left unchecked:\n%s", tailOf(out))
			}
			unchecked := map[string]bool{}
			for _, r := range res.Gate.Unchecked {
				unchecked[r.ID] = strings.Contains(r.Reason, "the server failed the export")
			}
			for _, id := range []string{"EXP-POLL-200", "EXP-OUTPUT", "EXP-DELETE-DONE"} {
				if !unchecked[id] {
					t.Errorf("%s: the gate must count it not checked, naming the failed export: %+v", id, res.Gate.Unchecked)
				}
			}
		})
	}
}

// An export that fails with an error answer of the wrong form (BDA2: the body SHOULD be an OperationOutcome,
// as application/fhir+json) is still an export the server failed: the run is not failed, and EXP-POLL-ERROR
// warns, naming what came; under STRICT its scenario (EXP-POLL-200's) fails on EXP-POLL-ERROR alone, and every
// other scenario is skipped.
func TestAFailedExportsMalformedErrorAnswerWarns(t *testing.T) {
	for fault, says := range map[string]string{
		"export-fails-html":            "a FHIR OperationOutcome in JSON (BDA2: SHOULD), got ",
		"export-fails-outcome-as-text": "application/fhir+json for an OperationOutcome, got text/plain",
	} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Faults: []string{fault}})
			for _, strict := range []bool{false, true} {
				res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF,@EXP-POLL-200,@EXP-OUTPUT", Strict: strict})
				if err != nil {
					t.Fatal(err)
				}
				warned := slices.ContainsFunc(res.Findings.Warnings(), func(f steps.Finding) bool {
					return f.Requirement == "EXP-POLL-ERROR" && strings.Contains(f.Message, says)
				})
				if !warned {
					t.Fatalf("strict=%v: want a warning of EXP-POLL-ERROR saying %q, got %+v\n%s", strict, says, res.Findings.Warnings(), tailOf(out))
				}
				if !strict {
					if len(res.Failures) > 0 || !res.Passed {
						t.Fatalf("a failed export's malformed answer is a warning, not a failure: %v\n%s", failedRequirements(res), tailOf(out))
					}
					continue
				}
				if f := failedRequirements(res); len(res.Failures) != 1 || !slices.Equal(f, []string{"EXP-POLL-ERROR"}) || !slices.Contains(res.Failures[0].Requirements, "EXP-POLL-ERROR") {
					t.Fatalf("STRICT: want EXP-POLL-200's scenario failed on EXP-POLL-ERROR alone, got %v %+v\n%s", f, res.Failures, tailOf(out))
				}
			}
		})
	}
}

// An export that fails before its first poll cannot show its in-progress answer, nor be cancelled while it
// runs: the scenarios that need it running are skipped naming the failed export, as when it finishes before
// the first poll, not failed on EXP-POLL-202. And one seen running that fails while its DELETE is on its way
// (HAPI answers a FAILED job's DELETE 500, and the poll after it too) is skipped alike, not failed on
// EXP-CANCEL. The server's clock passes the jobs' duration as the poll, or the DELETE, arrives.
func TestAnExportThatFailsBeforeItCanBeSeenRunningIsSkipped(t *testing.T) {
	for name, c := range map[string]struct {
		method string // the request that moves the clock past the job's duration
		tags   string
		want   []string
	}{
		"before the first poll": {http.MethodGet, "@EXP-KICKOFF,@EXP-POLL-202,@EXP-RETRY-AFTER,@EXP-CANCEL,@EXP-CANCELLED-404",
			[]string{"EXP-POLL-202", "EXP-RETRY-AFTER", "EXP-CANCEL", "EXP-CANCELLED-404"}},
		"before its DELETE arrives, EXP-CANCEL":        {http.MethodDelete, "@EXP-KICKOFF,@EXP-CANCEL", []string{"EXP-CANCEL"}},
		"before its DELETE arrives, EXP-CANCELLED-404": {http.MethodDelete, "@EXP-KICKOFF,@EXP-CANCELLED-404", []string{"EXP-CANCELLED-404"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			const duration = time.Minute
			clock := &aheadClock{}
			inner := refserverHandler(t, refserver.Config{Clock: clock, ExportDuration: duration, FailExports: true})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == c.method && strings.HasSuffix(r.URL.Path, "/$export-poll-status") {
					clock.jump(duration)
				}
				inner.ServeHTTP(w, r)
			})
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: c.tags})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Failures) > 0 || !res.Passed {
				t.Fatalf("an export that failed before it could be seen running was charged to %v\n%s", failedRequirements(res), tailOf(out))
			}
			skipped := map[string]bool{}
			for _, s := range res.Findings.Skips() {
				skipped[s.Requirement] = strings.Contains(s.Message, "the server failed the export") && strings.Contains(s.Message, "answered 500 Internal Server Error")
			}
			for _, id := range c.want {
				if !skipped[id] {
					t.Errorf("%s: want it skipped naming the failed export, got %+v\n%s", id, res.Findings.Skips(), tailOf(out))
				}
			}
		})
	}
}

// asRequestedJSON serves h, its error OperationOutcomes relabelled application/json when the request's
// Accept named application/json: a server that negotiates as FHIR R4 http.html asks ("If a client provides
// a generic mime type in the Accept header … the server SHOULD respond with the requested mime type"), as
// IBM's LinuxForHealth FHIR server (JAX-RS) and the SMART reference bulk-data server answer a poll after a
// DELETE. relabelled counts the answers it changed.
func asRequestedJSON(h http.Handler, relabelled *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		if rec.Code >= 400 && r.Header.Get("Accept") == "application/json" && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/fhir+json") &&
			bytes.Contains(rec.Body.Bytes(), []byte(`"OperationOutcome"`)) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			relabelled.Add(1)
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// BDA2 "Error Status" names application/fhir+json for an OperationOutcome, but its status request advises
// the client to send Accept: application/json, and FHIR's content negotiation then asks the server for
// application/json. The harness asks so, so the answer it asked for is a known deviation
// (operation-outcome-as-requested-json), not a failure, in bulkdata too; a DELETE asks for
// application/fhir+json, and the kill matrix's delete-done-409-json proves such an answer to it still fails.
func TestAnOutcomeInTheGenericJSONTheRequestAskedForIsAKnownDeviation(t *testing.T) {
	var relabelled atomic.Int64
	h := asRequestedJSON(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), &relabelled)
	res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@EXP-CANCELLED-404,@EXP-DELETE-DONE,@EXP-UNKNOWN-JOB"})
	if err != nil {
		t.Fatal(err)
	}
	if relabelled.Load() == 0 {
		t.Fatalf("no OperationOutcome was relabelled: the test proves nothing\n%s", tailOf(out))
	}
	if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Warnings()) != 0 {
		t.Fatalf("an OperationOutcome in the application/json the request asked for was failed or warned of: passed=%v failures=%v warnings=%+v\n%s", res.Passed, failedRequirements(res), res.Findings.Warnings(), tailOf(out))
	}
	known := knownDeviationsSaying(res, "operation-outcome-as-requested-json", "came as application/json")
	for _, id := range []string{"EXP-CANCELLED-404", "EXP-DELETE-DONE", "EXP-UNKNOWN-JOB"} {
		if !known[id] {
			t.Errorf("want %s's application/json OperationOutcome listed as the known deviation operation-outcome-as-requested-json; got %+v", id, res.Findings.KnownDeviations())
		}
	}
}

// dataTimeManifests serves h, each manifest's transactionTime a day before it was answered: the time of the
// data the query read, as a server that loads its data in batches writes it (CMS's BCDA: its source's last
// update, the bound of its query). n counts the manifests it changed.
func dataTimeManifests(h http.Handler, n *atomic.Int64) http.Handler {
	re := regexp.MustCompile(`"transactionTime"\s*:\s*"[^"]*"`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if rec.Code == http.StatusOK && strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && re.Match(body) {
			loaded := time.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
			body = re.ReplaceAll(body, []byte(`"transactionTime":"`+loaded+`"`))
			n.Add(1)
		}
		writeRewritten(w, rec.Header(), rec.Code, body)
	})
}

// BDA2 "Complete Status": transactionTime "indicates the server's time when the query is run"; the response
// SHALL include the resources modified up to it and SHOULD NOT include any after it. A server that loads its
// data in batches meets both with the time of its last load, before the kick-off, which an IG author reads as
// the field's meaning (features/PROFILES.md, transaction-time-of-the-data): in bulkdata a known deviation, not
// a failure. In fut, whose HAPI writes its job's start or end, it is a manifest of an older export and fails.
func TestATransactionTimeOfTheDataIsAKnownDeviationInBulkdata(t *testing.T) {
	for _, c := range []struct {
		profile string
		pass    bool
	}{{"bulkdata", true}, {"fut", false}} {
		t.Run(c.profile, func(t *testing.T) {
			t.Parallel()
			var changed atomic.Int64
			h := dataTimeManifests(refserverHandler(t, refserver.Config{Profile: refserver.Profile(c.profile)}), &changed)
			res, out, err := runAgainst(t, h, Config{Profile: c.profile, Token: refserver.DemoTokenA, Tags: "@EXP-POLL-200"})
			if err != nil {
				t.Fatal(err)
			}
			if changed.Load() == 0 {
				t.Fatalf("no manifest was changed: the test proves nothing\n%s", tailOf(out))
			}
			if !c.pass {
				if failed := failedRequirements(res); res.Passed || !slices.Equal(failed, []string{"EXP-POLL-200"}) || !strings.Contains(out, "manifest transactionTime: expected the time the export's query ran") {
					t.Fatalf("a transactionTime a day before the kick-off must fail EXP-POLL-200 in %s; failures %v\n%s", c.profile, failed, tailOf(out))
				}
				return
			}
			if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Warnings()) != 0 {
				t.Fatalf("a transactionTime of the data was failed or warned of: failures=%v warnings=%+v\n%s", failedRequirements(res), res.Findings.Warnings(), tailOf(out))
			}
			known := res.Findings.KnownDeviations()
			if len(known) == 0 || known[0].Requirement != "EXP-POLL-200" || !strings.Contains(known[0].Message, "transaction-time-of-the-data") {
				t.Errorf("want the earlier transactionTime listed as the known deviation transaction-time-of-the-data of EXP-POLL-200; got %+v", known)
			}
		})
	}
}

// knownDeviationsSaying is the requirements of the run's known deviations whose message says every one of
// phrases (the tolerance's name, what it accepted).
func knownDeviationsSaying(res Result, phrases ...string) map[string]bool {
	known := map[string]bool{}
next:
	for _, f := range res.Findings.KnownDeviations() {
		for _, p := range phrases {
			if !strings.Contains(f.Message, p) {
				continue next
			}
		}
		known[f.Requirement] = true
	}
	return known
}
