package check

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Benchmarks of the harness's hot paths: reading every poll answer and every output file.

func BenchmarkParseRetryAfter(b *testing.B) {
	now := time.Now()
	date := now.Add(time.Minute).Format(http.TimeFormat)
	for b.Loop() {
		if _, err := ParseRetryAfter("120", now); err != nil {
			b.Fatal(err)
		}
		if _, err := ParseRetryAfter(date, now); err != nil {
			b.Fatal(err)
		}
	}
}

// A status Bundle of 200 report jobs, decoded through golang-fhir-models.
func BenchmarkDecodeReportJobs(b *testing.B) {
	entry := `{"fullUrl":"urn:uuid:%[1]d","resource":{"resourceType":"Parameters","id":"%[1]d","parameter":[{"name":"reportJob","part":[` +
		`{"name":"reportClass","valueString":"com.systematic.ehealth.reporting.reports.PatientsUsageReport"},{"name":"userId","valueString":"u"},` +
		`{"name":"status","valueString":"DONE"},{"name":"binary","valueReference":{"reference":"Binary/%[1]d"}},` +
		`{"name":"parameters","resource":{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"}]}},` +
		`{"name":"created","valueDateTime":"2023-10-12T09:51:50+00:00"}]}]}}`
	var entries []string
	for i := range 200 {
		entries = append(entries, fmt.Sprintf(entry, i))
	}
	body := []byte(`{"resourceType":"Bundle","type":"collection","entry":[` + strings.Join(entries, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if jobs, err := DecodeReportJobs(body); err != nil || len(jobs) != 200 {
			b.Fatal(err)
		}
	}
}

// An output file of 10,000 NDJSON lines, each held to the manifest's type.
func BenchmarkReadOutputFile(b *testing.B) {
	line := `{"resourceType":"Observation","id":"%d","status":"final","code":{"text":"heart rate"},"valueQuantity":{"value":72,"unit":"/min"}}` + "\n"
	var sb strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&sb, line, i)
	}
	x := &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"Content-Type": {"application/fhir+ndjson"}}, Body: []byte(sb.String())}
	b.SetBytes(int64(len(x.Body)))
	for b.Loop() {
		if f, err := ReadOutputFile(ManifestItem{Type: "Observation", URL: "u"}, x); err != nil || f.Resources != 10000 {
			b.Fatal(err)
		}
	}
}
