package harness

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// movingClock is the clock of a run and of its reference server together (Config.clock, refserver's Clock):
// the real clock plus an offset that every answer of the server, but the token endpoint's, moves on by step.
// A run of n requests then lasts n·step longer for its tokens, however fast the machine, and no test waits for
// a token to expire. A token is handed out until renewAhead before it expires, far more than step: one
// handed out is still good when the server reads it, with up to renewAhead/step requests in flight.
func movingClock(step time.Duration) (*aheadClock, func(http.Handler) http.Handler) {
	clock := &aheadClock{}
	return clock, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, r)
			if r.URL.Path != refserver.TokenPath {
				clock.jump(step)
			}
		})
	}
}

// An issued token is handed out until renewAhead before it expires by the run's clock, then renewed: moving
// the clock on renews it, with no wait, and nothing else does.
func TestAnIssuedTokenIsRenewedByTheRunsClock(t *testing.T) {
	var issued atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "issued-" + time.Now().String(), "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(ts.Close)
	clock := &aheadClock{}
	cc := clientcredentials.Config{ClientID: "c", ClientSecret: "s", TokenURL: ts.URL}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client())
	src := &renewingSource{fetch: tokenFunc(func() (*oauth2.Token, error) { return cc.Token(ctx) }), now: clock.Now}
	token := func() string {
		t.Helper()
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	first := token()
	for _, c := range []struct {
		move    time.Duration
		renewed bool
	}{
		{0, false},
		{time.Hour - renewAhead - time.Minute, false}, // a minute more than renewAhead left
		{2 * time.Minute, true},                       // within renewAhead of its expiry: a new one
		{time.Minute, false},                          // the new one lives an hour from its issue
	} {
		clock.jump(c.move)
		before := issued.Load()
		tok := token()
		if renewed := issued.Load() > before; renewed != c.renewed || renewed == (tok == first) {
			t.Fatalf("clock moved on %s more: renewed %v (token changed %v), want %v", c.move, renewed, tok != first, c.renewed)
		}
		first = tok
	}
}
