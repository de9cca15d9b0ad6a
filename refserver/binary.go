package refserver

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// binary is a stored Binary: an export output file or a report.
type binary struct {
	id          string
	owner       string // user id; only this user may read it
	contentType string
	data        []byte
	lastUpdated time.Time
	versionID   string

	// Export files.
	exportJobID  string
	resourceType string

	// Report Binaries: the job that fills this Binary when it is done.
	report *reportJob
}

// Meta extensions HAPI puts on bulk export Binaries (seen in FUT's example).
const (
	extBulkExportJobID        = "https://hapifhir.org/NamingSystem/bulk-export-job-id"
	extBulkExportResourceType = "https://hapifhir.org/NamingSystem/bulk-export-binary-resource-type"
)

type binaryResource struct {
	ResourceType    string      `json:"resourceType"`
	ID              string      `json:"id"`
	Meta            binaryMeta  `json:"meta"`
	ContentType     string      `json:"contentType"`
	SecurityContext securityCtx `json:"securityContext"`
	Data            []byte      `json:"data"` // encoding/json writes []byte as standard base64
}

type binaryMeta struct {
	VersionID   string         `json:"versionId,omitempty"`
	LastUpdated string         `json:"lastUpdated"`
	Extension   []extValString `json:"extension,omitempty"`
}

type extValString struct {
	URL         string `json:"url"`
	ValueString string `json:"valueString"`
}

type securityCtx struct {
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
}

// resource renders b as a FHIR Binary resource.
func (b *binary) resource() binaryResource {
	res := binaryResource{
		ResourceType: "Binary",
		ID:           b.id,
		Meta:         binaryMeta{VersionID: b.versionID, LastUpdated: fhirInstant(b.lastUpdated)},
		ContentType:  b.contentType,
		Data:         b.data,
	}
	if res.Data == nil {
		res.Data = []byte{}
	}
	if b.exportJobID != "" {
		res.Meta.Extension = []extValString{
			{URL: extBulkExportJobID, ValueString: b.exportJobID},
			{URL: extBulkExportResourceType, ValueString: b.resourceType},
		}
	}
	res.SecurityContext.Identifier.Value = b.owner
	return res
}

// binaryRead handles GET [base]/Binary/{id}. Only the owner may read; anyone
// else gets the same 404 as for an unknown id. Export files are served as raw
// NDJSON unless the request asks for the FHIR Binary resource (wantsBinaryResource).
func (s *Server) binaryRead(w http.ResponseWriter, r *http.Request, u User) {
	id := r.PathValue("id")
	now := s.cfg.Clock.Now()

	s.mu.Lock()
	s.sweepLocked(now)
	b := s.binaries[id]
	var snapshot binary
	if b != nil && b.owner == u.ID {
		if b.report != nil {
			s.refreshReportLocked(b.report, now)
		}
		snapshot = *b // data is never mutated in place, only replaced
	}
	s.mu.Unlock()

	if b == nil || snapshot.owner != u.ID {
		writeError(w, http.StatusNotFound, codeNotFound, "Resource Binary/"+id+" is not known")
		return
	}
	if snapshot.exportJobID != "" {
		markAnswer(w, answerExportFile)
	}
	if snapshot.exportJobID != "" && !wantsBinaryResource(r) {
		writeBody(w, http.StatusOK, contentTypeNDJSON, snapshot.data)
		return
	}
	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, snapshot.resource())
}

// wantsBinaryResource reports whether a file request explicitly asks for the
// FHIR Binary resource rather than the file itself. The HL7 IG's Output File
// Request says Accept "defaults to application/fhir+ndjson", and HAPI FHIR
// (FUT's server) serves a Binary's raw content unless the request names a FHIR
// format: RestfulServerUtils.streamResponseAsResource returns the content when
// determineResponseEncodingNoDefault finds no FHIR type, matched strictly for
// Binary, so plain application/json, */* or application/octet-stream get the
// file too. So: the resource only when a FHIR JSON type in Accept outranks every
// NDJSON type there, or _format names JSON.
func wantsBinaryResource(r *http.Request) bool {
	for _, f := range r.URL.Query()["_format"] {
		switch strings.TrimSpace(f) {
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
			return true
		}
	}
	fhirQ, ndjsonQ := 0.0, 0.0
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 {
					continue
				}
			}
			switch mt {
			case "application/fhir+json", "application/json+fhir":
				fhirQ = max(fhirQ, q)
			case "application/fhir+ndjson", "application/ndjson":
				ndjsonQ = max(ndjsonQ, q)
			}
		}
	}
	return fhirQ > 0 && fhirQ > ndjsonQ
}
