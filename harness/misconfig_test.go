package harness

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A TARGET with a stray space, a fragment or a query is the user's typo, refused before any request, naming
// the variable: sent, it got "is not a FHIR base URL" and a suggested fix that kept the typo (GET
// http://host/ fhir/metadata, "did you mean TARGET=http://host/ fhir/fhir?"), or a fragment that swallowed
// every path the run appends (GET http://host/fhir#x/metadata requested /fhir).
func TestATargetWithWhiteSpaceAFragmentOrAQueryIsRefused(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"http://127.0.0.1:8080/ fhir", "holds no white space"},
		{"http://127.0.0.1:8080/fhir\tx", "holds no white space"},
		{"http://127.0.0.1:8080/fhir#top", "no fragment"},
		{"http://127.0.0.1:8080/fhir#", "no fragment"},
		{"http://127.0.0.1:8080/fhir?tenant=x", "no query"},
		{"http://127.0.0.1:8080/fhir?", "no query"},
	} {
		for _, name := range []string{"TARGET", "EXPORT_TARGET", "REPORT_TARGET"} {
			var cfg Config
			switch name {
			case "TARGET":
				cfg.Target = tc.target
			case "EXPORT_TARGET":
				cfg.ExportTarget = tc.target
			default:
				cfg.ReportTarget = tc.target
			}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), name+"=") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s=%q: got %v; want an error naming %s and saying %q", name, tc.target, err, name, tc.want)
			}
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080/fhir", "https://fut.example/fhir/", "https://fut.example/my%20fhir", "https://user:pw@fut.example/fhir"} {
		if err := (Config{Target: ok}).Validate(); err != nil {
			t.Errorf("TARGET=%q: %v; want it accepted", ok, err)
		}
	}
}

// http:// in TARGET for a server that speaks only HTTPS gets a 400 from Go's server (as from nginx, Apache,
// Tomcat): the fix names https://, not the path, which was right.
func TestHTTPForAnHTTPSServerSuggestsHTTPS(t *testing.T) {
	ts := httptest.NewTLSServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	plain := "http://" + strings.TrimPrefix(ts.URL, "https://") + "/fhir"
	wantPreflightError(t, Config{Target: plain, Token: refserver.DemoTokenA, RequestTimeout: 5 * time.Second},
		"is not a FHIR base URL", "the server speaks HTTPS (TLS) at "+strings.TrimPrefix(ts.URL, "https://")+": did you mean TARGET="+ts.URL+"/fhir?")
}

// A plain-HTTP server with a wrong path still gets the path's fix: the TLS probe finds no TLS there.
func TestHTTPWithAWrongPathStillSuggestsThePath(t *testing.T) {
	ts := httptest.NewServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	wantPreflightError(t, Config{Target: ts.URL, Token: refserver.DemoTokenA, RequestTimeout: 5 * time.Second},
		"is not a FHIR base URL", "did you mean TARGET="+ts.URL+"/fhir?")
}
