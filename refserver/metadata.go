package refserver

import "net/http"

const operationDefinitionBase = "http://ehealth.sundhed.dk/fhir/OperationDefinition/-s-"

// The HL7 Bulk Data IG's canonicals: a server declares conformance to the IG by its CapabilityStatement's
// instantiates ("To declare conformance with this IG, a server should include the following URL in its own
// CapabilityStatement.instantiates", IG Operations page), and its system-level kick-off is the IG's export.
const (
	bulkDataCapabilityStatement = "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
	bulkDataExportDefinition    = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
)

type capabilityStatement struct {
	ResourceType   string      `json:"resourceType"`
	Instantiates   []string    `json:"instantiates,omitempty"`
	Status         string      `json:"status"`
	Date           string      `json:"date"`
	Publisher      string      `json:"publisher"`
	Kind           string      `json:"kind"`
	Software       capSoftware `json:"software"`
	Implementation capImpl     `json:"implementation"`
	FHIRVersion    string      `json:"fhirVersion"`
	Format         []string    `json:"format"`
	Rest           []capRest   `json:"rest"`
}

type capSoftware struct {
	Name string `json:"name"`
}

type capImpl struct {
	Description string `json:"description"`
	URL         string `json:"url"`
}

type capRest struct {
	Mode      string         `json:"mode"`
	Security  capSecurity    `json:"security"`
	Resource  []capResource  `json:"resource"`
	Operation []capOperation `json:"operation"`
}

type capSecurity struct {
	Description string `json:"description"`
}

type capResource struct {
	Type        string           `json:"type"`
	Interaction []capInteraction `json:"interaction"`
}

type capInteraction struct {
	Code string `json:"code"`
}

type capOperation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

// capabilityDate is the fixed publication date of this CapabilityStatement.
const capabilityDate = "2026-01-01"

// metadata handles GET [base]/metadata (no auth). In bulkdata the statement is an HL7 Bulk Data server's: it
// instantiates the IG's (Inferno's bulk data kit warns on a statement that does not) and its $export is the
// IG's operation; the FUT operations it serves in every profile stay listed, since it still answers them.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	bulkData := s.cfg.Profile == ProfileBulkData
	ops := []capOperation{}
	for _, code := range []string{"export", "export-poll-status", "get-report-job-status"} {
		def := operationDefinitionBase + code
		if bulkData && code == "export" {
			def = bulkDataExportDefinition
		}
		ops = append(ops, capOperation{Name: code, Definition: def})
	}
	for _, variant := range []string{"execute", "schedule"} {
		for _, rt := range reportTypes {
			code := variant + "-" + rt.name
			ops = append(ops, capOperation{Name: code, Definition: operationDefinitionBase + code})
		}
	}
	cs := capabilityStatement{
		ResourceType: "CapabilityStatement",
		Status:       "active",
		Date:         capabilityDate,
		Publisher:    "fut-conformance",
		Kind:         "instance",
		Software:     capSoftware{Name: "fut-conformance refserver"},
		Implementation: capImpl{
			Description: "Reference server for the FUT $export-poll-status and $get-report-job-status conformance harness",
			URL:         s.baseURL(r),
		},
		FHIRVersion: "4.0.1",
		Format:      []string{"application/fhir+json", "json"},
		Rest: []capRest{{
			Mode:      "server",
			Security:  capSecurity{Description: "OAuth2-style bearer tokens (Authorization: Bearer <token>) on every interaction except metadata"},
			Resource:  []capResource{{Type: "Binary", Interaction: []capInteraction{{Code: "read"}}}},
			Operation: ops,
		}},
	}
	if bulkData {
		cs.Instantiates = []string{bulkDataCapabilityStatement}
	}
	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, cs)
}
