package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
)

// NDJSON is the Bulk Data output format the harness asks for.
const NDJSON = "application/fhir+ndjson"

// OutputFile is what reading one output file found.
type OutputFile struct {
	Item      ManifestItem
	Resources int
	Format    string // "ndjson" or "Binary"
}

// ReadOutputFile accepts NDJSON, or a FHIR Binary holding base64 NDJSON as FUT serves its files, and holds
// every line to the item's type and count.
func ReadOutputFile(item ManifestItem, x *Exchange) (OutputFile, error) {
	f := OutputFile{Item: item, Format: "ndjson"}
	body := x.Body
	switch x.MediaType() {
	case "application/fhir+json", "application/json":
		b, err := DecodeBinary("", x)
		if err != nil {
			return f, err
		}
		body, f.Format = b.Data, "Binary"
	case NDJSON, "application/ndjson", "application/x-ndjson":
	default:
		return f, Violationf("", "Content-Type of output file "+item.URL, NDJSON+", or a FHIR Binary as application/fhir+json", "%q", x.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64*1024), len(body)+1)
	for line := 1; sc.Scan(); line++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var r struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(text, &r); err != nil {
			return f, Violationf("", fmt.Sprintf("output file %s line %d", item.URL, line), "one FHIR resource in JSON per line", "invalid JSON: %v", err)
		}
		if r.ResourceType != item.Type {
			return f, Violationf("", fmt.Sprintf("output file %s line %d", item.URL, line), fmt.Sprintf("a %s resource, the manifest's type", item.Type), "resourceType %q", r.ResourceType)
		}
		f.Resources++
	}
	if err := sc.Err(); err != nil {
		return f, Violationf("", "output file "+item.URL, "NDJSON", "%v", err)
	}
	if item.Count != nil && *item.Count != int64(f.Resources) {
		return f, Violationf("", "output file "+item.URL, fmt.Sprintf("%d resources, as the manifest's count says", *item.Count), "%d", f.Resources)
	}
	return f, nil
}
