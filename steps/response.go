package steps

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

func registerResponseSteps(sc *godog.ScenarioContext) {
	sc.Step(`^the response status is (\d{3})$`, on1((*World).responseStatusIs))
	sc.Step(`^the response status is a client error$`, on0((*World).responseStatusIsClientError))
	sc.Step(`^the response header "([^"]*)" is an absolute URL$`, on1((*World).responseHeaderIsAbsoluteURL))
	sc.Step(`^the response header "([^"]*)", when present, is delta-seconds or an HTTP-date$`, on1((*World).responseHeaderIsRetryAfter))
	sc.Step(`^the response Content-Type is "([^"]*)"$`, on1((*World).responseContentTypeIs))
	sc.Step(`^the response body is an OperationOutcome$`, on0((*World).responseBodyIsOperationOutcome))
	sc.Step(`^the response body is a Binary$`, on0((*World).responseBodyIsBinary))
}

func (w *World) responseStatusIs(_ context.Context, code string) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	want, _ := strconv.Atoi(code)
	if x.Status != want {
		return violation("", "status of "+x.Method+" "+x.URL, statusPhrase(want), statusPhrase(x.Status))
	}
	return nil
}

func (w *World) responseStatusIsClientError(_ context.Context) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	if x.Status < 400 || x.Status > 499 {
		return violation("", "status of "+x.Method+" "+x.URL, "a client error (4xx)", statusPhrase(x.Status))
	}
	return nil
}

func (w *World) responseHeaderIsAbsoluteURL(_ context.Context, name string) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	return checkAbsoluteURL("", "header "+name, x.Header.Get(name))
}

func checkAbsoluteURL(req, subject, value string) error {
	if value == "" {
		return violation(req, subject, "an absolute http(s) URL", "nothing")
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return violation(req, subject, "an absolute http(s) URL", "%q", value)
	}
	return nil
}

func (w *World) responseHeaderIsRetryAfter(_ context.Context, name string) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	values := x.Header.Values(name)
	if len(values) == 0 {
		return nil
	}
	if len(values) > 1 {
		return violation("", "header "+name, "one value", "%d values %q", len(values), values)
	}
	if _, err := ParseRetryAfter(values[0], x.responseTime()); err != nil {
		return violation("", "header "+name, "delay-seconds or an HTTP-date (RFC 9110 §10.2.3)", "%q", values[0])
	}
	return nil
}

func (w *World) responseContentTypeIs(_ context.Context, want string) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	return checkMediaType("", x, want)
}

// checkMediaType compares media types only: parameters such as charset are tolerated.
func checkMediaType(req string, x *Exchange, want string) error {
	if x.MediaType() != strings.ToLower(want) {
		got := x.Header.Get("Content-Type")
		if got == "" {
			got = "no Content-Type"
		}
		return violation(req, "Content-Type of "+x.Method+" "+x.URL, want+" (parameters such as charset allowed)", "%s", got)
	}
	return nil
}

func (w *World) responseBodyIsOperationOutcome(_ context.Context) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	return w.checkOutcome("", x)
}

// toleranceNoIssueCode: HAPI ≤ 8.4 sends error OperationOutcomes without issue.code (features/PROFILES.md).
const toleranceNoIssueCode = "operation-outcome-without-issue-code"

// checkOutcome is checkOperationOutcome under the run's profile: where the profile tolerates an issue without
// a code, the rest of the OperationOutcome is still checked, and the missing code is reported as a known
// deviation.
func (w *World) checkOutcome(req string, x *Exchange) error {
	if w.profiles.Tolerance[toleranceNoIssueCode][w.target.Profile] {
		if patched, missing := withIssueCodes(x.Body); missing > 0 {
			w.knownDeviation(cmp.Or(req, w.primaryRequirement()), fmt.Sprintf("%s: the OperationOutcome of %s %s has %d issue(s) without a code, accepted by profile %s", toleranceNoIssueCode, x.Method, x.URL, missing, w.target.Profile))
			copied := *x
			copied.Body = patched
			x = &copied
		}
	}
	return checkOperationOutcome(req, x)
}

// withIssueCodes returns body with a placeholder code on every issue that has none, and how many had none.
func withIssueCodes(body []byte) ([]byte, int) {
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

// checkOperationOutcome requires a FHIR OperationOutcome in JSON: BDA2 and FHIR both want
// application/fhir+json; application/json is tolerated because FUT's Envoy and HAPI's DELETE answers set no
// FHIR media type of their own.
func checkOperationOutcome(req string, x *Exchange) error {
	if len(x.Body) == 0 {
		return violation(req, "body of "+x.Method+" "+x.URL, "a FHIR OperationOutcome", "an empty body")
	}
	switch mt := x.MediaType(); mt {
	case "application/fhir+json", "application/json", "application/json+fhir", "":
	default:
		return violation(req, "Content-Type of "+x.Method+" "+x.URL, "application/fhir+json for an OperationOutcome", "%s", mt)
	}
	if err := fixtures.Validate(fixtures.OperationOutcomeSchema, x.Body); err != nil {
		return violation(req, "body of "+x.Method+" "+x.URL, "a valid FHIR OperationOutcome", "%v", err)
	}
	return nil
}

func (w *World) responseBodyIsBinary(_ context.Context) error {
	x, err := w.lastResponse()
	if err != nil {
		return err
	}
	_, err = decodeBinary("", x)
	return err
}

// binary is the part of a FHIR Binary the steps read.
type binary struct {
	ResourceType    string `json:"resourceType"`
	ID              string `json:"id"`
	ContentType     string `json:"contentType"`
	Data            []byte `json:"data"` // base64 in JSON
	SecurityContext *struct {
		Identifier *struct {
			Value string `json:"value"`
		} `json:"identifier"`
		Reference string `json:"reference"`
	} `json:"securityContext"`
}

func (b *binary) securityUser() string {
	if b.SecurityContext != nil && b.SecurityContext.Identifier != nil {
		return b.SecurityContext.Identifier.Value
	}
	return ""
}

func decodeBinary(req string, x *Exchange) (*binary, error) {
	var b binary
	if err := json.Unmarshal(x.Body, &b); err != nil {
		return nil, violation(req, "body of "+x.Method+" "+x.URL, "a FHIR Binary resource in JSON", "invalid JSON or base64 data: %v", err)
	}
	if b.ResourceType != "Binary" {
		return nil, violation(req, "body of "+x.Method+" "+x.URL, `resourceType "Binary"`, "%q", b.ResourceType)
	}
	if b.ContentType == "" {
		return nil, violation(req, "Binary.contentType", "a media type (Binary.contentType is 1..1 in FHIR R4)", "none")
	}
	return &b, nil
}

// isJSONObjectWith tells whether body is a JSON object holding key, used to recognise a manifest.
func isJSONObjectWith(body []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// responseTime is the server's Date when it sent one, else when the response arrived: the reference for an
// HTTP-date Retry-After.
func (x *Exchange) responseTime() time.Time {
	if d := x.Header.Get("Date"); d != "" {
		if parsed, err := http.ParseTime(d); err == nil {
			return parsed
		}
	}
	return x.Received
}
