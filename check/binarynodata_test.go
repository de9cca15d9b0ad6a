package check

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

// FHIR R4 Binary.data is 0..1: a Binary without data (or with only an extension on it, _data) is the file
// with no content, an empty error file as FUT serves one. It holds no resource, and is no invalid JSON.
func TestABinaryWithoutDataIsAnEmptyFile(t *testing.T) {
	item := ManifestItem{Type: "OperationOutcome", URL: "http://f/fhir/Binary/e"}
	for name, body := range map[string]string{
		"no data":           `{"resourceType":"Binary","id":"e","contentType":"application/fhir+ndjson"}`,
		"only an extension": `{"resourceType":"Binary","contentType":"application/fhir+ndjson","_data":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}}`,
		"empty object":      "{\n}\n",
	} {
		x := &Exchange{Method: "GET", URL: item.URL, Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/fhir+json"}}, Body: []byte(body)}
		f, err := ReadOutputFile(item, x)
		switch {
		case name == "empty object":
			// no resourceType, no contentType: not a Binary, which the members' check says
			if err == nil || strings.Contains(err.Error(), "ends inside the object") {
				t.Errorf("%s: want the Binary refused for its members, got %v", name, err)
			}
		case err != nil || f.Resources != 0 || f.Format != "Binary":
			t.Errorf("%s: want an empty Binary file, got %+v %v", name, f, err)
		}
	}
}

// R4 base64Binary: (\s*([0-9a-zA-Z\+/=]){4}\s*)+, white space (XML Schema's \s: space, tab, CR, LF) between
// groups of four. A Binary output file whose data is wrapped with spaces or tabs is read as one wrapped with
// line breaks is.
func TestABinaryFilesDataMayHoldWhiteSpaceBetweenGroups(t *testing.T) {
	item := ManifestItem{Type: "Patient", URL: "http://f/fhir/Binary/p"}
	line := `{"resourceType":"Patient","id":"p1"}` + "\n" // 37 bytes: 52 base64 characters, 13 groups
	enc := base64.StdEncoding.EncodeToString([]byte(line + line + line))
	var groups []string
	for i := 0; i < len(enc); i += 4 {
		groups = append(groups, enc[i:i+4])
	}
	for name, sep := range map[string]string{"spaces": " ", "tabs": `\t`, "CR LF": `\r\n`, "mixed": ` \t\n `} {
		body := `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + strings.Join(groups, sep) + `"}`
		x := &Exchange{Method: "GET", URL: item.URL, Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/fhir+json"}}, Body: []byte(body)}
		if f, err := ReadOutputFile(item, x); err != nil || f.Resources != 3 {
			t.Errorf("data with %s between its groups: %d resources, %v", name, f.Resources, err)
		}
		// streamed a byte at a time, so that a space falls at every place of a block and of a group
		if f, err := ReadOutputStream(item, x, iotest.OneByteReader(strings.NewReader(body)), FileCheck{}); err != nil || f.Resources != 3 {
			t.Errorf("data with %s between its groups, a byte at a time: %d resources, %v", name, f.Resources, err)
		}
	}
	// Spaces are looked for only once a block fails to decode: past the first blocks, with a space last, and
	// beside a character that is no base64, which still fails.
	many := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(line, 20000))) // 1 MB: several blocks
	for name, c := range map[string]struct {
		data string
		ok   bool
	}{
		"spaces late": {many[:len(many)-8] + " " + many[len(many)-8:len(many)-4] + `\t` + many[len(many)-4:] + " ", true},
		"not base64":  {many[:len(many)-8] + " " + many[len(many)-8:len(many)-5] + "*" + many[len(many)-4:], false},
	} {
		body := `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + c.data + `"}`
		x := &Exchange{Method: "GET", URL: item.URL, Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/fhir+json"}}}
		f, err := ReadOutputStream(item, x, strings.NewReader(body), FileCheck{})
		if c.ok && (err != nil || f.Resources != 20000) {
			t.Errorf("%s: %d resources, %v", name, f.Resources, err)
		}
		if !c.ok && !errors.Is(err, ErrNonConformant) {
			t.Errorf("%s: want a violation, got %v", name, err)
		}
	}
}

// The same for a Binary read whole (a report's, $execute's placeholder): R4's base64Binary allows white space
// between groups of four.
func TestABinarysDataMayHoldWhiteSpaceBetweenGroups(t *testing.T) {
	for name, data := range map[string]string{"spaces": "Kk5P VCBH RU5F UkFU RUQg WUVU Kg==", "CR LF": `Kk5PVCBHRU5F\r\nUkFURUQgWUVUKg==`, "none": "Kk5PVCBHRU5FUkFURUQgWUVUKg=="} {
		x := &Exchange{Method: "POST", URL: "u", Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/fhir+json"}},
			Body: []byte(`{"resourceType":"Binary","id":"21","contentType":"text/plain","data":"` + data + `"}`)}
		b, err := DecodeBinary("", x)
		if err != nil || string(b.Data) != "*NOT GENERATED YET*" {
			t.Errorf("data with %s between its groups: %v", name, err)
		}
	}
	x := &Exchange{Method: "POST", URL: "u", Status: http.StatusOK, Body: []byte(`{"resourceType":"Binary","contentType":"text/plain","data":"Kk5P*VCBH"}`)}
	if _, err := DecodeBinary("", x); !errors.Is(err, ErrNonConformant) {
		t.Errorf("data that is no base64: want a violation, got %v", err)
	}
}

// HAPI FHIR's externalized binary storage (Smile CDR recommends it for Bulk Export, whose files are Binaries)
// keeps a Binary's data in its binary store and, on a read, puts it back only below the auto-inflate limit
// (JpaStorageSettings/DaoConfig autoInflateBinariesMaximumBytes, 10 MB by default: BinaryStorageInterceptor
// preShow). Above it the Binary is shown with no data and, on its data element, HAPI's extension
// externalized-binary-id naming the blob (BinaryAccessProvider.replaceDataWithExtension). That Binary is not an
// empty file: its file's resources are in a store the client was not given, and reading it as an empty file
// passed an export whose files hold nothing a client can read (BDA2 "Complete Status": the files "SHALL be
// accessible to the client at the URLs advertised").
func TestABinaryWhoseDataHAPIKeptInItsBinaryStoreIsNoEmptyFile(t *testing.T) {
	item := ManifestItem{Type: "Patient", URL: "http://f/fhir/Binary/p"}
	ext := `"_data":{"extension":[{"url":"` + ExtExternalizedBinaryID + `","valueString":"f3a9c2e1"}]}`
	for name, body := range map[string]string{
		"data externalized":          `{"resourceType":"Binary","id":"p","contentType":"application/fhir+ndjson",` + ext + `}`,
		"data externalized, id last": `{"resourceType":"Binary",` + ext + `,"contentType":"application/fhir+ndjson","id":"p"}`,
	} {
		x := &Exchange{Method: "GET", URL: item.URL, Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/fhir+json"}}, Body: []byte(body)}
		_, err := ReadOutputFile(item, x)
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "externalized-binary-id") {
			t.Errorf("%s: want the file failed, naming HAPI's extension; got %v", name, err)
		}
	}
	// delivered after all (inflated, the extension kept beside the data): the file is judged as its data says
	line := `{"resourceType":"Patient","id":"p1"}` + "\n"
	body := `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + base64.StdEncoding.EncodeToString([]byte(line)) + `",` + ext + `}`
	x := &Exchange{Method: "GET", URL: item.URL, Status: http.StatusOK, Header: http.Header{"Content-Type": {"application/fhir+json"}}, Body: []byte(body)}
	if f, err := ReadOutputFile(item, x); err != nil || f.Resources != 1 {
		t.Errorf("data delivered beside the extension: want 1 resource, got %d, %v", f.Resources, err)
	}
}
