package refserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
)

// parameters is a FHIR Parameters resource as far as the server reads it.
// Each parameter keeps its raw JSON so it can be echoed back exactly as sent.
type parameters struct {
	ResourceType string            `json:"resourceType"`
	Parameter    []json.RawMessage `json:"parameter"`
}

// parameter is the part of a Parameters.parameter the server inspects.
type parameter struct {
	Name           string          `json:"name"`
	ValueString    *string         `json:"valueString"`
	ValueInstant   *string         `json:"valueInstant"`
	ValueReference json.RawMessage `json:"valueReference"`
}

// namedParam is a decoded parameter plus its raw JSON.
type namedParam struct {
	parameter
	raw json.RawMessage
}

// readBody reads the request body up to the configured cap. On failure it has
// already answered (413 beyond the cap, 400 otherwise) and returns ok=false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil {
		return nil, true
	}
	tooLarge := func() {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooCostly,
			fmt.Sprintf("Request body exceeds the limit of %d bytes", s.cfg.MaxBodyBytes))
	}
	if r.ContentLength > s.cfg.MaxBodyBytes { // refused unread: under Expect: 100-continue, never asked for
		tooLarge()
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			tooLarge()
			return nil, false
		}
		writeError(w, http.StatusBadRequest, codeInvalid, "read request body: "+err.Error())
		return nil, false
	}
	return body, true
}

// checkJSONContentType answers 415 unless the Content-Type is
// application/fhir+json or application/json (parameters such as charset are
// allowed). An absent Content-Type is accepted when allowMissing is set.
func checkJSONContentType(w http.ResponseWriter, r *http.Request, allowMissing bool) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" && allowMissing {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/fhir+json" || mt == "application/json") {
		return true
	}
	writeError(w, http.StatusUnsupportedMediaType, codeNotSupported,
		fmt.Sprintf("Unsupported Content-Type %q: send a FHIR Parameters resource as application/fhir+json", ct))
	return false
}

// decodeParameters parses body as a FHIR Parameters resource. An empty body
// yields an empty Parameters.
func decodeParameters(body []byte) ([]namedParam, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var p parameters
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("request body has trailing data after the JSON resource")
	}
	if p.ResourceType != "Parameters" {
		return nil, fmt.Errorf("request body must be a FHIR Parameters resource, got resourceType %q", p.ResourceType)
	}
	out := make([]namedParam, 0, len(p.Parameter))
	for i, raw := range p.Parameter {
		var np namedParam
		if err := json.Unmarshal(raw, &np.parameter); err != nil {
			return nil, fmt.Errorf("Parameters.parameter[%d] is malformed: %v", i, err)
		}
		if np.Name == "" {
			return nil, fmt.Errorf("Parameters.parameter[%d] has no name", i)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("Parameters.parameter[%d] is malformed: %v", i, err)
		}
		np.raw = compact.Bytes()
		out = append(out, np)
	}
	return out, nil
}

// paramsNamed returns the parameters with the given name.
func paramsNamed(ps []namedParam, name string) []namedParam {
	var out []namedParam
	for _, p := range ps {
		if p.Name == name {
			out = append(out, p)
		}
	}
	return out
}
