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
	return parseRFC3339(s)
}

// parseRFC3339 is time.Parse(time.RFC3339Nano) that also reads a leap second (ss = 60), which FHIR's
// regular expressions allow and Go's parser refuses: it is read as the first instant of the next minute.
func parseRFC3339(s string) (time.Time, error) {
	const secs = len("2006-01-02T15:04:")
	if len(s) >= secs+2 && s[secs:secs+2] == "60" {
		t, err := time.Parse(time.RFC3339Nano, s[:secs]+"59"+s[secs+2:])
		if err != nil {
			return time.Time{}, err
		}
		return t.Add(time.Second), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// ParseFHIRDateTime reads a FHIR dateTime, which may be partial (a year, a month, a day). The returned
// precision says how much of it there is, so that only comparable values get compared.
func ParseFHIRDateTime(s string) (t time.Time, hasTime bool, err error) {
	if !fhirDateTime.MatchString(s) {
		return time.Time{}, false, fmt.Errorf("not a FHIR dateTime")
	}
	if len(s) > len("2006-01-02") {
		if t, err = parseRFC3339(s); err != nil {
			return time.Time{}, false, fmt.Errorf("not a calendar date: %w", err)
		}
		return t, true, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01", "2006"} {
		if t, err = time.Parse(layout, s); err == nil {
			return t, false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("not a calendar date: %w", err)
}
