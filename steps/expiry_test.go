package steps

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
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
