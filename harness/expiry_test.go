package harness

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// staticJWT is a token shaped as a JWT whose claims expire at exp; its signature is not checked by anyone.
func staticJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, exp.Unix()))) + ".c2lnbmF0dXJl"
}

// refusingAfter serves the reference server with user A's token t, until until by the server's clock
// (cfg.Clock, the real one when nil), from then on answering that token 401 as a server that checks exp does.
func refusingAfter(tb *testing.T, t string, until time.Time, cfg refserver.Config) http.Handler {
	tb.Helper()
	users := refserver.DefaultUsers()
	users[0].Token = t
	cfg.Users = users
	h := refserverHandler(tb, cfg)
	now := time.Now
	if cfg.Clock != nil {
		now = cfg.Clock.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+t && now().After(until) {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="expired"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"login","diagnostics":"token expired"}]}`)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// A static token that expires, by its exp claim, while a job runs: the preflight warns that it expires within
// MAX_WAIT, and the server's 401s after it are errors of the run (exit 2), charged to no requirement, naming
// TOKEN and when it expired; the server is not called non-conformant for refusing an expired token. The token
// expires by the clock the run and the server share, which every request moves on by a second (movingClock):
// after some 40 requests, however fast the machine, with no wait. The steps are far below the clock skew
// allowed (30 s), so a request in flight as the token expires is still taken for the token's.
func TestAStaticTokenExpiringDuringTheRunIsNotTheServersFault(t *testing.T) {
	clock, moving := movingClock(time.Second)
	exp := clock.Now().Add(40 * time.Second).Truncate(time.Second) // a JWT's exp is in whole seconds
	token := staticJWT("a", exp)
	h := moving(refusingAfter(t, token, exp, refserver.Config{Clock: clock, ExportDuration: time.Hour, RetryAfter: time.Second}))
	cfg := Config{Token: token, Tags: "@export", MaxWait: time.Minute}
	cfg.clock = clock.Now
	res, out, err := runAgainst(t, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "TOKEN expires at "+exp.UTC().Format(time.RFC3339)) || !strings.Contains(out, "within MAX_WAIT (1m0s)") {
		t.Errorf("no preflight warning that TOKEN expires within MAX_WAIT:\n%s", out)
	}
	if res.Passed || !res.OnlyRunErrors() || len(res.Failures) == 0 {
		t.Fatalf("want the run failed on errors of the run alone, got passed %v, failures %+v\n%s", res.Passed, res.Failures, out)
	}
	// A request in flight as the token expired was sent just before exp: within the clock skew allowed, and
	// said so ("expires at …, within the 30s allowed").
	named := regexp.MustCompile(`user A's token \(TOKEN\) expire(d|s) at ` + regexp.QuoteMeta(exp.UTC().Format(time.RFC3339)))
	for _, f := range res.Failures {
		if !f.CredentialExpired || f.NonConformant || f.Requirement != "" || !named.MatchString(f.Message) {
			t.Errorf("%s: want an expired-token error charged to no requirement, got expired %v, non-conformant %v, requirement %q:\n%s", f.Scenario, f.CredentialExpired, f.NonConformant, f.Requirement, f.Message)
		}
	}
	if strings.Contains(out, token) {
		t.Error("the output shows the token")
	}
}

// The same 401 to a token that has not expired is the server's: it is judged, not excused.
func TestA401ToAnUnexpiredStaticTokenIsStillJudged(t *testing.T) {
	clock, moving := movingClock(time.Second)
	exp := clock.Now().Add(time.Hour)
	token := staticJWT("a", exp)
	refuseFrom := clock.Now().Add(10 * time.Second) // the server forgets the token during the job, 10 requests on
	h := moving(refusingAfter(t, token, refuseFrom, refserver.Config{Clock: clock, ExportDuration: time.Hour, RetryAfter: time.Second}))
	cfg := Config{Token: token, Tags: "@EXP-POLL-200", MaxWait: time.Minute}
	cfg.clock = clock.Now
	res, out, err := runAgainst(t, h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "TOKEN expires at") {
		t.Errorf("a token valid for an hour is warned of:\n%s", out)
	}
	if res.Passed || res.OnlyRunErrors() {
		t.Fatalf("want the server's 401 judged as its failure, got passed %v, only run errors %v\n%s", res.Passed, res.OnlyRunErrors(), out)
	}
	for _, f := range res.Failures {
		if f.CredentialExpired {
			t.Errorf("%s: a token valid for an hour called expired:\n%s", f.Scenario, f.Message)
		}
	}
}

// A token already expired when the run starts ends the preflight saying so, instead of "rejected".
func TestAnExpiredStaticTokenIsNamedByThePreflight(t *testing.T) {
	exp := time.Now().Add(-10 * time.Minute)
	token := staticJWT("a", exp)
	_, out, err := runAgainst(t, refusingAfter(t, token, exp, refserver.Config{}), Config{Token: token, Tags: "@EXP-POLL-200"})
	var pf *PreflightError
	if !errors.As(err, &pf) || !strings.Contains(pf.Cause, "TOKEN expired at "+exp.UTC().Format(time.RFC3339)+" by its exp claim") || !strings.Contains(pf.Fix, "fresh token") {
		t.Fatalf("want a preflight error naming the expired TOKEN, got %v\n%s", err, out)
	}
}

// A token that expired by its exp claim but that the server still accepts is run, with a warning that says so
// instead of a negative time left.
func TestAnExpiredTokenTheServerAcceptsIsWarnedOf(t *testing.T) {
	exp := time.Now().Add(-time.Hour)
	token := staticJWT("a", exp)
	h := refusingAfter(t, token, time.Now().Add(time.Hour), refserver.Config{})
	res, out, err := runAgainst(t, h, Config{Token: token, Tags: "@EXP-KICKOFF"})
	if err != nil || !res.Passed {
		t.Fatalf("passed %v, err %v\n%s", res.Passed, err, out)
	}
	if !strings.Contains(out, "TOKEN expired at "+exp.UTC().Format(time.RFC3339)+" by its exp claim, yet the server accepted it") || strings.Contains(out, "in -") {
		t.Errorf("want a warning that the expired token was accepted:\n%s", out)
	}
}
