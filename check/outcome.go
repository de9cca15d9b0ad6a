package check

import (
	"cmp"
	"encoding/json"
	"mime"
	"strconv"
	"strings"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// CheckOperationOutcome requires a FHIR OperationOutcome in JSON, as application/fhir+json: BDA2 and FHIR
// both want that media type. A profile that tolerates HAPI's (OutcomeMediaTypeTolerable) checks the rest
// through WithOutcomeMediaType.
func CheckOperationOutcome(req string, x *Exchange) error {
	if len(x.Body) == 0 {
		return Violationf(req, "body of "+x.Method+" "+x.URL, "a FHIR OperationOutcome", "an empty body")
	}
	if mt := x.MediaType(); mt != "application/fhir+json" {
		return Violationf(req, "Content-Type of "+x.Method+" "+x.URL, "application/fhir+json for an OperationOutcome", "%s", cmp.Or(mt, "none"))
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

// Outcome is what the harness reads of an OperationOutcome beyond its schema: its issues' codes and texts.
type Outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
		Details     struct {
			Text string `json:"text"`
		} `json:"details"`
	} `json:"issue"`
}

// ParseOutcome reads body as an OperationOutcome; ok is false for any other body.
func ParseOutcome(body []byte) (oo Outcome, ok bool) {
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return Outcome{}, false
	}
	return oo, true
}

// FirstText is what the first issue says, its diagnostics or else its details' text; "" when it says nothing.
func (oo Outcome) FirstText() string {
	if len(oo.Issue) == 0 {
		return ""
	}
	return cmp.Or(oo.Issue[0].Diagnostics, oo.Issue[0].Details.Text)
}

// FailureIssue is the first issue of severity error or fatal, which FHIR R4's IssueSeverity defines as an
// issue that caused the action to fail ("sufficiently important to cause the action to fail"; "caused the
// action to fail and no further checking could be performed"), and ok false when there is none: an answer of
// success (2xx) that carries one says its action failed.
func (oo Outcome) FailureIssue() (severity, text string, ok bool) {
	for _, is := range oo.Issue {
		if is.Severity == "error" || is.Severity == "fatal" {
			return is.Severity, cmp.Or(is.Diagnostics, is.Details.Text), true
		}
	}
	return "", "", false
}

// HasTransientIssue tells a 5xx that BDA2 allows a client to retry ("transient" issue code).
func HasTransientIssue(body []byte) bool {
	oo, ok := ParseOutcome(body)
	if !ok {
		return false
	}
	for _, is := range oo.Issue {
		if is.Code == "transient" {
			return true
		}
	}
	return false
}

// OutcomeMediaTypeTolerable says whether mt is one of the media types HAPI, and so FUT, sends an error
// OperationOutcome with instead of application/fhir+json: its legacy application/json+fhir (a FAILED job's
// 500), none at all (a DELETE's answer: handleDeleteRequest sets only the status; from 8.6 a cancelled job's
// 404 to a poll too, processCancelledJobResponse), or application/json, which a gateway in front of it may put
// on a body that had none.
func OutcomeMediaTypeTolerable(mt string) bool {
	switch mt {
	case "application/json+fhir", "", "application/json":
		return true
	}
	return false
}

// AsksGenericJSON tells whether an Accept header names the generic application/json (at a q above 0): FHIR R4
// http.html, "Content Types and encodings", asks a server given one to "respond with the requested mime
// type", so an OperationOutcome answering it as application/json follows FHIR's content negotiation where
// BDA2's Error Status names application/fhir+json.
func AsksGenericJSON(accept string) bool {
	for _, r := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(r))
		if err != nil || mt != "application/json" {
			continue
		}
		if q, err := strconv.ParseFloat(params["q"], 64); params["q"] == "" || err == nil && q > 0 {
			return true
		}
	}
	return false
}

// WithOutcomeMediaType returns a copy of x whose Content-Type is application/fhir+json, for a profile that
// tolerates the media type x came with to check the rest of the OperationOutcome.
func WithOutcomeMediaType(x *Exchange) *Exchange {
	copied := *x
	copied.Header = x.Header.Clone()
	if copied.Header == nil {
		copied.Header = make(map[string][]string)
	}
	copied.Header.Set("Content-Type", "application/fhir+json")
	return &copied
}

// CheckOptionalOutcomeBody holds a success answer whose body the IG makes optional to what it says that body
// is. BDA2 "Bulk Data Kick-off Request" and "Bulk Data Delete Request", "Response - Success": a `202 Accepted`
// and "Optionally, a FHIR OperationOutcome resource in the body in JSON format". An empty body (or one of
// white space) passes; any other must be a JSON object whose resourceType is OperationOutcome. Its media type
// is not judged: the IG names one for an error's OperationOutcome only ("Error Status"), and HAPI's DELETE
// answers set none (the digest's C1). SMART's Bulk Data Tester checks the same (smart-on-fhir/bdt,
// src/lib/assertions.ts: expectSuccessfulKickOff and cancellation.OK, "if set, it must be OperationOutcome").
func CheckOptionalOutcomeBody(req string, x *Exchange) error {
	body := strings.TrimSpace(string(x.Body))
	if body == "" {
		return nil
	}
	if _, ok := ParseOutcome([]byte(body)); ok {
		return nil
	}
	return Violationf(req, "body of the "+StatusPhrase(x.Status)+" to "+x.Method+" "+x.URL,
		"no body, or a FHIR OperationOutcome in JSON (BDA2 \"Response - Success\": \"Optionally, a FHIR OperationOutcome resource in the body in JSON format\")",
		"a body that is no OperationOutcome (Content-Type %s): %q", cmp.Or(x.Header.Get("Content-Type"), "none"), Clip(Printable(body), 120))
}
