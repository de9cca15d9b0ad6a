package harness

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
