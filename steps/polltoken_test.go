package steps

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"golang.org/x/oauth2"

	"github.com/ehealth-dk/fut-conformance/check"
)

// pollSeen is one request the polling location received, as the server saw it.
type pollSeen struct {
	method                string
	authorization, cookie []string
}

// pollTokenWorld is a World of user A (token "secret-a") whose export's polling location answers a request
// without a token with tokenless (status and body) and user A's with owner; it records every request.
func pollTokenWorld(t *testing.T, maxWait time.Duration, tokenless, owner int, tokenlessBody string) (*World, func() []pollSeen) {
	t.Helper()
	var mu sync.Mutex
	var seen []pollSeen
	w, _ := worldAgainst(t, maxWait, func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, pollSeen{r.Method, r.Header.Values("Authorization"), r.Header.Values("Cookie")})
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer secret-a" {
			rw.WriteHeader(owner)
			return
		}
		if tokenless == http.StatusTooManyRequests {
			rw.Header().Set("Retry-After", "3600")
		}
		rw.WriteHeader(tokenless)
		_, _ = rw.Write([]byte(tokenlessBody))
	})
	w.export = exportState{owner: "A", pollURL: w.exportEndpoint("$export-poll-status?_jobId=1")}
	return w, func() []pollSeen {
		mu.Lock()
		defer mu.Unlock()
		return append([]pollSeen(nil), seen...)
	}
}

const aManifest = `{"transactionTime":"2026-01-01T00:00:00Z","request":"http://x/$export","requiresAccessToken":true,"output":[{"type":"Patient","url":"http://x/Binary/1"}],"error":[]}`

// A polling location that answers a status request without a token fails EXP-POLL-TOKEN, saying what it gave
// away; one that refuses it with any 4xx passes, once the owner's own status request is answered. The request
// meant to go without a token reached the server with no Authorization header and no cookie, and was a GET;
// the owner's followed it, with the token, in the When step: the Then step sends nothing.
func TestAStatusRequestWithoutATokenMustBeRefused(t *testing.T) {
	for _, c := range []struct {
		name             string
		tokenless, owner int
		body             string
		fails            string // a part of the violation, or "" to pass
		skips            string // a part of the skip's reason
	}{
		{name: "running, served", tokenless: http.StatusAccepted, owner: http.StatusAccepted, fails: "got 202 Accepted: the export's status, to a caller without credentials"},
		{name: "complete, served", tokenless: http.StatusOK, owner: http.StatusOK, body: aManifest, fails: "got 200 OK and the export's manifest"},
		{name: "server error", tokenless: http.StatusInternalServerError, owner: http.StatusAccepted, fails: "got 500 Internal Server Error: a server error, not a refusal"},
		{name: "redirect not followed", tokenless: http.StatusNotModified, owner: http.StatusAccepted, fails: "got 304 Not Modified"},
		{name: "401", tokenless: http.StatusUnauthorized, owner: http.StatusAccepted},
		{name: "403", tokenless: http.StatusForbidden, owner: http.StatusOK},
		{name: "404 hiding it", tokenless: http.StatusNotFound, owner: http.StatusAccepted},
		{name: "refused, and the owner too", tokenless: http.StatusNotFound, owner: http.StatusNotFound, skips: "answers no one"},
		{name: "throttled", tokenless: http.StatusTooManyRequests, owner: http.StatusAccepted, skips: "throttled, neither refused nor served"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, seen := pollTokenWorld(t, 2*time.Second, c.tokenless, c.owner, c.body)
			ctx := context.Background()
			if err := w.requestsStatusWithoutToken(ctx, "A"); err != nil {
				t.Fatal(err)
			}
			sent := len(seen())
			err := w.statusWithoutTokenRefused(ctx, "A")
			if len(seen()) != sent {
				t.Error("the Then step sent a request")
			}
			var v *check.Violation
			switch {
			case c.fails != "":
				if !errors.As(err, &v) || !strings.Contains(err.Error(), c.fails) || !strings.Contains(v.Expected, "refused with a 4xx") ||
					!strings.Contains(v.Subject, "GET "+w.export.pollURL+" sent without a token (no Authorization header") {
					t.Fatalf("want a violation got %q, got %v", c.fails, err)
				}
				if w.last != w.export.tokenless {
					t.Error("the failure must show the answer to the request without a token")
				}
			case c.skips != "":
				if !errors.Is(err, godog.ErrSkip) || !strings.Contains(err.Error(), c.skips) {
					t.Fatalf("want a skip saying %q, got %v", c.skips, err)
				}
			case err != nil:
				t.Fatalf("a refusal with %d must pass, got %v", c.tokenless, err)
			}
			reqs := seen()
			if len(reqs) == 0 || reqs[0].method != http.MethodGet || len(reqs[0].authorization) != 0 || len(reqs[0].cookie) != 0 {
				t.Fatalf("the first request must be a GET without Authorization or cookie, got %+v", reqs)
			}
			for _, r := range reqs {
				if r.method != http.MethodGet {
					t.Errorf("only GETs are sent, got a %s", r.method)
				}
			}
			if last := reqs[len(reqs)-1]; len(reqs) < 2 || len(last.authorization) != 1 || last.authorization[0] != "Bearer secret-a" {
				t.Errorf("the owner's own status request must follow, with the token, got %+v", reqs)
			}
		})
	}
}

// A polling location that carries user info (https://user:password@host/...) would have Go's client send it
// as Basic credentials: the request without a token leaves it out.
func TestAStatusRequestWithoutATokenDropsTheURLsUserInfo(t *testing.T) {
	w, seen := pollTokenWorld(t, time.Minute, http.StatusUnauthorized, http.StatusAccepted, "")
	u, err := url.Parse(w.export.pollURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("user", "password")
	w.export.pollURL = u.String()
	if err := w.requestsStatusWithoutToken(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	if reqs := seen(); len(reqs) != 2 || len(reqs[0].authorization) != 0 || len(reqs[1].authorization) != 1 {
		t.Fatalf("want one request without Authorization, then the owner's with it, got %+v", reqs)
	}
	if strings.Contains(w.export.tokenless.URL, "password") {
		t.Errorf("the request's URL keeps the user info: %s", w.export.tokenless.URL)
	}
}

// A run that sends no token (authentication mode none) has no protection for the status request to match:
// the scenario is not applicable, with the reason, before any request of its own.
func TestAStatusRequestWithoutATokenIsNotApplicableWithoutOne(t *testing.T) {
	w, seen := pollTokenWorld(t, time.Minute, http.StatusOK, http.StatusOK, "")
	w.target.Credentials = map[string]oauth2.TokenSource{"A": nil}
	err := w.requestsStatusWithoutToken(context.Background(), "A")
	if !errors.Is(err, godog.ErrSkip) || !w.notApplicable || !strings.Contains(w.skipReason, "no token for user A") || !strings.Contains(w.skipReason, "authentication mode none") {
		t.Fatalf("want not applicable for want of a token, got %v (not applicable %v, %q)", err, w.notApplicable, w.skipReason)
	}
	if reqs := seen(); len(reqs) != 0 {
		t.Fatalf("no request may be sent, got %+v", reqs)
	}
}

// The pool plans the user's shared export for the scenario: its status request without a token is a GET,
// read-only, so it needs no export of its own.
func TestAStatusRequestWithoutATokenReadsTheSharedExport(t *testing.T) {
	for _, profile := range []string{"fut", "bulkdata"} {
		n := needsOf(profile, []string{"user A has kicked off a system export", "the export status is requested without a token, then by user A with the token",
			"the request without a token is refused, and user A's is answered"})
		if n != (scenarioNeeds{sharedExport: "A"}) {
			t.Errorf("%s: needs %+v, want user A's shared export", profile, n)
		}
	}
}

// With CLIENT_CERT the request without a token still goes over a connection that presented the client
// certificate, and a failure over https says so; over http, or without a certificate, it says nothing of it.
func TestAStatusRequestWithoutATokenNamesTheClientCertificate(t *testing.T) {
	w, _ := pollTokenWorld(t, time.Minute, http.StatusOK, http.StatusOK, "")
	if note := w.clientCertificateNote("https://fut.example/fhir/$export-poll-status?_jobId=1"); note != "" {
		t.Errorf("no client certificate: want no note, got %q", note)
	}
	w.target.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{{}}}}}
	if note := w.clientCertificateNote("https://fut.example/fhir/$export-poll-status?_jobId=1"); !strings.Contains(note, "CLIENT_CERT") {
		t.Errorf("with a client certificate over https: want a note naming CLIENT_CERT, got %q", note)
	}
	if note := w.clientCertificateNote("http://fut.example/fhir/$export-poll-status?_jobId=1"); note != "" {
		t.Errorf("over http: want no note, got %q", note)
	}
}
