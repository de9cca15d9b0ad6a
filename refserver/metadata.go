package refserver

import "net/http"

const operationDefinitionBase = "http://ehealth.sundhed.dk/fhir/OperationDefinition/-s-"

type capabilityStatement struct {
	ResourceType   string      `json:"resourceType"`
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

// metadata handles GET [base]/metadata (no auth).
func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	ops := []capOperation{}
	for _, code := range []string{"export", "export-poll-status", "get-report-job-status"} {
		ops = append(ops, capOperation{Name: code, Definition: operationDefinitionBase + code})
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
	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, cs)
}
