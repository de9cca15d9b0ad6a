package check

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var jsonCases = []string{
	`{"resourceType":"Patient","id":"1","name":[{"family":"Hansen","given":["J\u00f8rgen"]}],"active":true,"x":null,"n":-1.5e+3}`,
	`{}`, `[]`, `""`, `0`, `-0`, `01`, `1.`, `.1`, `1e`, `1e+`, `-`, `tru`, `true`, `nul`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`,
	`"\q"`, `"\u12"`, `"\u12G4"`, "\"\x01\"", "\"\xff\"", ` [ 1 , 2 ] `, `{"a":[{"b":{"c":[]}}]}`, `"\/\b\f\n\r\t\"\\"`,
	`{"a":1}x`, `{"a":1} `, `1 2`, ``, ` `, `[`, `{"a":`, `"abc`, `{"a" : "b" , "c":[1,2.5,-3e2]}`,
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	// objects and arrays mixed past the 256 levels kept in bits, closed right, and closed with one wrong closer
	strings.Repeat(`[{"a":`, 150) + "1" + strings.Repeat("}]", 150),
	strings.Repeat(`[{"a":`, 150) + "1" + strings.Repeat("}]", 10) + "]]" + strings.Repeat("}]", 139),
	strings.Repeat(`[{"a":`, 150) + "1" + strings.Repeat("}]", 140) + "}}" + strings.Repeat("}]", 9),
}

func TestValidJSONIsJSONValid(t *testing.T) {
	for _, c := range jsonCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.60q) = %v, json.Valid says %v", c, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
		if _, _, generic := resourceJSON(b, &jsonScan{stops: stops{generic: true}}); generic != json.Valid(b) {
			t.Fatalf("resourceJSON(%q) with the generic marks = %v, json.Valid says %v", b, generic, !generic)
		}
		// A resourceType it names is the one encoding/json reads.
		var r struct {
			ResourceType any `json:"resourceType"`
		}
		if rt, known, _ := resourceJSON(b, new(jsonScan)); known && (json.Unmarshal(b, &r) != nil || r.ResourceType != string(rt)) {
			t.Fatalf("resourceJSON(%q) names %q, encoding/json reads %v", b, rt, r.ResourceType)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	line := []byte(`{"resourceType":"Patient","id":"p1","meta":{"lastUpdated":"2024-01-01T00:00:01Z"},"active":true,"name":[{"family":"Hansen","given":["Jens","Peter"]}],"gender":"male","birthDate":"1970-01-01","address":[{"line":["Vej 1"],"city":"Aarhus","postalCode":"8000"}]}`)
	b.Run("validJSON", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if !validJSON(line) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			if !json.Valid(line) {
				b.Fatal("invalid")
			}
		}
	})
}

// resourceJSON names the top-level resourceType only when it is certain: once at the top level, a plain
// string; contained resources and nested members of that name never count.
func TestResourceJSONFindsTheTopLevelResourceType(t *testing.T) {
	for _, c := range []struct {
		line, want string
		known      bool
	}{
		{`{"resourceType":"Patient","id":"1"}`, "Patient", true},
		{`{"id":"1","resourceType":"Patient"}`, "Patient", true},
		{` { "resourceType" : "Patient" } `, "Patient", true},
		{`{"resourceType":"Patient","contained":[{"resourceType":"Organization"}]}`, "Patient", true},
		{`{"contained":[{"resourceType":"Organization"}],"resourceType":"Patient"}`, "Patient", true},
		{`{"extension":[{"url":"x","valueString":"\"resourceType\":\"Observation\""}],"resourceType":"Patient"}`, "Patient", true},
		{`{"resourceType":"Patient","resourceType":"Observation"}`, "", false},
		{`{"resourceType":"Patient","resourceType":[1]}`, "", false},
		{`{"resourceType":"Patient","resourceType":{"a":"b"}}`, "", false},
		{`{"resourceType":{"resourceType":"Patient"}}`, "", false},
		{`{"resourceType":"Pat\u0069ent"}`, "", false},
		{`{"resourceType":7}`, "", false},
		{`{"id":"1"}`, "", false},
		{`{"meta":{"resourceType":"Patient"}}`, "", false},
	} {
		rt, known, valid := resourceJSON([]byte(c.line), new(jsonScan))
		if !valid || known != c.known || string(rt) != c.want && c.known {
			t.Errorf("resourceJSON(%s) = %q, known %v, valid %v; want %q, known %v", c.line, rt, known, valid, c.want, c.known)
		}
	}
	if _, _, valid := resourceJSON([]byte(`{"resourceType":"Patient"`), new(jsonScan)); valid {
		t.Error("an unterminated object must be invalid")
	}
}

// A string's end, or its fault, is found wherever it lies in the eight-byte words the validator reads: each
// text is one JSON string, at every offset.
func TestStringsAreReadToTheirEndOrTheirFault(t *testing.T) {
	plain := bytes.Repeat([]byte("aé~ "), 10)
	for n := 0; n < 24; n++ {
		s := `"` + string(plain[:n])
		for _, text := range []string{
			s + `"`,
			s + `\"x\u00e9\/\b\f\n\r\t\\"`,
			s + "\x1fxxxxxxxx\"",
			s + "\nxxxxxxxx\"",
			s + `\xxxxxxxxx"`,
			s + `\u00g9xxxxxxx"`,
			s + `\u00e"`,
			s,
			s + `\`,
			s + `""`,
		} {
			if got, want := validJSON([]byte(text)), json.Valid([]byte(text)); got != want {
				t.Errorf("validJSON(%q) = %v, json.Valid says %v", text, got, want)
			}
		}
	}
}

// syntheticLines are one line of each type the reference server's synthetic dataset writes (what
// make bench-scale validates): compact JSON, mostly strings.
var syntheticLines = [][]byte{
	[]byte(`{"resourceType":"CarePlan","id":"careplan-0","meta":{"lastUpdated":"2024-01-01T00:00:00.000+00:00"},"status":"active","intent":"plan","title":"Forløb for type 2-diabetes","subject":{"reference":"Patient/patient-6"},"period":{"start":"2023-12-31"}}`),
	[]byte(`{"resourceType":"Observation","id":"observation-0","meta":{"lastUpdated":"2024-01-01T00:00:00.000+00:00"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"59408-5","display":"Oxygen saturation in Arterial blood by Pulse oximetry"}]},"subject":{"reference":"Patient/patient-9"},"effectiveDateTime":"2023-12-31T23:11:24+00:00","valueQuantity":{"value":93.5,"unit":"%","system":"http://unitsofmeasure.org","code":"%"}}`),
	[]byte(`{"resourceType":"Patient","id":"patient-0","meta":{"lastUpdated":"2024-01-01T00:00:00.000+00:00"},"identifier":[{"system":"urn:oid:1.2.208.176.1.2","value":"2505148588"}],"active":true,"name":[{"use":"official","family":"Madsen","given":["Peter","Bo"]}],"telecom":[{"system":"phone","value":"+4521374831","use":"mobile"}],"gender":"male","birthDate":"2014-05-25","address":[{"use":"home","line":["Skolevej 2"],"city":"Aarhus C","postalCode":"8000","country":"DK"}]}`),
}

func BenchmarkResourceJSON(b *testing.B) {
	b.Run("vector", func(b *testing.B) { benchmarkResourceJSON(b, false) })
	b.Run("generic", func(b *testing.B) { benchmarkResourceJSON(b, true) })
}

func benchmarkResourceJSON(b *testing.B, generic bool) {
	var n int64
	for _, l := range syntheticLines {
		n += int64(len(l))
	}
	b.SetBytes(n)
	stop := jsonScan{stops: stops{generic: generic}}
	for b.Loop() {
		for _, l := range syntheticLines {
			if _, known, ok := resourceJSON(l, &stop); !ok || !known {
				b.Fatalf("resourceJSON(%s): known %v, valid %v", l, known, ok)
			}
		}
	}
}
