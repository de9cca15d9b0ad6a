package check

import (
	"errors"
	"reflect"
	"slices"
	"strings"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// NewFHIRDecoder decodes a line strictly as the FHIR R4 resource it names, with Google's FHIR library
// (github.com/google/fhir/go, jsonformat): unknown elements, wrong value types, malformed primitives (a
// date, an instant, a code outside its value set), two values of one choice type are refused; primitive
// extensions (_birthDate), contained resources and choice types value[x] are read as FHIR has them. The
// library is chosen over golang-fhir-models, whose structs would refuse resourceType and every primitive
// extension under DisallowUnknownFields and accept any string as a date: see README, "Each line as FHIR".
func NewFHIRDecoder() LineDecoder {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil { // only for an unknown FHIR version or time zone: both are constants here
		panic("check: the FHIR R4 unmarshaller: " + err.Error())
	}
	return func(line []byte) error {
		if _, err := u.Unmarshal(line); err != nil {
			return fhirError(err)
		}
		return nil
	}
}

// fhirError says what the library found wrong, with what it found. The library's own message leaves out
// its Diagnostics, which hold what a vendor needs to mend the line: the unknown element's name ("error at
// "Patient": unknown field" alone names no element), the value that is no date. Its errors are of a type
// in an internal package, so their exported fields are read by reflection; a shape this does not know (a
// later version of the library) keeps the library's message. The errors come in the order of a map's
// iteration: they are sorted, so that a report says the same on every run.
func fhirError(err error) error {
	var list []reflect.Value // a list of errors, or one
	switch v := reflect.ValueOf(err); v.Kind() {
	case reflect.Slice:
		for i := range v.Len() {
			list = append(list, v.Index(i))
		}
	case reflect.Pointer:
		list = append(list, v)
	}
	if len(list) == 0 {
		return err
	}
	msgs := make([]string, 0, len(list))
	for _, item := range list {
		e := reflect.Indirect(item)
		if e.Kind() != reflect.Struct {
			return err
		}
		path, details, diag := e.FieldByName("Path"), e.FieldByName("Details"), e.FieldByName("Diagnostics")
		if path.Kind() != reflect.String || details.Kind() != reflect.String || diag.Kind() != reflect.String {
			return err
		}
		msg := details.String()
		if path.String() != "" {
			msg = path.String() + ": " + msg
		}
		if d := diag.String(); d != "" {
			msg += " " + clipEnd(d, maxDiagnostics)
		}
		msgs = append(msgs, msg)
	}
	slices.Sort(msgs)
	return errors.New(strings.Join(msgs, "; "))
}

// maxDiagnostics bounds, in runes, what one error quotes of the line: a value, an element's name, not a
// whole text.
const maxDiagnostics = 120
