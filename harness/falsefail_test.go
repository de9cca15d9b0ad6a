package harness

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
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
