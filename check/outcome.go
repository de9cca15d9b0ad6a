package check

import (
	"encoding/json"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// CheckOperationOutcome requires a FHIR OperationOutcome in JSON: BDA2 and FHIR both want
// application/fhir+json; application/json is tolerated because FUT's Envoy and HAPI's DELETE answers set no
// FHIR media type of their own.
func CheckOperationOutcome(req string, x *Exchange) error {
	if len(x.Body) == 0 {
		return Violationf(req, "body of "+x.Method+" "+x.URL, "a FHIR OperationOutcome", "an empty body")
	}
	switch mt := x.MediaType(); mt {
	case "application/fhir+json", "application/json", "application/json+fhir", "":
	default:
		return Violationf(req, "Content-Type of "+x.Method+" "+x.URL, "application/fhir+json for an OperationOutcome", "%s", mt)
	}
	if err := fixtures.Validate(fixtures.OperationOutcomeSchema, x.Body); err != nil {
		return Violationf(req, "body of "+x.Method+" "+x.URL, "a valid FHIR OperationOutcome", "%v", err)
	}
	return nil
}

// WithIssueCodes returns body with a placeholder code on every issue that has none, and how many had none;
// a profile that tolerates codeless issues checks the rest of the OperationOutcome through it.
func WithIssueCodes(body []byte) ([]byte, int) {
	var oo map[string]any
	if json.Unmarshal(body, &oo) != nil {
		return body, 0
	}
	issues, _ := oo["issue"].([]any)
	missing := 0
	for _, is := range issues {
		if issue, ok := is.(map[string]any); ok {
			if code, _ := issue["code"].(string); code == "" {
				issue["code"] = "unknown"
				missing++
			}
		}
	}
	if missing == 0 {
		return body, 0
	}
	patched, err := json.Marshal(oo)
	if err != nil {
		return body, 0
	}
	return patched, missing
}

// HasTransientIssue tells a 5xx that BDA2 allows a client to retry ("transient" issue code).
func HasTransientIssue(body []byte) bool {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Code string `json:"code"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return false
	}
	for _, is := range oo.Issue {
		if is.Code == "transient" {
			return true
		}
	}
	return false
}
