package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// With PRIVATE_KEY and no TOKEN_URL, the token endpoint is the one the server's SMART configuration names, as
// SMART clients find it: the run passes, and says where its TOKEN_URL came from.
func TestTheTokenEndpointIsDiscoveredFromTheSMARTConfiguration(t *testing.T) {
	rec := &tokenRecorder{}
	ts := httptest.NewServer(rec.wrap(refserverHandler(t, refserver.Config{})))
	t.Cleanup(ts.Close)
	cfg := smartConfig(ts.URL)
	cfg.TokenURL, cfg.Tags = "", "@cross-user"
	res, out, _ := runTarget(t, ts.URL, cfg)
	wantCrossUserPass(t, res, out)
	if want := "TOKEN_URL " + ts.URL + refserver.TokenPath + ", the token_endpoint of " + ts.URL + "/fhir/.well-known/smart-configuration"; !strings.Contains(out, want) {
		t.Errorf("the output does not say where TOKEN_URL came from (%q):\n%s", want, out)
	}
	if rec.perClient[refserver.DemoClientIDA] == 0 {
		t.Errorf("no token was issued to %s", refserver.DemoClientIDA)
	}
}

// A SMART configuration the run cannot use ends it before any scenario, saying what it lacks and to set
// TOKEN_URL or change the credentials.
func TestAnUnusableSMARTConfigurationIsAPreflightError(t *testing.T) {
	for name, c := range map[string]struct {
		status           int
		body, cause, fix string
	}{
		"none":              {http.StatusNotFound, `{"resourceType":"OperationOutcome"}`, "answered 404 Not Found", "set TOKEN_URL"},
		"no token_endpoint": {http.StatusOK, `{"capabilities":[]}`, "names no token_endpoint", "set TOKEN_URL"},
		"relative":          {http.StatusOK, `{"token_endpoint":"/auth/token"}`, `names the token_endpoint "/auth/token", not an absolute`, "set TOKEN_URL"},
		"not JSON":          {http.StatusOK, `<html>`, "holds no JSON object", "set TOKEN_URL"},
		"secrets only": {http.StatusOK, `{"token_endpoint":"https://auth.example/token","token_endpoint_auth_methods_supported":["client_secret_basic"]}`,
			"without private_key_jwt", "CLIENT_SECRET with TOKEN_URL"},
		"RS384 only": {http.StatusOK, `{"token_endpoint":"https://auth.example/token","token_endpoint_auth_signing_alg_values_supported":["RS384"]}`,
			"PRIVATE_KEY_B signs ES384", "PRIVATE_KEY_B a key of an algorithm the server accepts"},
	} {
		t.Run(name, func(t *testing.T) {
			inner := refserverHandler(t, refserver.Config{})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/.well-known/smart-configuration") {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(c.status)
					fmt.Fprint(w, c.body)
					return
				}
				inner.ServeHTTP(w, r)
			}))
			t.Cleanup(ts.Close)
			cfg := smartConfig(ts.URL)
			cfg.TokenURL, cfg.Tags = "", "@cross-user"
			var out bytes.Buffer
			cfg.Target, cfg.Out, cfg.Log, cfg.ReportsDir = ts.URL+"/fhir", &out, &out, t.TempDir()
			_, err := Run(context.Background(), cfg)
			var pe *PreflightError
			if !errors.As(err, &pe) || !strings.Contains(pe.Cause, c.cause) || !strings.Contains(pe.Fix, c.fix) {
				t.Fatalf("want a preflight error with %q and fix %q, got %v\n%s", c.cause, c.fix, err, out.String())
			}
		})
	}
}

// The discovery is for the SMART flow only: a run with a client secret still needs TOKEN_URL, so that the
// secret never goes to an endpoint the server under test names.
func TestAClientSecretIsNeverSentToADiscoveredEndpoint(t *testing.T) {
	cfg := Config{Target: "https://fhir.example/fhir", AuthConfig: AuthConfig{ClientID: "a", ClientSecret: "s3cret-value"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "TOKEN_URL is required") {
		t.Fatalf("want TOKEN_URL required with a client secret, got %v", err)
	}
	cfg = Config{Target: "https://fhir.example/fhir", AuthConfig: AuthConfig{ClientID: "a", PrivateKey: demoKeyA, KeyID: "k"}}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("with PRIVATE_KEY and TARGET, TOKEN_URL may be discovered: %v", err)
	}
}
