package check

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"mime"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// NDJSON is the Bulk Data output format the harness asks for.
const NDJSON = "application/fhir+ndjson"

// OutputFile is what reading one output file found.
type OutputFile struct {
	Item      ManifestItem
	Resources int
	Format    string // "ndjson" or "Binary"
	Strict    int    // lines decoded strictly as their FHIR type
	// FHIRGaps counts the lines decoded strictly that met valid FHIR R4 the library refuses, judged around it
	// (in Strict) or left unjudged (not in Strict).
	FHIRGaps FHIRGapLines
	// ModifiedAfter compares the lines decoded strictly with the manifest's transactionTime, when
	// FileCheck.TransactionTime is set.
	ModifiedAfter ModifiedAfter
}

// FileCheck says how deeply and with how many goroutines the lines of an output file are judged. The zero
// value judges every line's JSON and resourceType on GOMAXPROCS goroutines and decodes none strictly.
type FileCheck struct {
	Workers int // goroutines judging lines; 0: GOMAXPROCS
	// StrictLines is how many lines of each file, from the first, are decoded strictly as their FHIR R4 type;
	// AllLines decodes every line. Beyond StrictLines, StrictSample is the chance that a line is decoded
	// strictly anyway: a random sample of the rest of the file.
	StrictLines  int
	StrictSample float64
	// TypeLines, when set, is a budget of lines shared by the files of one type: a line is decoded strictly
	// while it lasts, whichever of the files it is in, so that a type's lines up to the budget are all
	// decoded however the server splits them into files.
	TypeLines *atomic.Int64
	// FHIR decodes one line strictly; nil: NewFHIRDecoder. Each goroutine gets its own.
	FHIR func() LineDecoder
	// MaxLine bounds one line, the memory a line may cost; 0: DefaultMaxLine.
	MaxLine int
	// Line, when set, judges every line further once it is valid JSON of the item's type (a deleted file's
	// transaction Bundles); its error, a *LineFault saying what it expected, is the line's violation.
	Line func(line []byte) error
	// JobID, when known, is the export job whose manifest lists the file (FUT's _jobId): a file served as a
	// Binary whose bulk-export-job-id extension names another job is another export's file.
	JobID string
	// TransactionTime, when set, is the manifest's transactionTime, which each line decoded strictly is
	// compared with (OutputFile.ModifiedAfter): an output file's, not an error or a deleted file's, whose
	// lines are no exported resources.
	TransactionTime time.Time
}

// AllLines as FileCheck.StrictLines decodes every line strictly.
const AllLines = -1

// DefaultMaxLine is the longest line an output file may have: one resource in JSON.
const DefaultMaxLine = 16 << 20

// LineDecoder decodes one NDJSON line strictly as a FHIR resource; the error says what is wrong and where in
// the resource, but for a *gapsMet (NewFHIRDecoder's), which says that nothing is.
type LineDecoder func(line []byte) error

// ReadOutputFile is ReadOutputStream over the exchange's whole body, with FileCheck's zero value: for bodies
// already in memory (tests, fuzzing).
func ReadOutputFile(item ManifestItem, x *Exchange) (OutputFile, error) {
	return ReadOutputStream(item, x, bytes.NewReader(x.Body), FileCheck{})
}

// ReadOutputStream reads one output file from body while it arrives: NDJSON, or a FHIR Binary holding base64
// NDJSON as FUT serves its files (the data string decoded as it streams), each line held to valid JSON, the
// item's type and, as fc says, to its FHIR type; the lines counted against the item's count. Memory stays
// constant whatever the size of the file. The header comes from x, which is not changed.
func ReadOutputStream(item ManifestItem, x *Exchange, body io.Reader, fc FileCheck) (OutputFile, error) {
	f := OutputFile{Item: item, Format: "ndjson"}
	var bin *binaryStream
	found := false // the Binary has data: a Binary without (R4 Binary.data is 0..1) is an empty file
	switch x.MediaType() {
	case "application/fhir+json", "application/json":
		f.Format = "Binary"
		bin = newBinaryStream(body)
		var err error
		if found, err = bin.untilData(); err != nil {
			return f, binaryViolation(x, err)
		}
		body = bytes.NewReader(nil)
		if found {
			body = bin.dataReader()
		}
	case NDJSON:
	default: // application/ndjson and application/x-ndjson too: BDA2's NDJSON file "SHALL" be application/fhir+ndjson
		return f, Violationf("", "Content-Type of output file "+item.URL, NDJSON+", or a FHIR Binary as application/fhir+json", "%q", x.Header.Get("Content-Type"))
	}
	n, strict, err := judgeLines(item, body, fc, &f.FHIRGaps, &f.ModifiedAfter)
	f.Resources, f.Strict = n, strict
	if err != nil {
		var v *Violation
		if bin != nil && !errors.As(err, &v) {
			return f, binaryViolation(x, err)
		}
		return f, err
	}
	if bin != nil {
		if found { // else untilData read the object to its end already
			if err := bin.afterData(); err != nil {
				return f, binaryViolation(x, err)
			}
		}
		if err := checkBinaryMembers(x, bin.members, fc.JobID); err != nil {
			return f, err
		}
		if !found {
			if err := checkDataNotExternalized(x, bin.members); err != nil {
				return f, err
			}
		}
	}
	if item.Count != nil && *item.Count != int64(f.Resources) {
		return f, Violationf("", "output file "+item.URL, fmt.Sprintf("%d resources, as the manifest's count says", *item.Count), "%d", f.Resources)
	}
	return f, nil
}

func binaryViolation(x *Exchange, err error) error {
	var v *Violation
	if errors.As(err, &v) {
		return err
	}
	if errors.Is(err, ErrTransport) || !errors.Is(err, errBinarySyntax) && !isBase64Error(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("reading output file %s: %w", x.URL, err) // the transport's error, not the server's JSON
	}
	return Violationf("", "body of "+x.Method+" "+x.URL, "a FHIR Binary resource in JSON", "invalid JSON or base64 data: %v", err)
}

func isBase64Error(err error) bool {
	var c base64.CorruptInputError
	return errors.As(err, &c)
}

// ExtBulkExportJobID is the meta extension by which HAPI FHIR, and so FUT, names the export job of a bulk
// export Binary (FUT's GET_Binary_export.md: valueString, the job id).
const ExtBulkExportJobID = "https://hapifhir.org/NamingSystem/bulk-export-job-id"

// ExtExternalizedBinaryID is the extension by which HAPI FHIR's externalized binary storage marks a Binary's
// data element whose bytes it kept in its binary store and did not put back into the resource it shows
// (HapiExtensions.EXT_EXTERNALIZED_BINARY_ID: BinaryAccessProvider.replaceDataWithExtension; a read re-inflates
// the data only below autoInflateBinariesMaximumBytes, 10 MB by default, BinaryStorageInterceptor.preShow).
const ExtExternalizedBinaryID = "http://hapifhir.io/fhir/StructureDefinition/externalized-binary-id"

// checkBinaryMembers holds the small members of a streamed Binary to what DecodeBinary asks of a whole one,
// and, with jobID, its bulk-export-job-id extension, where it has one, to that job.
func checkBinaryMembers(x *Exchange, members map[string]json.RawMessage, jobID string) error {
	var rt, ct string
	for name, dst := range map[string]*string{"resourceType": &rt, "contentType": &ct} {
		if raw, ok := members[name]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, dst); err != nil {
				return Violationf("", "body of "+x.Method+" "+x.URL, "a FHIR Binary resource in JSON", "invalid JSON or base64 data: %s is %.40s", name, raw)
			}
		}
	}
	if rt != "Binary" {
		return Violationf("", "body of "+x.Method+" "+x.URL, `resourceType "Binary"`, "%q", rt)
	}
	if ct == "" {
		return Violationf("", "Binary.contentType", "a media type (Binary.contentType is 1..1 in FHIR R4)", "none")
	}
	// The Binary's contentType is the media type of the file it holds, which is NDJSON: a client that asks for
	// the file itself gets it with that Content-Type (HAPI serves a Binary's content so), and BDA2 says an NDJSON
	// file's "SHALL be application/fhir+ndjson", as FUT's files are (GET_Binary_export.md).
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != NDJSON {
		return Violationf("", "Binary.contentType of output file "+x.URL, NDJSON+": the media type of the NDJSON file the Binary holds (BDA2: an NDJSON file SHALL be "+NDJSON+"; FUT's export Binaries)", "%q", ct)
	}
	if jobID == "" {
		return nil
	}
	var meta struct {
		Extension []struct {
			URL         string `json:"url"`
			ValueString string `json:"valueString"`
		} `json:"extension"`
	}
	if raw, ok := members["meta"]; ok && json.Unmarshal(raw, &meta) == nil {
		for _, e := range meta.Extension {
			if e.URL == ExtBulkExportJobID && e.ValueString != jobID {
				return Violationf("", "Binary.meta extension bulk-export-job-id of output file "+x.URL, "job "+jobID+": the export whose manifest lists the file (its polling location's _jobId)", "%q: a file of another export job", e.ValueString)
			}
		}
	}
	return nil
}

// checkDataNotExternalized holds a Binary without data to being an empty file: R4's Binary.data is 0..1, but a
// data element that carries HAPI's externalized-binary-id extension (members["_data"]) says the bytes exist
// and were kept in the server's binary store instead of being sent (HAPI shows them again only below its
// auto-inflate limit, 10 MB by default). The file the manifest lists is then not at its URL: BDA2 "Complete
// Status" (the files "SHALL be accessible to the client at the URLs advertised"), and FUT's files are Binaries
// read by a plain GET (GET_Binary_export.md).
func checkDataNotExternalized(x *Exchange, members map[string]json.RawMessage) error {
	raw, ok := members["_data"]
	if !ok {
		return nil
	}
	var data struct {
		Extension []struct {
			URL         string `json:"url"`
			ValueString string `json:"valueString"`
		} `json:"extension"`
	}
	if json.Unmarshal(raw, &data) != nil {
		return nil
	}
	for _, e := range data.Extension {
		if e.URL == ExtExternalizedBinaryID {
			return Violationf("", subjectDataExternalized+x.URL,
				"the file's NDJSON in the Binary's data (BDA2 \"Complete Status\": the files SHALL be accessible to the client at the URLs advertised)",
				"no data: HAPI's extension %s (blob %q) says the server kept the bytes in its externalized binary storage and did not send them (HAPI re-inflates a Binary it shows only below autoInflateBinariesMaximumBytes, 10 MB by default)",
				ExtExternalizedBinaryID, e.ValueString)
		}
	}
	return nil
}

// subjectDataExternalized begins the subject of checkDataNotExternalized's violation, and of no other.
const subjectDataExternalized = "Binary.data of output file "

// IsDataExternalized tells the violation of a Binary whose data HAPI kept in its binary store
// (checkDataNotExternalized) from every other verdict on an output file.
func IsDataExternalized(err error) bool {
	var v *Violation
	return errors.As(err, &v) && strings.HasPrefix(v.Subject, subjectDataExternalized)
}

// chunk is a run of whole lines of the file, the first being line first.
type chunk struct {
	buf   []byte
	first int
}

const chunkSize = 256 << 10

var chunks sync.Pool

func getChunk() []byte {
	if b, ok := chunks.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, chunkSize)
}

func putChunk(b []byte) { chunks.Put(&b) }

// judgeLines reads body in chunks of whole lines and judges them on fc.Workers goroutines; the first failing
// line (the lowest number) is reported. Memory: about (2 × workers + 1) chunks.
func judgeLines(item ManifestItem, body io.Reader, fc FileCheck, gaps *FHIRGapLines, modified *ModifiedAfter) (resources, strict int, err error) {
	workers := fc.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	maxLine := cmpOr(fc.MaxLine, DefaultMaxLine)
	newFHIR := fc.FHIR
	if newFHIR == nil {
		newFHIR = NewFHIRDecoder // 60 ns to make one: one per goroutine and file
	}
	var (
		mu       sync.Mutex
		firstBad = -1
		badErr   error
		wg       sync.WaitGroup
		work     = make(chan chunk, workers)
		free     = make(chan []byte, 2*workers+1)
		stop     = make(chan struct{})
		stopOnce sync.Once
	)
	for range cap(free) {
		free <- getChunk()
	}
	defer func() { // the buffers back for the next file: the run downloads many at once
		for len(free) > 0 {
			putChunk(<-free)
		}
	}()
	fail := func(line int, err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstBad < 0 || line < firstBad {
			firstBad, badErr = line, err
		}
		stopOnce.Do(func() { close(stop) })
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := lineJudge{item: item, fc: fc}
			for c := range work {
				n, s, line, err := j.judge(c, newFHIR)
				mu.Lock()
				resources, strict = resources+n, strict+s
				mu.Unlock()
				if err != nil {
					fail(line, err)
				}
				if cap(c.buf) == chunkSize {
					free <- c.buf[:chunkSize]
				}
			}
			mu.Lock()
			gaps.merge(j.gaps)
			modified.merge(j.modified)
			mu.Unlock()
		}()
	}

	readErr := splitChunks(body, maxLine, item, free, work, stop)
	close(work)
	wg.Wait()
	switch {
	case badErr != nil:
		return resources, strict, badErr
	case readErr != nil:
		return resources, strict, readErr
	}
	return resources, strict, nil
}

// splitChunks fills buffers from body and sends each run of whole lines to work until the body ends, a
// judge stops the file, or a line is longer than maxLine.
func splitChunks(body io.Reader, maxLine int, item ManifestItem, free chan []byte, work chan<- chunk, stop <-chan struct{}) error {
	var carry []byte
	line := 1
	for {
		var buf []byte
		select {
		case buf = <-free:
		case <-stop:
			return nil
		}
		if len(carry) > len(buf)/2 { // a long line: a buffer of its own, freed by the collector
			if len(carry) >= maxLine {
				return Violationf("", fmt.Sprintf("output file %s line %d", item.URL, line), fmt.Sprintf("a line of at most %d bytes", maxLine), "a longer line")
			}
			free <- buf
			buf = make([]byte, 2*len(carry))
		}
		n := copy(buf, carry)
		m, err := fill(body, buf[n:])
		n += m
		end := n
		if err != io.EOF { // a body that fails ends inside a line: only its whole lines are judged
			end = bytes.LastIndexByte(buf[:n], '\n') + 1
		}
		carry = append(carry[:0], buf[end:n]...)
		if end > 0 {
			select {
			case work <- chunk{buf: buf[:end], first: line}:
			case <-stop:
				return nil
			}
			line += bytes.Count(buf[:end], []byte{'\n'})
		} else if cap(buf) == chunkSize {
			free <- buf
		}
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, ErrNonConformant): // the server's bytes, e.g. a broken content coding
			return err
		case err != nil:
			return fmt.Errorf("reading output file %s after line %d: %w", item.URL, line-1, err)
		}
	}
}

// fill reads until p is full (nil) or the body ends (io.EOF) or fails. Unlike io.ReadFull it passes on the
// body's own io.ErrUnexpectedEOF: a base64 stream cut inside a quantum, or a body shorter than announced.
func fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// lineJudge judges the lines of chunks; one per goroutine, with its own strict decoder.
type lineJudge struct {
	item ManifestItem
	fc   FileCheck
	fhir LineDecoder
	scan jsonScan // the validator's state, reused from line to line
	// skip is how many more lines of the sample's range to pass before the next one decoded; drawn is whether
	// it was drawn yet. One draw per decoded line (linesBeforeSample), not one per line.
	skip  int
	drawn bool
	gaps  FHIRGapLines // the lines this judge decoded that met a gap of the FHIR library
	// modified: the lines this judge decoded strictly, compared with FileCheck.TransactionTime
	modified ModifiedAfter
}

// judge returns the resources the chunk holds, how many were decoded strictly, and the first failing line.
func (j *lineJudge) judge(c chunk, newFHIR func() LineDecoder) (resources, strict, badLine int, err error) {
	rest := c.buf
	for line := c.first; len(rest) > 0; line++ {
		text := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			text, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		text = bytes.TrimSpace(text)
		if len(text) == 0 {
			continue
		}
		if err := j.line(text, line); err != nil {
			return resources, strict, line, err
		}
		if j.fc.Line != nil {
			if err := j.fc.Line(text); err != nil {
				where, f := fmt.Sprintf("output file %s line %d", j.item.URL, line), &LineFault{}
				if !errors.As(err, &f) {
					f = &LineFault{"a line as the manifest's item says", err.Error()}
				}
				return resources, strict, line, Violationf("", where, f.Expected, "%s", f.Got)
			}
		}
		resources++
		if j.strictly(line) {
			if j.fhir == nil {
				j.fhir = newFHIR()
			}
			judged, err := decodeStrictly(j.item, j.fhir, text, line, &j.gaps)
			if judged {
				strict++
			}
			if err != nil {
				return resources, strict, line, err
			}
			if judged && !j.fc.TransactionTime.IsZero() {
				j.modified.compare(text, line, j.fc.TransactionTime)
			}
		}
	}
	return resources, strict, 0, nil
}

// strictly says whether the line is decoded strictly: one of the first StrictLines, one the type's budget
// still covers, or one the random sample takes.
func (j *lineJudge) strictly(line int) bool {
	if j.fc.StrictLines == AllLines || line <= j.fc.StrictLines {
		return true
	}
	if b := j.fc.TypeLines; b != nil && b.Load() > 0 && b.Add(-1) >= 0 { // once spent, a read per line, no write
		return true
	}
	if j.fc.StrictSample <= 0 {
		return false
	}
	if !j.drawn {
		j.skip, j.drawn = linesBeforeSample(j.fc.StrictSample), true
	}
	if j.skip > 0 {
		j.skip--
		return false
	}
	j.drawn = false
	return true
}

// linesBeforeSample draws how many lines pass before the next one sampled, when each is sampled with
// probability p: the geometric distribution, so that the sample is the same as a draw per line.
func linesBeforeSample(p float64) int {
	if p >= 1 {
		return 0
	}
	n := math.Log(1-rand.Float64()) / math.Log1p(-p) // 1-Float64 is in (0, 1]
	return int(min(n, math.MaxInt32))
}

// decodeStrictly decodes one line strictly as its FHIR type; the violation names the file and the line.
// A line whose only faults were gaps of the FHIR library passes, counted in gaps; judged is false when a
// part of it was left unjudged for one: it was not decoded strictly, only held to its JSON and type.
func decodeStrictly(item ManifestItem, decode LineDecoder, text []byte, line int, gaps *FHIRGapLines) (judged bool, err error) {
	err = decode(text)
	if err == nil {
		return true, nil
	}
	if met := (*gapsMet)(nil); errors.As(err, &met) {
		gaps.add(met)
		return met.unjudged == 0, nil
	}
	return true, Violationf("", fmt.Sprintf("output file %s line %d", item.URL, line), fmt.Sprintf("a valid FHIR R4 %s", item.Type), "%v", err)
}

// line holds one non-blank line to valid JSON and the item's resourceType.
func (j *lineJudge) line(text []byte, line int) error {
	where := func() string { return fmt.Sprintf("output file %s line %d", j.item.URL, line) }
	rt, known, valid := resourceJSON(text, &j.scan)
	if !valid {
		var v any
		err := json.Unmarshal(text, &v)
		return Violationf("", where(), "one FHIR resource in JSON per line", "invalid JSON: %v", err)
	}
	if known {
		if string(rt) == j.item.Type {
			return nil
		}
		return Violationf("", where(), fmt.Sprintf("a %s resource, the manifest's type", j.item.Type), "resourceType %q", rt)
	}
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(text, &r); err != nil {
		return Violationf("", where(), "one FHIR resource in JSON per line", "invalid JSON: %v", err)
	}
	if r.ResourceType != j.item.Type {
		return Violationf("", where(), fmt.Sprintf("a %s resource, the manifest's type", j.item.Type), "resourceType %q", r.ResourceType)
	}
	return nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}
