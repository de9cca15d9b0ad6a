package refserver

import (
	"net/http"
	"net/url"
	"testing"
)

// The polling location is protected as the kick-off is (EXP-POLL-TOKEN): a status request without a token is
// refused 401 with an OperationOutcome (code login) and a Bearer challenge, whether the job runs or is
// complete, in the polling URL of every shape (FUT's $export-poll-status?_jobId= and an independent server's
// path); so is a DELETE without one, and a poll with an empty Authorization header. The owner's own poll is
// answered.
func TestAStatusRequestWithoutATokenIsRefused(t *testing.T) {
	for name, cfg := range map[string]Config{"fut": {}, "own poll path": {Profile: ProfileBulkData, PollPath: "bulkstatus"}} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, cfg)
			loc := kickoffLocation(t, e)
			for _, when := range []string{"running", "complete"} {
				if when == "complete" {
					e.clock.Advance(DefaultExportDuration)
				}
				for what, r := range map[string]response{
					"GET":                e.get(loc, ""),
					"GET, empty header":  e.do(req{method: http.MethodGet, url: loc, headers: map[string]string{"Authorization": ""}}),
					"DELETE":             e.do(req{method: http.MethodDelete, url: loc}),
					"GET, Basic, no JWT": e.do(req{method: http.MethodGet, url: loc, headers: map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}}),
				} {
					wantOO(t, r, http.StatusUnauthorized, sevError, codeLogin)
					if r.header.Get("WWW-Authenticate") != "Bearer" {
						t.Errorf("%s %s without a token: WWW-Authenticate %q, want Bearer", when, what, r.header.Get("WWW-Authenticate"))
					}
				}
				want := map[string]int{"running": http.StatusAccepted, "complete": http.StatusOK}[when]
				wantStatus(t, e.get(loc, tokenA), want)
			}
		})
	}
}

// The fault poll-without-token answers a GET without a token as the owner's poll, running and complete, and
// an unknown job as unknown; a DELETE without a token is still refused, and a wrong token still gets 401.
func TestThePollWithoutTokenFaultOpensTheGETOnly(t *testing.T) {
	e := newEnv(t, Config{Faults: []string{string(faultPollWithoutToken)}})
	loc := kickoffLocation(t, e)
	wantStatus(t, e.get(loc, ""), http.StatusAccepted)
	wantOO(t, e.do(req{method: http.MethodDelete, url: loc}), http.StatusUnauthorized, sevError, codeLogin)
	wantOO(t, e.get(loc, "not-a-token"), http.StatusUnauthorized, sevError, codeLogin)
	wantOO(t, e.get("/$export-poll-status?_jobId="+url.QueryEscape("00000000-0000-4000-8000-000000000000"), ""), http.StatusNotFound, sevError, codeNotFound)
	e.clock.Advance(DefaultExportDuration)
	r := e.get(loc, "")
	wantStatus(t, r, http.StatusOK)
	var m manifest
	decodeJSON(t, r.body, &m)
	if len(m.Output) == 0 {
		t.Fatalf("the faulty answer is the owner's manifest, got %s", r.body)
	}
}

// kickoffLocation kicks off an export as user A and returns its polling location.
func kickoffLocation(t *testing.T, e *env) string {
	t.Helper()
	r := e.do(req{method: http.MethodGet, url: "/$export", token: tokenA, headers: map[string]string{"Prefer": "respond-async"}})
	wantStatus(t, r, http.StatusAccepted)
	loc := r.header.Get("Content-Location")
	if loc == "" {
		t.Fatal("no Content-Location")
	}
	return loc
}
