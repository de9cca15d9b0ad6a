package check

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// patientUpdated is a valid Patient line whose meta.lastUpdated is at ("" for a line without meta).
func patientUpdated(id, at string) string {
	meta := ""
	if at != "" {
		meta = `"meta":{"lastUpdated":"` + at + `"},`
	}
	return `{"resourceType":"Patient","id":"` + id + `",` + meta + `"active":true,"gender":"female","birthDate":"1970-01-01"}` + "\n"
}

// BDA2 "Complete Status", transactionTime: "The response SHOULD NOT include any resources modified after this
// instant". A line decoded strictly whose meta.lastUpdated is later than the manifest's transactionTime by
// more than the clock skew allowed between a server's nodes is counted, the first by number named; one
// within the skew, at the instant, earlier or without meta is not; a line outside the strict sample is not
// read, and without a transactionTime nothing is compared.
func TestALineModifiedAfterTransactionTimeIsFound(t *testing.T) {
	tt := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) string { return tt.Add(d).Format("2006-01-02T15:04:05.000Z07:00") }
	item := ManifestItem{Type: "Patient", URL: "http://f/Patient.ndjson"}
	for _, c := range []struct {
		name       string
		body       string
		fc         FileCheck
		compared   int
		lines      int
		firstLine  int
		firstID    string
		firstLater time.Duration
	}{
		{name: "six minutes later", body: patientUpdated("p1", at(6*time.Minute)),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}, compared: 1, lines: 1, firstLine: 1, firstID: "p1", firstLater: 6 * time.Minute},
		{name: "ten minutes later in another offset", body: patientUpdated("p1", "2025-01-01T14:10:00+02:00"),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}, compared: 1, lines: 1, firstLine: 1, firstID: "p1", firstLater: 10 * time.Minute},
		{name: "within the skew", body: patientUpdated("p1", at(TransactionTimeSkew)),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}, compared: 1},
		{name: "at the instant", body: patientUpdated("p1", at(0)),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}, compared: 1},
		{name: "earlier", body: patientUpdated("p1", at(-24*time.Hour)),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}, compared: 1},
		{name: "no meta", body: patientUpdated("p1", ""),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}},
		{name: "the first of several by number", body: patientUpdated("p1", at(0)) + patientUpdated("p2", at(time.Hour)) + patientUpdated("p3", at(2*time.Hour)),
			fc: FileCheck{StrictLines: AllLines, TransactionTime: tt}, compared: 3, lines: 2, firstLine: 2, firstID: "p2", firstLater: time.Hour},
		{name: "a line outside the strict sample", body: patientUpdated("p1", at(0)) + patientUpdated("p2", at(time.Hour)),
			fc: FileCheck{StrictLines: 1, TransactionTime: tt}, compared: 1},
		{name: "no transactionTime", body: patientUpdated("p1", at(time.Hour)),
			fc: FileCheck{StrictLines: AllLines}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := streamed(t, NDJSON, item, strings.NewReader(c.body), c.fc)
			if err != nil {
				t.Fatalf("a valid file failed: %v", err)
			}
			got := f.ModifiedAfter
			if got.Compared != c.compared || got.Lines != c.lines {
				t.Fatalf("compared %d lines (want %d), %d modified after (want %d): %+v", got.Compared, c.compared, got.Lines, c.lines, got)
			}
			if c.lines == 0 {
				return
			}
			first := got.First
			if first.Line != c.firstLine || first.Type != "Patient" || first.ID != c.firstID || first.Later != c.firstLater || first.LastUpdated == "" {
				t.Fatalf("first line modified after: %+v, want line %d Patient/%s %s later", first, c.firstLine, c.firstID, c.firstLater)
			}
		})
	}
}

// Every worker's lines count, and the first reported is the lowest line number whichever judge found it.
func TestLinesModifiedAfterAreCountedAcrossWorkers(t *testing.T) {
	tt := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	var b strings.Builder
	const n = 6000 // about 130 bytes a line: three chunks of 256 KiB and more
	for i := 1; i <= n; i++ {
		when := tt.Add(-time.Hour)
		if i%1000 == 0 {
			when = tt.Add(time.Hour)
		}
		b.WriteString(patientUpdated(fmt.Sprintf("p%d", i), when.Format(time.RFC3339)))
	}
	f, err := streamed(t, NDJSON, ManifestItem{Type: "Patient", URL: "http://f/p"}, strings.NewReader(b.String()),
		FileCheck{Workers: 4, StrictLines: AllLines, TransactionTime: tt})
	if err != nil {
		t.Fatal(err)
	}
	if m := f.ModifiedAfter; m.Compared != n || m.Lines != n/1000 || m.First.Line != 1000 || m.First.ID != "p1000" {
		t.Fatalf("got %+v, want %d compared, %d lines, the first line 1000 (p1000)", m, n, n/1000)
	}
}
