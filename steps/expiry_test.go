package steps

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/ehealth-dk/fut-conformance/check"
)

func expiringJWT(exp time.Time) string {
	claims := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"a","exp":%d}`, exp.Unix())))
	return "eyJhbGciOiJSUzI1NiJ9." + claims + ".c2ln"
}

// renewing is a token source the harness renews (OAuth2 client credentials, SMART Backend Services): its
// tokens carry the Expiry of expires_in, and x/oauth2 hands one out until 10 s before it.
type renewing struct{ tok *oauth2.Token }

func (r renewing) Token() (*oauth2.Token, error) { return r.tok, nil }

// A 401 to a token the harness renews is the server's, as the README says, even in the last 30 s of the
// token's life: the harness would have renewed it had it run out, and "use TOKEN_URL" is no advice then.
func TestA401ToARenewedTokenIsNeverExcusedAsExpired(t *testing.T) {
	now := time.Now()
	tok := &oauth2.Token{AccessToken: "issued-by-the-token-endpoint", Expiry: now.Add(20 * time.Second)}
	w := &World{target: &Target{Credentials: map[string]oauth2.TokenSource{"A": renewing{tok}}}}
	x := &check.Exchange{Method: http.MethodGet, URL: "https://fhir.example/$export", Status: http.StatusUnauthorized}
	if err := w.expiredCredential(x, tok.AccessToken, now); err != nil {
		t.Fatalf("a 401 to a renewed token was excused: %v", err)
	}
}

// Within the clock skew allowed, before the token's exp by this machine's clock, the message says so rather
// than that the token expired a negative time before the request.
func TestA401WithinTheSkewBeforeExpSaysSo(t *testing.T) {
	now := time.Now()
	token := expiringJWT(now.Add(10 * time.Second))
	w := &World{target: &Target{Credentials: StaticTokens(map[string]string{"A": token})}}
	x := &check.Exchange{Method: http.MethodGet, URL: "https://fhir.example/$export", Status: http.StatusUnauthorized}
	err := w.expiredCredential(x, token, now)
	if !errors.Is(err, check.ErrCredentialExpired) {
		t.Fatalf("expected ErrCredentialExpired, got %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, " -") || !strings.Contains(msg, "clock") {
		t.Errorf("expected the message to say the 401 came within the clock skew allowed, got %q", msg)
	}
}

// A file server that throttles the download until the static token has run out, then refuses it: the 401
// answers the request sent last, after exp, not the first one, before it; so it is the token's, not the
// server's. The token runs out by the target's Clock, which the server moves on while the download waits.
func TestA401ToADownloadRetriedPastTheTokensExpIsTheTokens(t *testing.T) {
	base := time.Now().Add(24 * time.Hour) // a day ahead: by this machine's clock the token never expires
	var asked, elapsed atomic.Int64        // elapsed: how far the clock has moved on from base
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked.Add(1) == 1 {
			elapsed.Add(int64(time.Minute)) // the token runs out before the retry
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	// By the first request's time it has more than the skew left; by the retry's, a minute later, none.
	token := expiringJWT(base.Add(expirySkew + 2*time.Second))
	target, err := Target{ExportBaseURL: srv.URL + "/fhir", ReportBaseURL: srv.URL + "/fhir", MaxWait: 10 * time.Second,
		Credentials: StaticTokens(map[string]string{"A": token}),
		Clock:       func() time.Time { return base.Add(time.Duration(elapsed.Load())) }}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	w := &World{target: &target, scenario: "unit"}
	d := w.downloadFile(context.Background(), token, check.ManifestItem{Type: "Patient", URL: srv.URL + "/f/0"}, "", lineChecks{typeLines: &atomic.Int64{}})
	if asked.Load() != 2 || d.x.Status != http.StatusUnauthorized {
		t.Fatalf("expected a 429 then a 401, got %d requests, last %d", asked.Load(), d.x.Status)
	}
	if !errors.Is(d.err, check.ErrCredentialExpired) {
		t.Errorf("expected the 401 to the retry sent past exp to be ErrCredentialExpired, got %v", d.err)
	}
}

// The same for a request of the scenarios (World.request): a 401 to the retry of a 429, sent once the
// target's Clock has passed the static token's exp, is the token's; sent before it (the clock not moved), the
// server's.
func TestA401ToARequestRetriedPastTheTokensExpIsTheTokens(t *testing.T) {
	base := time.Now().Add(24 * time.Hour) // a day ahead: by this machine's clock the token never expires
	for _, moves := range []time.Duration{time.Minute, 0} {
		var asked, elapsed atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if asked.Add(1) == 1 {
				elapsed.Add(int64(moves))
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusUnauthorized)
		}))
		token := expiringJWT(base.Add(expirySkew + 2*time.Second))
		target, err := Target{ExportBaseURL: srv.URL, ReportBaseURL: srv.URL, MaxWait: 10 * time.Second,
			Credentials: StaticTokens(map[string]string{"A": token}),
			Clock:       func() time.Time { return base.Add(time.Duration(elapsed.Load())) }}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		w := &World{target: &target, scenario: "unit"}
		x, err := w.request(context.Background(), "A", http.MethodGet, w.exportEndpoint("$export-poll-status?_jobId=x"), nil, nil)
		srv.Close()
		if asked.Load() != 2 || x == nil || x.Status != http.StatusUnauthorized {
			t.Fatalf("clock moved %s: expected a 429 then a 401, got %d requests", moves, asked.Load())
		}
		if expired := errors.Is(err, check.ErrCredentialExpired); expired != (moves > 0) {
			t.Errorf("clock moved %s: the 401 called the token's expiry: %v, want %v (%v)", moves, expired, moves > 0, err)
		}
	}
}
