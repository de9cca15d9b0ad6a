package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A token endpoint that refuses the client and echoes what authenticated it in its error: the Authorization
// header (HTTP Basic: base64 of CLIENT_ID:CLIENT_SECRET, as x/oauth2 sends it first, and alone once it has
// worked), the client_secret and the client_assertion of the body. The preflight quotes the endpoint's error,
// and no form of the client's credentials may be in it, nor on the console or the log. "renewal": the
// endpoint issues one token of a second, by HTTP Basic, and refuses the next request, the renewal.
func TestATokenEndpointEchoingTheClientsCredentialsLeaksNone(t *testing.T) {
	var mu sync.Mutex
	var seen []string // every credential the endpoint received, in the form it received it
	issueFirst := false
	issued := map[string]bool{}
	fhir := refserverHandler(t, refserver.Config{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != refserver.TokenPath {
			fhir.ServeHTTP(w, r)
			return
		}
		_ = r.ParseForm()
		if id, _, basic := r.BasicAuth(); basic && issueFirst {
			mu.Lock()
			first := !issued[id]
			issued[id] = true
			mu.Unlock()
			if first {
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "short-lived-" + id, "token_type": "Bearer", "expires_in": 1})
				return
			}
		}
		echo := strings.Join([]string{r.Header.Get("Authorization"), r.PostForm.Get("client_secret"), r.PostForm.Get("client_assertion")}, " ")
		mu.Lock()
		for _, v := range []string{strings.TrimPrefix(r.Header.Get("Authorization"), "Basic "), r.PostForm.Get("client_secret"), r.PostForm.Get("client_assertion")} {
			if v != "" {
				seen = append(seen, v)
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "unknown credentials: " + echo})
	}))
	t.Cleanup(ts.Close)
	for name, cfg := range map[string]Config{"client secret": oauthConfig(ts.URL), "SMART": smartConfig(ts.URL), "renewal": oauthConfig(ts.URL)} {
		t.Run(name, func(t *testing.T) {
			mu.Lock()
			seen, issueFirst = nil, name == "renewal"
			mu.Unlock()
			var out, log bytes.Buffer
			cfg.Target, cfg.Out, cfg.Log, cfg.ReportsDir = ts.URL+"/fhir", &out, &log, t.TempDir()
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "unknown credentials") {
				t.Fatalf("expected the preflight to quote the token endpoint's refusal, got %v\n%s", err, out.String())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) == 0 {
				t.Fatal("the token endpoint received no credential")
			}
			for where, text := range map[string]string{"error": err.Error(), "stdout": out.String(), "stderr": log.String()} {
				for _, secret := range append(seen, refserver.DemoClientSecretA) {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds the credential %.12s…: %s", where, secret, text)
					}
				}
				wantNoKeyMaterial(t, text, demoKeyA, demoKeyB)
			}
		})
	}
}
