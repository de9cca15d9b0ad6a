package check

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// Fuzz targets over the code that reads what a server under test sends. Each asserts a property of what the
// code returns that a wrong implementation could break (a round trip, an invariant of the decoded value, a
// count made again independently), besides never panicking. The seed corpora are in
// testdata/fuzz/<FuzzName>/; `go test` replays them, `make fuzz` explores.

// A parsed Retry-After is a whole number of seconds, never negative, and says the same delay when written
// again in either form.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "0", "", " 5 ", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2025, 12, 5, 11, 33, 54, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, err := ParseRetryAfter(v, now)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s: a negative delay", v, d)
		}
		if d == math.MaxInt64 { // a date beyond time.Duration's range saturates; the Poller caps it anyway
			return
		}
		if d%time.Second != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s: not whole seconds, though both forms have second precision", v, d)
		}
		if d >= MaxRetryAfter {
			return // delay-seconds saturates there
		}
		if again, err := ParseRetryAfter(strconv.FormatInt(int64(d/time.Second), 10), now); err != nil || again != d {
			t.Fatalf("ParseRetryAfter(%q) = %s, but as delay-seconds it reads %s, %v", v, d, again, err)
		}
		if again, err := ParseRetryAfter(now.Add(d).Format(http.TimeFormat), now); err != nil || again != d {
			t.Fatalf("ParseRetryAfter(%q) = %s, but as an HTTP-date it reads %s, %v", v, d, again, err)
		}
	})
}

// A decoded status Bundle has one job per entry, and a Bundle written from the decoded jobs decodes to the
// same jobs. Jobs that pass CheckJobTimes have FHIR dateTimes in order wherever two have a time of day.
func FuzzDecodeReportJobs(f *testing.F) {
	for _, name := range []string{"get-report-job-status.od-example.json", "get-report-job-status.empty.json", "get-report-job-status.failed-example.json"} {
		if b, err := fixtures.Example(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Parameters"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		jobs, err := DecodeReportJobs(body)
		if err != nil {
			return
		}
		var raw struct {
			Entry []json.RawMessage `json:"entry"`
		}
		if err := json.Unmarshal(body, &raw); err != nil || len(raw.Entry) != len(jobs) {
			t.Fatalf("DecodeReportJobs: %d jobs from a Bundle of %d entries (%v)", len(jobs), len(raw.Entry), err)
		}
		again, err := DecodeReportJobs(encodeReportJobs(t, jobs))
		if err != nil {
			t.Fatalf("the Bundle written from the decoded jobs does not decode: %v", err)
		}
		if diff := cmp.Diff(jobs, again); diff != "" {
			t.Fatalf("decode, write, decode changed the jobs (-first +second):\n%s", diff)
		}
		for i, j := range jobs {
			if CheckJobTimes("RJS-STRUCTURE", i, j) != nil {
				continue
			}
			var timed []time.Time
			for _, v := range []string{j.Created, j.Started, j.Ended} {
				if v == "" {
					continue
				}
				at, hasTime, err := ParseFHIRDateTime(v)
				if err != nil {
					t.Fatalf("job %d passed CheckJobTimes with %q, not a FHIR dateTime", i, v)
				}
				if hasTime {
					timed = append(timed, at)
				}
			}
			for k := 1; k < len(timed); k++ {
				for e := range k {
					if timed[k].Before(timed[e]) {
						t.Fatalf("job %d passed CheckJobTimes with times out of order: %+v", i, j)
					}
				}
			}
		}
	})
}

// encodeReportJobs writes jobs as a $get-report-job-status Bundle, the inverse of DecodeReportJobs.
func encodeReportJobs(t *testing.T, jobs []ReportJob) []byte {
	t.Helper()
	str := func(name, v string) map[string]any { return map[string]any{"name": name, "valueString": v} }
	dt := func(name, v string) map[string]any { return map[string]any{"name": name, "valueDateTime": v} }
	entries := []any{}
	for _, j := range jobs {
		nested := []any{}
		for k, v := range j.Parameters {
			nested = append(nested, str(k, v))
		}
		parts := []any{str("reportClass", j.ReportClass), str("userId", j.UserID), str("status", j.Status),
			map[string]any{"name": "binary", "valueReference": map[string]any{"reference": j.Binary}},
			dt("created", j.Created), dt("started", j.Started), dt("ended", j.Ended),
			map[string]any{"name": "parameters", "resource": map[string]any{"resourceType": "Parameters", "parameter": nested}}}
		entry := map[string]any{"resource": map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "reportJob", "part": parts}}}}
		if j.FullURL != "" {
			entry["fullUrl"] = j.FullURL
		}
		entries = append(entries, entry)
	}
	b, err := json.Marshal(map[string]any{"resourceType": "Bundle", "type": "collection", "entry": entries})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An output file that passes holds as many resources as it has non-blank lines, each of the manifest's type;
// the same NDJSON wrapped in a FHIR Binary reads the same; bad input is a deviation.
func FuzzReadOutputFile(f *testing.F) {
	f.Add("application/fhir+ndjson", "Patient", []byte(`{"resourceType":"Patient","id":"1"}`+"\n"))
	f.Add("application/fhir+json", "Patient", []byte(`{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"eyJyZXNvdXJjZVR5cGUiOiJQYXRpZW50In0K"}`))
	f.Add("application/ndjson; charset=utf-8", "Observation", []byte("\n\n{}\n"))
	f.Add("text/html", "Patient", []byte("<html>"))
	f.Fuzz(func(t *testing.T, contentType, typ string, body []byte) {
		x := &Exchange{Method: "GET", URL: "http://f/Binary/1", Status: 200, Header: http.Header{"Content-Type": {contentType}}, Body: body}
		item := ManifestItem{Type: typ, URL: x.URL}
		got, err := ReadOutputFile(item, x)
		if err != nil {
			if !errors.Is(err, ErrNonConformant) {
				t.Fatalf("ReadOutputFile: bad input must be a deviation, got %v", err)
			}
			return
		}
		ndjson := body
		if got.Format == "Binary" {
			b, err := DecodeBinary("", x)
			if err != nil {
				t.Fatalf("read as a Binary, which does not decode: %v", err)
			}
			ndjson = b.Data
		}
		lines := 0
		for _, line := range bytes.Split(ndjson, []byte("\n")) {
			if line = bytes.TrimSpace(line); len(line) == 0 {
				continue
			}
			lines++
			var r struct {
				ResourceType string `json:"resourceType"`
			}
			if json.Unmarshal(line, &r) != nil || r.ResourceType != typ {
				t.Fatalf("passed with line %q, not a %s resource", line, typ)
			}
		}
		if got.Resources != lines {
			t.Fatalf("counted %d resources in %d non-blank lines", got.Resources, lines)
		}
		wrapped, _ := json.Marshal(map[string]any{"resourceType": "Binary", "contentType": NDJSON, "data": base64.StdEncoding.EncodeToString(ndjson)})
		binary := &Exchange{Method: "GET", URL: x.URL, Status: 200, Header: http.Header{"Content-Type": {"application/fhir+json"}}, Body: wrapped}
		if again, err := ReadOutputFile(item, binary); err != nil || again.Resources != got.Resources || again.Format != "Binary" {
			t.Fatalf("the same NDJSON in a Binary reads %+v, %v; as %s it read %+v", again, err, got.Format, got)
		}
	})
}

var resourceTypeName = regexp.MustCompile(`^[A-Z][A-Za-z]+$`)

// A manifest that passes has a FHIR instant as transactionTime and, in every list, items with a resource type
// name, an http(s) URL and no negative count: what the check claims of it; bad input is a deviation.
func FuzzCheckManifest(f *testing.F) {
	for _, name := range []string{"export-manifest.fut-example.json", "export-manifest.bulkdata-example.json", "invalid/export-manifest.relative-url.json"} {
		if b, err := fixtures.Example(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"transactionTime":"x","request":"y","requiresAccessToken":true,"output":[],"error":[]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		x := &Exchange{Method: "GET", URL: "http://fut.example/fhir/$export-poll-status?_jobId=1", Status: 200,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: body, Received: time.Now()}
		m, err := CheckManifest("", x)
		if err != nil {
			if !errors.Is(err, ErrNonConformant) {
				t.Fatalf("CheckManifest: bad input must be a deviation, got %v", err)
			}
			return
		}
		if _, err := ParseFHIRInstant(m.TransactionTime); err != nil {
			t.Fatalf("passed with transactionTime %q: %v", m.TransactionTime, err)
		}
		if m.Output == nil || m.Error == nil {
			t.Fatalf("passed without the required output and error arrays: %+v", m)
		}
		for _, list := range [][]ManifestItem{m.Output, m.Error, m.Deleted} {
			for _, item := range list {
				if !resourceTypeName.MatchString(item.Type) || !(strings.HasPrefix(item.URL, "http://") || strings.HasPrefix(item.URL, "https://")) || (item.Count != nil && *item.Count < 0) {
					t.Fatalf("passed with item %+v", item)
				}
			}
		}
	})
}

// An OperationOutcome that passes is a JSON object of resourceType OperationOutcome with at least one issue,
// each with a severity and a code; one whose issues lack only codes passes once WithIssueCodes filled them
// in, with one placeholder per missing code.
func FuzzCheckOperationOutcome(f *testing.F) {
	f.Add("application/fhir+json", []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`))
	f.Add("application/json", []byte(`{"resourceType":"OperationOutcome","issue":[]}`))
	f.Add("application/fhir+json", []byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error"},{"severity":"warning","code":""}]}`))
	f.Add("", []byte(`null`))
	f.Add("text/plain", []byte(`oops`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		x := &Exchange{Method: "GET", URL: "http://f/x", Status: 404, Header: http.Header{"Content-Type": {contentType}}, Body: body}
		err := CheckOperationOutcome("", x)
		if err != nil && !errors.Is(err, ErrNonConformant) {
			t.Fatalf("CheckOperationOutcome: bad input must be a deviation, got %v", err)
		}
		var oo struct {
			ResourceType string           `json:"resourceType"`
			Issue        []map[string]any `json:"issue"`
		}
		if err == nil {
			if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
				t.Fatalf("passed %q, not an OperationOutcome with issues", body)
			}
			for _, is := range oo.Issue {
				if s, _ := is["severity"].(string); s == "" {
					t.Fatalf("passed an issue without a severity: %q", body)
				}
				if c, _ := is["code"].(string); c == "" {
					t.Fatalf("passed an issue without a code: %q", body)
				}
			}
		}
		patched, missing := WithIssueCodes(body)
		if missing == 0 {
			if !bytes.Equal(patched, body) {
				t.Fatal("WithIssueCodes changed a body with no missing code")
			}
			return
		}
		if json.Unmarshal(patched, &oo) != nil {
			t.Fatalf("WithIssueCodes wrote invalid JSON: %q", patched)
		}
		filled := 0
		for _, is := range oo.Issue {
			if c, _ := is["code"].(string); c == "" {
				t.Fatalf("WithIssueCodes left an issue without a code: %q", patched)
			} else if c == "unknown" {
				filled++
			}
		}
		if filled < missing {
			t.Fatalf("WithIssueCodes counted %d missing codes but placed %d placeholders", missing, filled)
		}
	})
}
