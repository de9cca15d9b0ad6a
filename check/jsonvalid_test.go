package check

import (
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
