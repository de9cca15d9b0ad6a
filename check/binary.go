package check

import (
	"encoding/base64"
	"encoding/json"
)

// Binary is the part of a FHIR Binary the checks read.
type Binary struct {
	ResourceType    string       `json:"resourceType"`
	ID              string       `json:"id"`
	ContentType     string       `json:"contentType"`
	Data            base64Binary `json:"data"`
	SecurityContext *struct {
		Identifier *struct {
			Value string `json:"value"`
		} `json:"identifier"`
		Reference string `json:"reference"`
	} `json:"securityContext"`
}

// SecurityUser is the user the Binary's securityContext identifies, "" when none.
func (b *Binary) SecurityUser() string {
	if b.SecurityContext != nil && b.SecurityContext.Identifier != nil {
		return b.SecurityContext.Identifier.Value
	}
	return ""
}

// DecodeBinary reads the response body as a FHIR Binary in JSON.
func DecodeBinary(req string, x *Exchange) (*Binary, error) {
	var b Binary
	if err := json.Unmarshal(x.Body, &b); err != nil {
		return nil, Violationf(req, "body of "+x.Method+" "+x.URL, "a FHIR Binary resource in JSON", "invalid JSON or base64 data: %v", err)
	}
	if b.ResourceType != "Binary" {
		return nil, Violationf(req, "body of "+x.Method+" "+x.URL, `resourceType "Binary"`, "%q", b.ResourceType)
	}
	if b.ContentType == "" {
		return nil, Violationf(req, "Binary.contentType", "a media type (Binary.contentType is 1..1 in FHIR R4)", "none")
	}
	return &b, nil
}

// base64Binary is FHIR's base64Binary in JSON: base64 whose groups of four may be parted by white space, R4's
// (\s*([0-9a-zA-Z\+/=]){4}\s*)+ (encoding/json's []byte takes only CR and LF).
type base64Binary []byte

func (b *base64Binary) UnmarshalJSON(raw []byte) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	clean := []byte(s)
	clean = clean[:stripWhiteSpace(clean)]
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return err
	}
	*b = out[:n]
	return nil
}
