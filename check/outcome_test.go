package check

import "testing"

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
