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
// server's.
func TestA401ToADownloadRetriedPastTheTokensExpIsTheTokens(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asked.Add(1) == 1 {
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	// By the first request's time it has more than the skew left; by the retry's, 2 s later, less.
	token := expiringJWT(time.Now().Add(expirySkew + 1500*time.Millisecond))
	target, err := Target{ExportBaseURL: srv.URL + "/fhir", ReportBaseURL: srv.URL + "/fhir", MaxWait: 10 * time.Second,
		Credentials: StaticTokens(map[string]string{"A": token})}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	w := &World{target: &target, scenario: "unit"}
	d := w.downloadFile(context.Background(), token, check.ManifestItem{Type: "Patient", URL: srv.URL + "/f/0"}, "", &atomic.Int64{}, nil)
	if asked.Load() != 2 || d.x.Status != http.StatusUnauthorized {
		t.Fatalf("expected a 429 then a 401, got %d requests, last %d", asked.Load(), d.x.Status)
	}
	if !errors.Is(d.err, check.ErrCredentialExpired) {
		t.Errorf("expected the 401 to the retry sent past exp to be ErrCredentialExpired, got %v", d.err)
	}
}
