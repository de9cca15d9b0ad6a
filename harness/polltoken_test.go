package harness

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// pollRecorder wraps a reference server and records, for every request to its polling location, the method
// and whether it carried any credential a request can carry (Authorization, Cookie, Proxy-Authorization).
type pollRecorder struct {
	mu        sync.Mutex
	tokenless []string // method of each polling request without a credential
	withToken []string // method of each polling request with an Authorization header
	other     []string // a cookie or a proxy credential, which the run never sends
}

func (p *pollRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/$export-poll-status") && r.URL.Query().Has("_jobId") {
			p.mu.Lock()
			switch {
			case len(r.Header.Values("Cookie")) > 0 || len(r.Header.Values("Proxy-Authorization")) > 0:
				p.other = append(p.other, r.Method)
			case len(r.Header.Values("Authorization")) > 0:
				p.withToken = append(p.withToken, r.Method)
			default:
				p.tokenless = append(p.tokenless, r.Method)
			}
			p.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// The status request of EXP-POLL-TOKEN goes without any credential in every authentication mode: a static
// token, OAuth2 client credentials, SMART Backend Services and OAuth2 over mutual TLS (the client certificate
// is the connection's, and stays). The conformant reference server refuses it, and the scenario passes; the
// only requests to the polling location without a token are that one GET, never a DELETE.
func TestAStatusRequestWithoutATokenCarriesNoCredentialInAnyMode(t *testing.T) {
	modes := map[string]func(root string) Config{
		"static":             func(string) Config { return Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB} },
		"client credentials": oauthConfig,
		"SMART":              smartConfig,
	}
	for name, mode := range modes {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &pollRecorder{}
			ts := httptest.NewServer(rec.wrap(refserverHandler(t, refserver.Config{})))
			t.Cleanup(ts.Close)
			cfg := mode(ts.URL)
			cfg.Tags = "@EXP-POLL-TOKEN"
			res, out, _ := runTarget(t, ts.URL, cfg)
			wantPollTokenPassed(t, res, out, rec)
		})
	}
	t.Run("mutual TLS", func(t *testing.T) {
		t.Parallel()
		rec := &pollRecorder{}
		ts, pki := mutualTLSServer(t, rec.wrap(refserverHandler(t, refserver.Config{})))
		cfg := oauthConfig(ts.URL)
		cfg.Tags, cfg.CACert, cfg.ClientCert, cfg.ClientKey = "@EXP-POLL-TOKEN", pki.CACert, pki.ClientCert, pki.ClientKey
		res, out, _ := runTarget(t, ts.URL, cfg)
		wantPollTokenPassed(t, res, out, rec)
	})
}

func wantPollTokenPassed(t *testing.T, res Result, out string, rec *pollRecorder) {
	t.Helper()
	if !res.Passed || res.Scenarios != 1 || len(res.Findings.Skips()) != 0 {
		t.Fatalf("EXP-POLL-TOKEN against the conformant server: passed=%v scenarios=%d skips=%+v\n%s", res.Passed, res.Scenarios, res.Findings.Skips(), out)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.tokenless) != 1 || rec.tokenless[0] != http.MethodGet || len(rec.other) != 0 {
		t.Fatalf("want exactly one GET of the polling location without a credential (and none with a cookie), got %v without, %v with a cookie or proxy credential", rec.tokenless, rec.other)
	}
	if len(rec.withToken) == 0 {
		t.Fatal("the owner's own status request, with the token, was never sent")
	}
}

// A polling location that answers anyone fails the run on EXP-POLL-TOKEN (refserver's poll-without-token),
// in every profile: the failure names the requirement, the polling location, the answer it gave and the
// clause, with the exchange, whose reproducer sends no token.
func TestAPollingLocationThatAnswersAnyoneFailsTheRun(t *testing.T) {
	for _, p := range refserver.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Profile: p, Faults: []string{"poll-without-token"}})
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, Tags: "@EXP-POLL-TOKEN"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed || len(res.Failures) != 1 {
				t.Fatalf("a polling location that answers anyone must fail the run:\n%s", out)
			}
			f := res.Failures[0]
			for _, want := range []string{"EXP-POLL-TOKEN", "$export-poll-status?_jobId=", "sent without a token (no Authorization header)",
				"expected refused with a 4xx", "to a caller without credentials", "SHALL be protected the same way", "HTTP exchanges behind this verdict"} {
				if !strings.Contains(f.Message, want) {
					t.Errorf("the failure must say %q:\n%s", want, f.Message)
				}
			}
			if f.Requirement != "EXP-POLL-TOKEN" || !f.NonConformant {
				t.Errorf("failure charged to %s (non-conformant %v), want EXP-POLL-TOKEN", f.Requirement, f.NonConformant)
			}
			_, reproducer, _ := strings.Cut(f.Message, "reproduce the last request:")
			if reproducer == "" || strings.Contains(reproducer, "Authorization") || !strings.Contains(reproducer, "-X GET") {
				t.Errorf("the reproducer must be the GET without a token, got %q", reproducer)
			}
		})
	}
}

// A run that sends no token (authentication mode none) against a server that answers anyone: EXP-POLL-TOKEN
// is not applicable, with the reason, not failed and not passed.
func TestAStatusRequestWithoutATokenIsNotApplicableInAnOpenRun(t *testing.T) {
	inner := refserverHandler(t, refserver.Config{})
	open := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			r.Header.Set("Authorization", "Bearer "+refserver.DemoTokenA) // a server that needs no token
		}
		inner.ServeHTTP(w, r)
	})
	res, out, err := runAgainst(t, open, Config{Tags: "@EXP-POLL-TOKEN,@EXP-KICKOFF"})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out)
	}
	for _, s := range res.Results {
		if slices := s.Requirements; len(slices) > 0 && slices[0] == "EXP-POLL-TOKEN" {
			if s.Status != StatusNotApplicable || !strings.Contains(s.Reason, "authentication mode none") {
				t.Fatalf("EXP-POLL-TOKEN in a run without a token: %s (%q), want not applicable naming the mode\n%s", s.Status, s.Reason, out)
			}
			return
		}
	}
	t.Fatalf("no EXP-POLL-TOKEN scenario ran\n%s", out)
}
