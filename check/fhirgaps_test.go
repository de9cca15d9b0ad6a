package check

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// mimeBase64 is base64 as MIME writes it: lines of 76 characters ended by CR LF, escaped in JSON.
func mimeBase64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var lines []string
	for len(enc) > 76 {
		lines, enc = append(lines, enc[:76]), enc[76:]
	}
	return strings.Join(append(lines, enc), `\r\n`)
}

// Valid FHIR R4 that github.com/google/fhir/go v0.7.4 refuses, by the gap it falls into.
var fhirGapLines = map[string]struct {
	line string
	gap  FHIRGap
}{
	"Parameters.parameter.resource": {`{"resourceType":"Parameters","id":"p","parameter":[{"name":"patient","resource":{"resourceType":"Patient","id":"x","birthDate":"1970-01-01"}}]}`, GapParametersResource},
	"Parameters.parameter.part.resource": {`{"resourceType":"Parameters","parameter":[{"name":"job","part":[{"name":"status","valueString":"DONE"},` +
		`{"name":"outcome","resource":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}}]}]}`, GapParametersResource},
	"Parameters in a Bundle": {`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:0b1c1f5e-3d0a-4c1e-9a43-6d1e0f4b2a10",` +
		`"resource":{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","id":"x"}}]}}]}`, GapParametersResource},
	"Parameters contained": {`{"resourceType":"Basic","id":"b","code":{"text":"x"},"contained":[{"resourceType":"Parameters","id":"q",` +
		`"parameter":[{"name":"p","resource":{"resourceType":"Patient","id":"x"}}]}],"extension":[{"url":"http://example.org/q","valueReference":{"reference":"#q"}}]}`, GapParametersResource},
	"Parameters in Parameters": {`{"resourceType":"Parameters","parameter":[{"name":"a","resource":{"resourceType":"Parameters",` +
		`"parameter":[{"name":"b","resource":{"resourceType":"Patient","id":"x"}}]}},{"name":"c","resource":{"resourceType":"Patient","id":"y"}}]}`, GapParametersResource},
	"Binary.data in MIME lines": {`{"resourceType":"Binary","contentType":"text/plain","data":"` + mimeBase64([]byte(strings.Repeat("The quick brown fox. ", 20))) + `"}`, GapBase64},
	"Attachment.data, spaces":   {`{"resourceType":"Patient","id":"x","photo":[{"contentType":"image/png","data":"iVBO Rw0K  GgoA\tAAAN\n"}]}`, GapBase64},
	"Binary.data, escaped /":    {`{"resourceType":"Binary","contentType":"application/octet-stream","data":"AA\/A"}`, GapBase64},
	"instant, second 60":        {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"issued":"2016-12-31T23:59:60Z"}`, GapLeapSecond},
	"dateTime, second 60":       {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2016-12-31T23:59:60.5+00:00"}`, GapLeapSecond},
	"string, form feed":         {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueString":"page\fbreak"}`, GapControlCharacter},
	"string, vertical tab":      {`{"resourceType":"Patient","id":"x","name":[{"family":"Hansen\u000b","given":["Jens"]}]}`, GapControlCharacter},
	"time, second 60":           {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueTime":"23:59:60"}`, GapLeapSecond},
	"meta.lastUpdated, second 60 in a Bundle": {`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","id":"x",` +
		`"meta":{"lastUpdated":"2016-12-31T23:59:60Z"},"_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"2016-12-31T23:59:60Z"}]}}}]}`, GapLeapSecond},
}

// Faults in the elements the gaps are about, or beside them, each with what the failure must say: the
// library's gaps are judged around, not skipped.
var faultsBesideGaps = map[string]struct{ line, says string }{
	"unknown element beside a parameter's resource": {`{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","id":"x"}}],"foo":1}`,
		`Parameters: unknown field "foo"`},
	"bad date in a parameter's resource": {`{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","birthDate":"1970-13-45"}}]}`,
		`Parameters.parameter[0].resource.Patient.birthDate: expected date found "1970-13-45"`},
	"unknown element in a part's resource": {`{"resourceType":"Parameters","parameter":[{"name":"p","part":[{"name":"q","resource":{"resourceType":"Patient","shoeSize":44}}]}]}`,
		`Parameters.parameter[0].part[0].resource.Patient: unknown field "shoeSize"`},
	"a parameter's resource without a type": {`{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"id":"x"}}]}`,
		`Parameters.parameter[0].resource: missing required field "resourceType"`},
	"unknown element two Parameters deep": {`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"a","resource":` +
		`{"resourceType":"Parameters","parameter":[{"name":"b","resource":{"resourceType":"Patient","foo":1}}]}}]}}]}`,
		`Bundle.entry[0].resource.Parameters.parameter[0].resource.Parameters.parameter[0].resource.Patient: unknown field "foo"`},
	"missing required element beside a parameter's resource": {`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient"}}]}}]}`,
		`Bundle: missing required field "type"`},
	"base64 with a character of no base64": {`{"resourceType":"Binary","contentType":"x","data":"AA*A\nAAAA"}`,
		`Binary.data: expected binary data found "AA*A\nAAAA"`},
	"base64 with white space inside a group of four": {`{"resourceType":"Binary","contentType":"x","data":"AA\nAA"}`,
		`Binary.data: expected binary data found "AA\nAA"`},
	"base64 padded inside, with white space": {`{"resourceType":"Patient","photo":[{"data":"AA==\nAAAA"}]}`,
		`Patient.photo[0].data: expected binary data found "AA==\nAAAA"`},
	"base64 of no base64 character but white space": {`{"resourceType":"Binary","contentType":"x","data":" \n "}`,
		`Binary.data: expected binary data found " \n "`},
	"instant, second 61": {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"issued":"2016-12-31T23:59:61Z"}`,
		`Observation.issued: expected instant found "2016-12-31T23:59:61Z"`},
	"time, second 61": {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueTime":"23:59:61"}`,
		`Observation.valueTime: invalid time found "23:59:61"`},
	"dateTime, second 60 in month 13": {`{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2016-13-31T23:59:60Z"}`,
		`Observation.effectiveDateTime: expected datetime found "2016-13-31T23:59:60Z"`},
	"missing required element beside a leap second": {`{"resourceType":"Observation","code":{"text":"x"},"issued":"2016-12-31T23:59:60Z"}`,
		`Observation: missing required field "status"`},
	"missing required element beside a control character": {`{"resourceType":"Observation","code":{"text":"x\f"}}`,
		`Observation: missing required field "status"`},
	"unknown element beside a control character": {`{"resourceType":"Observation","status":"final","code":{"text":"x\u0000"},"foo":1}`,
		`Observation: unknown field "foo"`},
	"missing required element in a parameter's resource beside a control character": {`{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Observation","code":{"text":"\u0002"}}}]}`,
		`Parameters.parameter[0].resource.Observation: missing required field "status"`},
	"missing required element beside base64 in lines": {`{"resourceType":"Binary","data":"AAAA\r\nAAAA"}`,
		`Binary: missing required field "contentType"`},
}

// The gaps are the library's: it refuses each of these lines on its own. If a later version reads one, the
// gap, its README entry and fhirLibrary are due for review.
func TestTheFHIRLibraryStillRefusesTheValidLinesOfItsGaps(t *testing.T) {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range fhirGapLines {
		if _, err := u.Unmarshal([]byte(c.line)); err == nil {
			t.Errorf("%s: %s reads it now", name, fhirLibrary)
		}
	}
}

func TestValidFHIRTheLibraryRefusesIsNotAFault(t *testing.T) {
	decode := NewFHIRDecoder()
	for name, c := range fhirGapLines {
		err := decode([]byte(c.line))
		var met *gapsMet
		if !errors.As(err, &met) {
			t.Errorf("%s: want the line passed as valid FHIR R4, got %v", name, err)
			continue
		}
		if met.around != 1<<c.gap || met.unjudged != 0 {
			t.Errorf("%s: want the line judged around %s alone, got %+v", name, c.gap, *met)
		}
		item := ManifestItem{Type: typeOf(c.line), URL: "http://f/x.ndjson"}
		f, err := streamed(t, NDJSON, item, strings.NewReader(c.line+"\n"+c.line+"\n"), FileCheck{StrictLines: AllLines})
		if err != nil || f.Strict != 2 || f.FHIRGaps.Around[c.gap] != 2 || f.FHIRGaps != (FHIRGapLines{Around: f.FHIRGaps.Around}) {
			t.Errorf("%s: want 2 lines decoded strictly around %s, got %+v %v", name, c.gap, f, err)
		}
	}
}

func TestFaultsBesideTheLibrarysGapsAreFaults(t *testing.T) {
	decode := NewFHIRDecoder()
	for name, c := range faultsBesideGaps {
		err := decode([]byte(c.line))
		var met *gapsMet
		if err == nil || errors.As(err, &met) {
			t.Errorf("%s: want a fault, got %v", name, err)
			continue
		}
		if err.Error() != c.says {
			t.Errorf("%s:\n got %v\nwant %s", name, err, c.says)
		}
		item := ManifestItem{Type: typeOf(c.line), URL: "http://f/x.ndjson"}
		_, err = streamed(t, NDJSON, item, strings.NewReader(c.line+"\n"), FileCheck{StrictLines: AllLines})
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "http://f/x.ndjson line 1") {
			t.Errorf("%s: want a violation at line 1, got %v", name, err)
		}
	}
}

// A resource in a Parameters nested deeper than the lines are cut for is not judged: the line passes, its
// JSON and type held as every line's, counted apart and not as decoded strictly; a fault elsewhere in it
// still fails it.
func TestAResourceTooDeepForTheLibraryIsCountedUnjudged(t *testing.T) {
	deep := `{"resourceType":"Patient","id":"x"}`
	for range maxGapDepth + 1 {
		deep = `{"resourceType":"Parameters","parameter":[{"name":"p","resource":` + deep + `}]}`
	}
	item := ManifestItem{Type: "Parameters", URL: "http://f/x.ndjson"}
	f, err := streamed(t, NDJSON, item, strings.NewReader(deep+"\n"+fhirGapLines["Parameters.parameter.resource"].line+"\n"), FileCheck{StrictLines: AllLines})
	if err != nil || f.Resources != 2 || f.Strict != 1 || f.FHIRGaps.Unjudged[GapParametersResource] != 1 || f.FHIRGaps.Around[GapParametersResource] != 1 {
		t.Fatalf("want 2 lines, 1 decoded strictly, 1 unjudged: %+v %v", f, err)
	}
	if s := f.FHIRGaps.String(); !strings.Contains(s, "1 line not decoded strictly for a resource in Parameters.parameter") || !strings.Contains(s, fhirLibrary) {
		t.Errorf("the log says %q", s)
	}
	bad := strings.Replace(deep, `"resourceType":"Parameters",`, `"resourceType":"Parameters","foo":1,`, 1)
	if _, err := streamed(t, NDJSON, item, strings.NewReader(bad+"\n"), FileCheck{StrictLines: AllLines}); err == nil || !strings.Contains(err.Error(), `Parameters: unknown field "foo"`) {
		t.Errorf("a fault beside an unjudged resource: want it named, got %v", err)
	}
}

// The library's paths lead to the bytes of the value they name, whatever the strings around hold, with a
// resource's type as a step that stays, the last of two members of one name (the one the library reads),
// keys as JSON has them once unescaped.
func TestTheLibrarysPathsLeadToTheirValues(t *testing.T) {
	doc := []byte(` { "resourceType" : "Bundle", "a\"b":"{[\"]}", "entry" : [ {"resource":{"resourceType":"Patient","photo":[{"data":"x"},` +
		`{"data" : "y\"}]"}]}} , 1, "s" ], "d": {"k":1}, "d": {"k":2}, "\u0065sc": true, "n": -1.5e3, "z": null, "e": [], "o": {} } `)
	for path, want := range map[string]string{
		"Bundle": string(bytes.TrimSpace(doc)),
		"Bundle.entry[0].resource.Patient.photo[1].data": `"y\"}]"`,
		"Bundle.entry[0].resource.photo[0].data":         `"x"`,
		"Bundle.entry[1]":                                `1`,
		"Bundle.entry[2]":                                `"s"`,
		"Bundle.d.k":                                     `2`,
		"Bundle.esc":                                     `true`,
		"Bundle.n":                                       `-1.5e3`,
		"Bundle.z":                                       `null`,
		"Bundle.e":                                       `[]`,
		"Bundle.o":                                       `{}`,
		"entry[0].resource":                              `{"resourceType":"Patient","photo":[{"data":"x"},{"data" : "y\"}]"}]}`,
		"Bundle.entry[3]":                                "",
		"Bundle.entry[0].resource.Observation.photo": "",
		"Bundle.missing":  "",
		"Bundle.e[0]":     "",
		"Bundle.n[0]":     "",
		"Bundle.entry[x]": "",
		"Patient":         "",
	} {
		x := jsonIndex{b: doc}
		start, end, ok := x.valueAt(path)
		if got := string(doc[start:end]); ok != (want != "") || ok && got != want {
			t.Errorf("%s: got %q (%v), want %q", path, got, ok, want)
		}
	}
}

// The paths the library could write for a line lead to the values encoding/json finds at them.
func FuzzJSONIndexAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"resourceType":"Parameters","parameter":[{"name":"p","resource":{"resourceType":"Patient","id":"x"}}]}`,
		` { "resourceType" : "Bundle", "a\"b":"{[\"]}", "entry" : [ {"resource":{"resourceType":"Patient","photo":[{"data":"x"}]}} , 1 ], "d": {"k":1}, "d": {"k":2}, "\u0065sc": true }`,
		`{"a":[[1],{"b":[{"c":"\\"}]}],"resourceType":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		var root any
		if !json.Valid(doc) || json.Unmarshal(doc, &root) != nil {
			return
		}
		if _, ok := root.(map[string]any); !ok {
			return
		}
		x := jsonIndex{b: doc}
		checked := 0
		var walk func(path string, v any)
		walk = func(path string, v any) {
			if checked++; checked > 200 {
				return
			}
			if path != "" {
				start, end, ok := x.valueAt(path)
				if !ok {
					t.Fatalf("%s: no value found, encoding/json finds %v", path, v)
				}
				var got any
				if err := json.Unmarshal(doc[start:end], &got); err != nil || !reflect.DeepEqual(got, v) {
					t.Fatalf("%s: found %s, encoding/json finds %v", path, doc[start:end], v)
				}
			}
			obj, ok := v.(map[string]any)
			if !ok {
				return
			}
			rt, _ := obj["resourceType"].(string)
			if stepName(rt) {
				path = strings.TrimPrefix(path+"."+rt, ".")
			}
			for k, e := range obj {
				if !stepName(k) || k == rt {
					continue
				}
				p := strings.TrimPrefix(path+"."+k, ".")
				walk(p, e)
				if arr, ok := e.([]any); ok {
					for i, el := range arr {
						if _, nested := el.([]any); !nested { // FHIR has no array in an array, nor a path for one
							walk(p+"["+strconv.Itoa(i)+"]", el)
						}
					}
				}
			}
		}
		walk("", root)
	})
}

// stepName says whether s can be a step of the library's paths: a name without the path's separators.
func stepName(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".[]")
}

// fhirLibrary, which the logs and README name, is the version go.mod requires.
func TestFHIRLibraryIsTheOneGoModRequires(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(fhirLibrary) + `\s*$`).Match(mod) {
		t.Errorf("go.mod does not require %s: the gaps FHIRGap names are to be found again for its version", fhirLibrary)
	}
}

// The strict decoder says what the library says of every line whose errors name none of the gaps' details,
// and never panics on those that do.
func FuzzFHIRDecoderDiffersFromTheLibraryOnlyAtItsGaps(f *testing.F) {
	for _, c := range fhirGapLines {
		f.Add([]byte(c.line))
	}
	for _, c := range faultsBesideGaps {
		f.Add([]byte(c.line))
	}
	for _, line := range validFHIRLines {
		f.Add([]byte(line))
	}
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		f.Fatal(err)
	}
	decode := NewFHIRDecoder()
	f.Fuzz(func(t *testing.T, line []byte) {
		got := decode(line)
		_, err := u.Unmarshal(line)
		if err == nil {
			if got != nil {
				t.Fatalf("the library reads %s, the decoder says %v", line, got)
			}
			return
		}
		faults, ok := faultsOf(err)
		if !ok {
			if got != err {
				t.Fatalf("an error of a shape the decoder does not know, %v, came back as %v", err, got)
			}
			return
		}
		for _, f := range faults {
			if controlCharacter(f) {
				return // a gap's
			}
			switch f.details {
			case "unknown field", "expected binary data", "expected instant", "expected datetime", "invalid time":
				if f.details != "unknown field" || parametersResource.MatchString(f.path) {
					return // a gap's, maybe
				}
			}
		}
		if want := fhirError(err); got == nil || got.Error() != want.Error() {
			t.Fatalf("%s: the library says %v, the decoder %v", line, want, got)
		}
	})
}

// What a line costs to decode strictly: one the library reads, and one of each gap, judged around it.
func BenchmarkFHIRGaps(b *testing.B) {
	patient := `{"resourceType":"Patient","id":"x","active":true,"name":[{"family":"Hansen","given":["Jens"]}],"gender":"male","birthDate":"1970-01-01"}`
	for name, line := range map[string]string{
		"no gap":                        patient,
		"Parameters.parameter.resource": `{"resourceType":"Parameters","parameter":[{"name":"patient","resource":` + patient + `}]}`,
		"base64 in MIME lines":          fhirGapLines["Binary.data in MIME lines"].line,
		"leap second":                   fhirGapLines["instant, second 60"].line,
	} {
		b.Run(name, func(b *testing.B) {
			decode := NewFHIRDecoder()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				var met *gapsMet
				if err := decode([]byte(line)); err != nil && !errors.As(err, &met) {
					b.Fatal(err)
				}
			}
		})
	}
}
