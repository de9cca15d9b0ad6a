package check

import (
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
		_, err := u.Unmarshal(line)
		return err
	}
}
