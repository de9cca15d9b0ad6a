package refserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

const (
	contentTypeFHIRJSON = "application/fhir+json; charset=utf-8"
	contentTypeJSON     = "application/json"
	contentTypeNDJSON   = "application/fhir+ndjson"
	// contentTypeFHIRJSONLegacy is HAPI's Constants.CT_FHIR_JSON, the DSTU2-era media type it still answers a
	// FAILED export job with (the digest's C1).
	contentTypeFHIRJSONLegacy = "application/json+fhir; charset=utf-8"
)

// Issue severities and codes used by the server (FHIR R4 value sets).
const (
	sevError       = "error"
	sevWarning     = "warning"
	sevInformation = "information"

	codeInvalid       = "invalid"
	codeLogin         = "login"
	codeForbidden     = "forbidden"
	codeNotFound      = "not-found"
	codeNotSupported  = "not-supported"
	codeTooCostly     = "too-costly"
	codeThrottled     = "throttled"
	codeRequired      = "required"
	codeException     = "exception"
	codeInformational = "informational"
	codeProcessing    = "processing" // HAPI's framework gives every exception a provider throws this code
)

type operationOutcome struct {
	ResourceType string    `json:"resourceType"`
	Issue        []ooIssue `json:"issue"`
}

type ooIssue struct {
	Severity    string `json:"severity"`
	Code        string `json:"code,omitempty"` // 1..1 in FHIR; empty only where a profile emulates HAPI ≤ 8.4
	Diagnostics string `json:"diagnostics,omitempty"`
}

// writeJSON marshals v and writes it with the given status and Content-Type.
// Every header is set before WriteHeader. A marshalling failure becomes a 500
// OperationOutcome.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeOperationOutcome(w, http.StatusInternalServerError, sevError, codeException, "encode response: "+err.Error())
		return
	}
	writeBody(w, status, contentType, body)
}

// writeBody writes raw bytes with the given status and Content-Type; "" sends none (net/http would
// otherwise sniff one).
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	h := w.Header()
	if contentType == "" {
		h["Content-Type"] = nil
	} else {
		h.Set("Content-Type", contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client went away; nothing useful to do
}

// writeOperationOutcome writes a single-issue OperationOutcome as
// application/fhir+json.
func writeOperationOutcome(w http.ResponseWriter, status int, severity, code, diagnostics string) {
	writeOperationOutcomeAs(w, status, contentTypeFHIRJSON, severity, code, diagnostics)
}

// writeOperationOutcomeAs is writeOperationOutcome with another Content-Type ("": none), where a profile
// emulates HAPI's.
func writeOperationOutcomeAs(w http.ResponseWriter, status int, contentType, severity, code, diagnostics string) {
	// Diagnostics quote what a request sent (a _type, a parameter's name): a request of megabytes must not
	// come back as megabytes, nor split a character.
	if len(diagnostics) > maxDiagnostics {
		diagnostics = strings.ToValidUTF8(diagnostics[:maxDiagnostics], "") + fmt.Sprintf("… [%d bytes more]", len(diagnostics)-maxDiagnostics)
	}
	oo := operationOutcome{
		ResourceType: "OperationOutcome",
		Issue:        []ooIssue{{Severity: severity, Code: code, Diagnostics: diagnostics}},
	}
	// Diagnostics go out as written, '<', '>' and '&' unescaped, as a FHIR JSON parser writes them (HAPI's
	// cancel messages name a job as "<id>").
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception"}]}`)
	if err := enc.Encode(oo); err == nil { // cannot fail for this fixed shape; keep a valid answer anyway
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	}
	writeBody(w, status, contentType, body)
}

// maxDiagnostics bounds an OperationOutcome's diagnostics, in bytes.
const maxDiagnostics = 1000

// writeError is writeOperationOutcome with severity error.
func writeError(w http.ResponseWriter, status int, code, diagnostics string) {
	writeOperationOutcome(w, status, sevError, code, diagnostics)
}
