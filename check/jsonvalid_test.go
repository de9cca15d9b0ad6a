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
		{`{"resourceType":"Pat\u0069ent"}`, "", false},
		{`{"resourceType":7}`, "", false},
		{`{"id":"1"}`, "", false},
		{`{"meta":{"resourceType":"Patient"}}`, "", false},
	} {
		rt, known, valid := resourceJSON([]byte(c.line))
		if !valid || known != c.known || string(rt) != c.want && c.known {
			t.Errorf("resourceJSON(%s) = %q, known %v, valid %v; want %q, known %v", c.line, rt, known, valid, c.want, c.known)
		}
	}
	if _, _, valid := resourceJSON([]byte(`{"resourceType":"Patient"`)); valid {
		t.Error("an unterminated object must be invalid")
	}
}

// plainRun stops at the first byte a string cannot hold as it is, wherever it lies in the eight-byte words.
func TestPlainRunStopsAtTheFirstSpecialByte(t *testing.T) {
	for _, special := range []byte{'"', '\\', 0x00, 0x1f, '\n'} {
		for n := 0; n < 24; n++ {
			b := append(bytes.Repeat([]byte("aé~ "), 10)[:n:n], special)
			b = append(b, "xxxxxxxxxxxx\"\x01"...)
			if got := plainRun(b, 0); got != n {
				t.Errorf("plainRun(%q) = %d, want %d", b, got, n)
			}
		}
	}
	if got := plainRun([]byte("abcdefghij\x7f\xff"), 0); got != 12 {
		t.Errorf("plainRun of bytes a string may hold = %d, want the length 12", got)
	}
}
