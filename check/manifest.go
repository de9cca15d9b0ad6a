package check

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// Manifest is the Bulk Data complete-status body (BDA2 "Complete Status").
type Manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestItem `json:"output"`
	Error               []ManifestItem `json:"error"`
	Deleted             []ManifestItem `json:"deleted"`
}

// ManifestItem is one file of a manifest.
type ManifestItem struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count *int64 `json:"count"`
}

// CheckManifest holds a complete-status answer to the JSON Schema in fixtures/, then to what a schema cannot
// say, and returns the decoded manifest.
func CheckManifest(req string, x *Exchange) (*Manifest, error) {
	if x.Status != http.StatusOK {
		return nil, Violationf(req, "status of the completed export", StatusPhrase(http.StatusOK), StatusPhrase(x.Status))
	}
	if err := CheckMediaType(req, x, "application/json"); err != nil {
		return nil, err
	}
	if err := fixtures.Validate(fixtures.ManifestSchema, x.Body); err != nil {
		return nil, Violationf(req, "manifest", "a Bulk Data complete-status manifest", "%v", err)
	}
	var m Manifest
	if err := json.Unmarshal(x.Body, &m); err != nil {
		return nil, Violationf(req, "manifest", "a Bulk Data complete-status manifest", "%v", err)
	}
	if _, err := ParseFHIRInstant(m.TransactionTime); err != nil {
		return nil, Violationf(req, "manifest transactionTime", "a FHIR instant", "%q: %v", m.TransactionTime, err)
	}
	// BDA2: request is "the full URL of the original Bulk Data kick-off request". Its host is not compared with
	// the run's: FUT's example names the service's internal host (digest B3).
	if err := CheckAbsoluteURL(req, "manifest request", m.Request); err != nil {
		return nil, err
	}
	// an item's type is the resource type its file holds, and an error file holds OperationOutcomes (BDA2)
	for i, it := range m.Error {
		if it.Type != "OperationOutcome" {
			return nil, Violationf(req, fmt.Sprintf("type of manifest error item %d (%s)", i, it.URL), "OperationOutcome: an error file holds OperationOutcomes", "%q", it.Type)
		}
	}
	// the schema holds a url to its scheme; a URL with no host ("https:///Binary/1") is still no absolute URL
	for _, list := range []struct {
		name  string
		items []ManifestItem
	}{{"output", m.Output}, {"error", m.Error}, {"deleted", m.Deleted}} {
		for i, it := range list.items {
			if err := CheckAbsoluteURL(req, fmt.Sprintf("url of manifest %s item %d (%s)", list.name, i, it.Type), it.URL); err != nil {
				return nil, err
			}
		}
	}
	return &m, nil
}

// HasManifest tells whether body looks like a manifest (a JSON object with output or transactionTime), which
// an in-progress answer must not carry.
func HasManifest(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, output := m["output"]
	_, transactionTime := m["transactionTime"]
	return output || transactionTime
}
