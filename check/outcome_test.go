package check

import (
	"cmp"
	"strings"
	"testing"
)

func TestAsksGenericJSON(t *testing.T) {
	for accept, want := range map[string]bool{
		"application/json":                        true,
		"Application/JSON; charset=utf-8":         true,
		"application/fhir+json, application/json": true,
		"application/json;q=0.5":                  true,
		"application/json;q=0":                    false, // "not acceptable" (RFC 9110 §12.4.2)
		"application/fhir+json":                   false,
		"application/json+fhir":                   false,
		"*/*":                                     false, // names no generic JSON: FHIR's rule is for a named type
		"":                                        false,
		"application/json;q=x":                    false,
		"text/html, application/json;q=0.9, */*;q": true,
	} {
		if got := AsksGenericJSON(accept); got != want {
			t.Errorf("AsksGenericJSON(%q) = %v, want %v", accept, got, want)
		}
	}
}

// BDA2 "Response - Success" of the kick-off and of the DELETE: "Optionally, a FHIR OperationOutcome resource
// in the body in JSON format". No body passes, an OperationOutcome passes whatever its media type, and any
// other body fails, naming what came.
func TestCheckOptionalOutcomeBody(t *testing.T) {
	for _, tc := range []struct {
		body, contentType string
		ok                bool
	}{
		{"", "", true},
		{" \r\n", "", true},
		{`{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}`, "application/fhir+json", true},
		{`{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}`, "", true},
		{`{"resourceType":"Parameters"}`, "application/fhir+json", false},
		{`{"status":"accepted"}`, "application/json", false},
		{`[{"resourceType":"OperationOutcome"}]`, "application/json", false},
		{"Accepted", "text/plain", false},
	} {
		x := &Exchange{Method: "DELETE", URL: "https://x.example/status/1", Status: 202, Header: map[string][]string{}, Body: []byte(tc.body)}
		if tc.contentType != "" {
			x.Header.Set("Content-Type", tc.contentType)
		}
		err := CheckOptionalOutcomeBody("EXP-CANCEL", x)
		if (err == nil) != tc.ok {
			t.Errorf("body %q: want ok=%v, got %v", tc.body, tc.ok, err)
		}
		if err != nil && (!strings.Contains(err.Error(), "EXP-CANCEL") || !strings.Contains(err.Error(), "no OperationOutcome") || !strings.Contains(err.Error(), cmp.Or(tc.contentType, "none"))) {
			t.Errorf("body %q: the failure must name the requirement, what came and its Content-Type: %v", tc.body, err)
		}
	}
}
