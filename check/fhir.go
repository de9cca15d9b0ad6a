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
// Valid FHIR R4 that the library refuses (FHIRGap) is no fault: the line is judged around it, and a line
// whose only faults were such gaps comes back as a *gapsMet, which decodeStrictly passes and counts.
func NewFHIRDecoder() LineDecoder {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil { // only for an unknown FHIR version or time zone: both are constants here
		panic("check: the FHIR R4 unmarshaller: " + err.Error())
	}
	decode := func(line []byte) error {
		_, err := u.Unmarshal(line)
		return err
	}
	return func(line []byte) error {
		err := decode(line)
		if err == nil {
			return nil
		}
		// The library refuses some valid FHIR R4 (FHIRGap): its errors are judged one by one, and the line
		// rewritten around the gaps and decoded again, only once it has failed, at no cost to the lines
		// that pass.
		g := gapJudge{decode: decode}
		faults, err := g.judge(line, err, 0)
		switch {
		case err != nil:
			return err
		case len(faults) > 0:
			return faultsError(faults)
		}
		return &g.met
	}
}

// fault is one error of the library: where, what, and what it found there.
type fault struct{ path, details, diagnostics string }

func (f fault) String() string {
	msg := f.details
	if f.path != "" {
		msg = f.path + ": " + msg
	}
	if f.diagnostics != "" {
		msg += " " + Clip(f.diagnostics, maxDiagnostics)
	}
	return msg
}

// fhirError says what the library found wrong, with what it found. The library's own message leaves out
// its Diagnostics, which hold what a vendor needs to mend the line: the unknown element's name ("error at
// "Patient": unknown field" alone names no element), the value that is no date. A shape faultsOf does not
// know (a later version of the library) keeps the library's message.
func fhirError(err error) error {
	faults, ok := faultsOf(err)
	if !ok {
		return err
	}
	return faultsError(faults)
}

// faultsError says every fault, sorted: the library finds them in the order of a map's iteration, and a
// report says the same on every run.
func faultsError(faults []fault) error {
	msgs := make([]string, len(faults))
	for i, f := range faults {
		msgs[i] = f.String()
	}
	slices.Sort(msgs)
	return errors.New(strings.Join(msgs, "; "))
}

// faultsOf reads the library's errors, a list or one. They are of a type in an internal package, so their
// exported fields are read by reflection; ok is false for a shape this does not know.
func faultsOf(err error) (faults []fault, ok bool) {
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
		return nil, false
	}
	faults = make([]fault, 0, len(list))
	for _, item := range list {
		e := reflect.Indirect(item)
		if e.Kind() != reflect.Struct {
			return nil, false
		}
		path, details, diag := e.FieldByName("Path"), e.FieldByName("Details"), e.FieldByName("Diagnostics")
		if path.Kind() != reflect.String || details.Kind() != reflect.String || diag.Kind() != reflect.String {
			return nil, false
		}
		faults = append(faults, fault{path.String(), details.String(), diag.String()})
	}
	return faults, true
}

// maxDiagnostics bounds, in runes, what one error quotes of the line: a value, an element's name, not a
// whole text.
const maxDiagnostics = 120
