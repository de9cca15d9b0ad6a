package check

import (
	"fmt"
	"regexp"
	"time"
)

// FHIR R4's own regular expressions for instant and dateTime (datatypes.html).
var (
	fhirInstant  = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)
	fhirDateTime = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?$`)
)

// ParseFHIRInstant reads a FHIR instant: a full date and time with seconds and a zone.
func ParseFHIRInstant(s string) (time.Time, error) {
	if !fhirInstant.MatchString(s) {
		return time.Time{}, fmt.Errorf("not a FHIR instant (YYYY-MM-DDThh:mm:ss[.fff]+zz:zz)")
	}
	return time.Parse(time.RFC3339Nano, s)
}

// ParseFHIRDateTime reads a FHIR dateTime, which may be partial (a year, a month, a day). The returned
// precision says how much of it there is, so that only comparable values get compared.
func ParseFHIRDateTime(s string) (t time.Time, hasTime bool, err error) {
	if !fhirDateTime.MatchString(s) {
		return time.Time{}, false, fmt.Errorf("not a FHIR dateTime")
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02", "2006-01", "2006"} {
		if t, err = time.Parse(layout, s); err == nil {
			return t, layout == time.RFC3339Nano, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("not a calendar date: %w", err)
}
