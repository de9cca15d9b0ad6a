package refserver

import (
	"strconv"
	"time"
)

// Clock tells the server the current time. Job lifecycles are computed from it,
// so a test can drive jobs to completion by advancing a manual clock.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Time formats used on the wire.
const (
	// fhirInstantLayout is a FHIR instant with milliseconds and a numeric offset,
	// as HAPI writes it: 2025-12-05T11:33:54.465+00:00.
	fhirInstantLayout = "2006-01-02T15:04:05.000-07:00"
	// fhirDateTimeLayout is a FHIR dateTime with seconds precision: 2023-10-12T09:51:50+00:00.
	fhirDateTimeLayout = "2006-01-02T15:04:05-07:00"
)

func fhirInstant(t time.Time) string  { return t.UTC().Format(fhirInstantLayout) }
func fhirDateTime(t time.Time) string { return t.UTC().Format(fhirDateTimeLayout) }

// retryAfterSeconds renders d as whole delta-seconds, rounded up, at least 1.
func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}
