package harness

import (
	"strings"
	"testing"
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
