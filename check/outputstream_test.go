package check

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func patients(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"resourceType":"Patient","id":"p%d","active":true,"name":[{"family":"Hansen","given":["Jens"]}],"gender":"male","birthDate":"1970-01-01"}`+"\n", i)
	}
	return b.String()
}

func streamed(t *testing.T, contentType string, item ManifestItem, body io.Reader, fc FileCheck) (OutputFile, error) {
	t.Helper()
	x := &Exchange{Method: "GET", URL: item.URL, Status: 200, Header: http.Header{"Content-Type": {contentType}}}
	return ReadOutputStream(item, x, body, fc)
}

func binaryOf(ndjson string) string {
	return `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + base64.StdEncoding.EncodeToString([]byte(ndjson)) + `"}`
}

// A file of several chunks, read in both forms, byte by byte too: every line counted once, whatever the
// chunk boundaries; a bad last line fails with its number; a count off by one names the file.
func TestAStreamedFileOfManyChunksIsCountedLineByLine(t *testing.T) {
	const n = 20000 // about 3 MB: three chunks and more
	body := patients(n)
	part := body[:strings.LastIndex(body[:200000], "\n")+1]
	count := int64(n)
	item := ManifestItem{Type: "Patient", URL: "http://f/Patient.ndjson", Count: &count}
	for name, c := range map[string]struct {
		contentType string
		body        func() io.Reader
	}{
		"ndjson":               {NDJSON, func() io.Reader { return strings.NewReader(body) }},
		"ndjson one byte":      {NDJSON, func() io.Reader { return iotest.OneByteReader(strings.NewReader(part)) }},
		"Binary":               {"application/fhir+json", func() io.Reader { return strings.NewReader(binaryOf(body)) }},
		"Binary one byte":      {"application/fhir+json", func() io.Reader { return iotest.OneByteReader(strings.NewReader(binaryOf(part))) }},
		"ndjson, one judge":    {NDJSON, func() io.Reader { return strings.NewReader(body) }},
		"Binary, half a chunk": {"application/fhir+json", func() io.Reader { return iotest.HalfReader(strings.NewReader(binaryOf(body))) }},
	} {
		want := n
		it := item
		if strings.Contains(name, "one byte") {
			want = strings.Count(part, "\n")
			it.Count = nil
		}
		f, err := streamed(t, c.contentType, it, c.body(), FileCheck{Workers: map[bool]int{true: 1}[strings.Contains(name, "one judge")]})
		if err != nil || f.Resources != want {
			t.Errorf("%s: %d resources (want %d), %v", name, f.Resources, want, err)
		}
	}

	bad := body[:len(body)-len("}\n")] + "\n" // the last line cut short
	for _, form := range []string{NDJSON, "application/fhir+json"} {
		in := bad
		if form != NDJSON {
			in = binaryOf(bad)
		}
		_, err := streamed(t, form, item, strings.NewReader(in), FileCheck{})
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), fmt.Sprintf("line %d", n)) || !strings.Contains(err.Error(), "invalid JSON") {
			t.Errorf("%s: a bad last line: want a violation naming line %d, got %v", form, n, err)
		}
	}

	off := int64(n + 1)
	_, err := streamed(t, NDJSON, ManifestItem{Type: "Patient", URL: "http://f/Patient.ndjson", Count: &off}, strings.NewReader(body), FileCheck{})
	if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "http://f/Patient.ndjson") || !strings.Contains(err.Error(), fmt.Sprint(n+1)) {
		t.Errorf("a count off by one: want a violation naming the file and the count, got %v", err)
	}
}

// The data string is a JSON string: escapes are undone before base64 decoding, members may come in any
// order, and what breaks the JSON or the base64 is a deviation.
func TestABinaryIsReadAsJSONWhileItStreams(t *testing.T) {
	ndjson := patients(3)
	enc := base64.StdEncoding.EncodeToString([]byte(ndjson))
	escaped := strings.ReplaceAll(enc, "/", `\/`)
	escaped = strings.Replace(escaped, enc[:1], `\u00`+fmt.Sprintf("%x", enc[0]), 1)
	wrapped := enc[:10] + `\n` + enc[10:] // MIME base64 wraps lines; the decoder skips newlines
	item := ManifestItem{Type: "Patient", URL: "u"}
	for name, body := range map[string]string{
		"escaped":        `{"resourceType":"Binary","contentType":"application/fhir+ndjson","data":"` + escaped + `"}`,
		"data first":     `{"data":"` + enc + `","contentType":"application/fhir+ndjson","meta":{"tag":[{"code":"x"}]},"resourceType":"Binary"}`,
		"wrapped":        ` { "resourceType" : "Binary" , "contentType":"application/fhir+ndjson", "data" : "` + wrapped + `" } ` + "\n",
		"security first": `{"resourceType":"Binary","securityContext":{"identifier":{"value":"u\"1"}},"contentType":"application/fhir+ndjson","data":"` + enc + `"}`,
		"parameters":     `{"resourceType":"Binary","contentType":"application/fhir+ndjson; charset=utf-8","data":"` + enc + `"}`,
	} {
		f, err := streamed(t, "application/fhir+json", item, strings.NewReader(body), FileCheck{})
		if err != nil || f.Resources != 3 || f.Format != "Binary" {
			t.Errorf("%s: %+v %v", name, f, err)
		}
	}
	for name, c := range map[string]struct{ body, want string }{
		"not Binary":     {`{"resourceType":"Patient","contentType":"x","data":"` + enc + `"}`, `resourceType "Binary"`},
		"no contentType": {`{"resourceType":"Binary","data":"` + enc + `"}`, "contentType"},
		"unclosed":       {`{"resourceType":"Binary","contentType":"x","data":"` + enc + `"`, "invalid JSON"},
		"unended data":   {`{"resourceType":"Binary","contentType":"x","data":"` + enc, "invalid JSON"},
		"trailing":       {binaryOf(ndjson) + `x`, "invalid JSON"},
		"data twice":     {`{"resourceType":"Binary","contentType":"x","data":"` + enc + `","data":""}`, "twice"},
		"bad escape":     {`{"resourceType":"Binary","contentType":"x","data":"\q"}`, "invalid JSON"},
		"not base64":     {`{"resourceType":"Binary","contentType":"x","data":"***"}`, "base64"},
		"data a number":  {`{"resourceType":"Binary","contentType":"x","data":12}`, "base64"},
		"an array":       {`[1]`, "invalid JSON"},
		// the media type of the file it holds: NDJSON (BDA2's SHALL for an NDJSON file; FUT's Binaries)
		"text/plain":      {`{"resourceType":"Binary","contentType":"text/plain","data":"` + enc + `"}`, `Binary.contentType of output file u: expected application/fhir+ndjson`},
		"generic ndjson":  {`{"resourceType":"Binary","contentType":"application/ndjson","data":"` + enc + `"}`, `got "application/ndjson"`},
		"not a mediatype": {`{"resourceType":"Binary","contentType":"x","data":"` + enc + `"}`, `got "x"`},
	} {
		_, err := streamed(t, "application/fhir+json", item, strings.NewReader(c.body), FileCheck{})
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want a violation mentioning %q, got %v", name, c.want, err)
		}
	}
}

// A line longer than MaxLine is refused without being held whole.
func TestALineLongerThanTheBoundIsRefused(t *testing.T) {
	long := `{"resourceType":"Patient","id":"` + strings.Repeat("x", 5<<20) + `"}` + "\n"
	_, err := streamed(t, NDJSON, ManifestItem{Type: "Patient", URL: "u"}, strings.NewReader(patients(2)+long), FileCheck{MaxLine: 1 << 20})
	if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "at most 1048576 bytes") {
		t.Fatalf("want a violation naming line 3 and the bound, got %v", err)
	}
	f, err := streamed(t, NDJSON, ManifestItem{Type: "Patient", URL: "u"}, strings.NewReader(patients(2)+long+patients(1)), FileCheck{})
	if err != nil || f.Resources != 4 {
		t.Fatalf("a 5 MiB line under the default bound: %+v %v", f, err)
	}
}

// A transport failure halfway is the harness's error, not the server's deviation.
func TestABodyThatFailsHalfwayIsNotADeviation(t *testing.T) {
	body := io.MultiReader(strings.NewReader(patients(10)), iotest.ErrReader(errors.New("connection reset")))
	_, err := streamed(t, NDJSON, ManifestItem{Type: "Patient", URL: "u"}, body, FileCheck{})
	if err == nil || errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("want the transport's error, got %v", err)
	}
}

// Lines that FHIR R4 accepts, with what a loose reading gets wrong: primitive extensions, contained
// resources, choice types.
var validFHIRLines = map[string]string{
	"primitive extension": `{"resourceType":"Patient","id":"1","birthDate":"1970-01-01","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1970-01-01T10:00:00+01:00"}]}}`,
	"contained":           `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"contained":[{"resourceType":"Patient","id":"p"}],"subject":{"reference":"#p"},"valueQuantity":{"value":72,"unit":"/min"}}`,
	"choice type":         `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"valueCodeableConcept":{"text":"y"},"effectiveDateTime":"2020-01-01T10:00:00Z"}`,
	"partial date":        `{"resourceType":"Patient","id":"1","birthDate":"1970-01"}`,
}

// Lines FHIR R4 refuses, each with what the failure must quote: the element and what was found there.
var invalidFHIRLines = map[string]struct{ line, names string }{
	"unknown element":  {`{"resourceType":"Patient","id":"1","foo":1}`, `Patient: unknown field "foo"`},
	"wrong value type": {`{"resourceType":"Patient","id":"1","active":"yes"}`, `Patient.active: expected boolean found "yes"`},
	"malformed date":   {`{"resourceType":"Patient","id":"1","birthDate":"1970-13-45"}`, `Patient.birthDate: expected date found "1970-13-45"`},
	"unknown code":     {`{"resourceType":"Observation","id":"o","status":"bogus","code":{"text":"x"}}`, `Observation.status: code type mismatch "bogus"`},
	"two choices":      {`{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"valueString":"a","valueBoolean":true}`, `cannot accept multiple values for value field "value`},
}

func typeOf(line string) string {
	return strings.Split(strings.Split(line, `"resourceType":"`)[1], `"`)[0]
}

func TestEachLineIsDecodedStrictlyAsItsFHIRType(t *testing.T) {
	for name, line := range validFHIRLines {
		f, err := streamed(t, NDJSON, ManifestItem{Type: typeOf(line), URL: "u"}, strings.NewReader(patientsOf(typeOf(line), 3)+line+"\n"), FileCheck{StrictLines: AllLines})
		if err != nil || f.Strict != 4 {
			t.Errorf("%s: valid FHIR refused: %+v %v", name, f, err)
		}
	}
	for name, c := range invalidFHIRLines {
		item := ManifestItem{Type: typeOf(c.line), URL: "http://f/x.ndjson"}
		body := patientsOf(item.Type, 3) + c.line + "\n" + patientsOf(item.Type, 2)
		_, err := streamed(t, NDJSON, item, strings.NewReader(body), FileCheck{StrictLines: AllLines})
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "http://f/x.ndjson line 4") || !strings.Contains(err.Error(), "valid FHIR R4 "+item.Type) {
			t.Errorf("%s: want a violation at line 4, got %v", name, err)
		}
		if !strings.Contains(err.Error(), c.names) {
			t.Errorf("%s: want the failure to say %s, got %v", name, c.names, err)
		}
		// beyond StrictLines, with no sample, the line's JSON and type are still judged, not its FHIR
		f, err := streamed(t, NDJSON, item, strings.NewReader(body), FileCheck{StrictLines: 3})
		if err != nil || f.Strict != 3 || f.Resources != 6 {
			t.Errorf("%s: StrictLines 3 decoded %d lines: %+v %v", name, f.Strict, f, err)
		}
		// a sample of one in one decodes every line
		if _, err := streamed(t, NDJSON, item, strings.NewReader(body), FileCheck{StrictLines: 1, StrictSample: 1}); !errors.Is(err, ErrNonConformant) {
			t.Errorf("%s: a full sample passed the bad line", name)
		}
	}
}

// The random sample decodes lines with the chance it says: every line at 1, about one in ten at 0.1 (one draw
// per decoded line), and beyond StrictLines only.
func TestTheRandomSampleTakesLinesAtItsRate(t *testing.T) {
	ok := func() LineDecoder { return func([]byte) error { return nil } }
	for _, c := range []struct {
		fc       FileCheck
		min, max int
	}{
		{FileCheck{StrictSample: 1, FHIR: ok}, 20000, 20000},
		{FileCheck{StrictSample: 0.1, FHIR: ok}, 1700, 2300},
		{FileCheck{StrictLines: 5, StrictSample: 1e-300, FHIR: ok}, 5, 5},
		{FileCheck{FHIR: ok}, 0, 0},
	} {
		f, err := streamed(t, NDJSON, ManifestItem{Type: "Patient", URL: "u"}, strings.NewReader(patients(20000)), c.fc)
		if err != nil || f.Strict < c.min || f.Strict > c.max {
			t.Errorf("lines %d, sample %g: decoded %d lines of 20000, want %d to %d (%v)", c.fc.StrictLines, c.fc.StrictSample, f.Strict, c.min, c.max, err)
		}
	}
}

func patientsOf(typ string, n int) string {
	if typ == "Patient" {
		return patients(n)
	}
	return strings.Repeat(`{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"}}`+"\n", n)
}

// Streaming costs about the same memory for a file of 64 MiB as for one of 1 MiB.
func BenchmarkReadOutputStream(b *testing.B) {
	line := []byte(`{"resourceType":"Patient","id":"p1","active":true,"name":[{"family":"Hansen","given":["Jens"]}],"gender":"male","birthDate":"1970-01-01"}` + "\n")
	body := bytes.Repeat(line, (64<<20)/len(line))
	for _, form := range []string{"ndjson", "Binary", "strict sample", "strict all"} {
		b.Run(form, func(b *testing.B) {
			in, ct, fc := body, NDJSON, FileCheck{}
			switch form {
			case "Binary":
				in, ct = []byte(binaryOf(string(body))), "application/fhir+json"
			case "strict sample":
				fc = FileCheck{StrictLines: 1000, StrictSample: 0.001}
			case "strict all":
				in, fc = body[:len(line)*20000], FileCheck{StrictLines: AllLines}
			}
			x := &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"Content-Type": {ct}}}
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				if _, err := ReadOutputStream(ManifestItem{Type: "Patient", URL: "u"}, x, bytes.NewReader(in), fc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// A line with several faults gets them all, in the same order on every run (the library finds them in a
// map's order), each with what was found; an error of a shape fhirError does not know keeps its message.
func TestStrictFailuresNameEveryFaultInAStableOrder(t *testing.T) {
	decode := NewFHIRDecoder()
	line := []byte(`{"resourceType":"Patient","id":"1","zeta":1,"alpha":2,"name":[{"family":"X","foo":1}],"contact":[{"bar":2}]}`)
	want := `Patient.contact[0]: unknown field "bar"; Patient.name[0]: unknown field "foo"; Patient: unknown field "alpha"; Patient: unknown field "zeta"`
	for range 20 {
		if err := decode(line); err == nil || err.Error() != want {
			t.Fatalf("got %v\nwant %s", err, want)
		}
	}
	long := []byte(`{"resourceType":"Patient","id":"1","birthDate":"` + strings.Repeat("9", 500) + `"}`)
	if err := decode(long); err == nil || len(err.Error()) > 200 || !strings.HasSuffix(err.Error(), `…`) {
		t.Errorf("a long value is quoted whole: %v", err)
	}
	plain := errors.New("something else")
	if got := fhirError(plain); got != plain {
		t.Errorf("fhirError(%v) = %v", plain, got)
	}
}

// An NDJSON output file is application/fhir+ndjson: BDA2's "SHALL". The generic NDJSON media types, and
// anything else, fail naming the Content-Type, though the lines themselves are valid.
func TestAnNDJSONFileIsServedAsFHIRNDJSON(t *testing.T) {
	item := ManifestItem{Type: "Patient", URL: "http://f/Patient.ndjson"}
	if _, err := streamed(t, NDJSON+"; charset=utf-8", item, strings.NewReader(patients(3)), FileCheck{}); err != nil {
		t.Fatalf("application/fhir+ndjson: %v", err)
	}
	for _, mt := range []string{"application/ndjson", "application/x-ndjson", "text/plain"} {
		_, err := streamed(t, mt, item, strings.NewReader(patients(3)), FileCheck{})
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "Content-Type of output file http://f/Patient.ndjson") || !strings.Contains(err.Error(), mt) {
			t.Errorf("%s: want a violation naming the Content-Type, got %v", mt, err)
		}
	}
}

// A body whose transfer fails inside a line (the reader's error marked ErrTransport, as the harness marks
// net/http's) is the transport's error in both forms, not the server's invalid JSON or base64; the same body
// ending there cleanly is the server's deviation.
func TestAFileCutShortInTransferIsNoViolation(t *testing.T) {
	body := patients(3)
	item := ManifestItem{Type: "Patient", URL: "http://f/Patient.ndjson"}
	for name, c := range map[string]struct{ contentType, text string }{
		"ndjson": {NDJSON, body},
		"Binary": {"application/fhir+json", binaryOf(body)},
	} {
		cut := c.text[:len(c.text)/2] // inside the second line
		reset := fmt.Errorf("%w: %w", ErrTransport, io.ErrUnexpectedEOF)
		_, err := streamed(t, c.contentType, item, io.MultiReader(strings.NewReader(cut), iotest.ErrReader(reset)), FileCheck{})
		if !errors.Is(err, ErrTransport) || errors.Is(err, ErrNonConformant) {
			t.Errorf("%s cut in transfer: want the transport's error, got %v", name, err)
		}
		if _, err := streamed(t, c.contentType, item, strings.NewReader(cut), FileCheck{}); !errors.Is(err, ErrNonConformant) {
			t.Errorf("%s ending cleanly inside a line: want a violation, got %v", name, err)
		}
	}
}

// HAPI labels an export Binary with its job (meta extension bulk-export-job-id): with the job known, a Binary
// of another job fails, naming it; one of the job, one without the extension, or a job not known, pass.
func TestABinaryOfAnotherExportJobIsRefused(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString([]byte(patients(2)))
	of := func(job string) string {
		return `{"resourceType":"Binary","meta":{"extension":[{"url":"` + ExtBulkExportJobID + `","valueString":"` + job + `"}]},"contentType":"application/fhir+ndjson","data":"` + enc + `"}`
	}
	item := ManifestItem{Type: "Patient", URL: "u"}
	for name, c := range map[string]struct{ body, job, fails string }{
		"its own job":      {of("job-1"), "job-1", ""},
		"no extension":     {binaryOf(patients(2)), "job-1", ""},
		"job not known":    {of("job-2"), "", ""},
		"another job":      {of("job-2"), "job-1", `bulk-export-job-id of output file u: expected job job-1`},
		"another job, too": {of("job-2"), "job-1", `got "job-2": a file of another export job`},
	} {
		_, err := streamed(t, "application/fhir+json", item, strings.NewReader(c.body), FileCheck{JobID: c.job})
		switch {
		case c.fails == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.fails != "" && (!errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: want a violation saying %q, got %v", name, c.fails, err)
		}
	}
}
