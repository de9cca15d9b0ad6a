package refserver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
)

var (
	acceptNDJSON = map[string]string{"Accept": "application/fhir+ndjson"}
	acceptBinary = map[string]string{"Accept": "application/fhir+json"}
)

// completedManifest kicks off an export, lets it complete and returns its manifest.
func (e *env) completedManifest(query string) testManifest {
	e.t.Helper()
	poll := e.kickoff(tokenA, query)
	e.clock.Advance(DefaultExportDuration)
	m, _ := e.manifest(poll, tokenA)
	return m
}

// download reads an output file in one form: raw NDJSON, or the NDJSON decoded from a Binary's base64 data.
func (e *env) download(fileURL string, binaryForm bool) []byte {
	e.t.Helper()
	h := acceptNDJSON
	if binaryForm {
		h = acceptBinary
	}
	r := e.do(req{method: http.MethodGet, url: fileURL, token: tokenA, headers: h})
	wantStatus(e.t, r, http.StatusOK)
	if !binaryForm {
		if ct := r.header.Get("Content-Type"); ct != contentTypeNDJSON {
			e.t.Fatalf("%s: Content-Type %q, want %s", fileURL, ct, contentTypeNDJSON)
		}
		if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
			e.t.Fatalf("%s: Content-Length %s, body of %d bytes", fileURL, cl, len(r.body))
		}
		return r.body
	}
	if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
		e.t.Fatalf("%s: Content-Length %s, Binary of %d bytes", fileURL, cl, len(r.body))
	}
	var res struct {
		ResourceType string `json:"resourceType"`
		ContentType  string `json:"contentType"`
		Data         string `json:"data"`
	}
	decodeJSON(e.t, r.body, &res)
	if res.ResourceType != "Binary" || res.ContentType != contentTypeNDJSON {
		e.t.Fatalf("%s: expected a Binary of %s, got %.200s", fileURL, contentTypeNDJSON, r.body)
	}
	data, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		e.t.Fatalf("%s: data is not standard base64: %v", fileURL, err)
	}
	return data
}

// checkNDJSON checks every line is a strictly valid FHIR R4 resource of typ (golang-fhir-models, unknown
// elements rejected) with an id not seen before, and returns the number of lines.
func checkNDJSON(t *testing.T, name, typ string, data []byte, ids map[string]bool) int {
	t.Helper()
	if len(data) == 0 || data[len(data)-1] != '\n' {
		t.Fatalf("%s: expected NDJSON ending with a newline", name)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		n++
		var m map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s line %d: not JSON: %v", name, n, err)
		}
		var rt, id string
		_ = json.Unmarshal(m["resourceType"], &rt)
		_ = json.Unmarshal(m["id"], &id)
		if rt != typ || id == "" || ids[id] {
			t.Fatalf("%s line %d: expected a %s with a new id, got resourceType %q id %q", name, n, typ, rt, id)
		}
		ids[id] = true
		delete(m, "resourceType") // golang-fhir-models' structs have no resourceType field
		rest, _ := json.Marshal(m)
		var target any
		switch typ {
		case "Patient":
			target = new(fhir.Patient)
		case "Observation":
			target = new(fhir.Observation)
		case "CarePlan":
			target = new(fhir.CarePlan)
		default:
			t.Fatalf("no model for %s", typ)
		}
		dec := json.NewDecoder(bytes.NewReader(rest))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			t.Fatalf("%s line %d: not a valid R4 %s: %v\n%s", name, n, typ, err, sc.Bytes())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// A synthetic export of a few MB, split into files: every line a valid resource of its file's type, every
// manifest count exact, the same bytes as raw NDJSON and inside a Binary.
func TestSyntheticExportStreamsExactFilesInBothForms(t *testing.T) {
	const size = 3 << 20
	e := newEnv(t, Config{Profile: ProfileBulkData, Synthetic: Synthetic{Bytes: size, Seed: 42}, FilesPerType: 3}) // bulkdata: its manifest counts
	m := e.completedManifest("")
	files := map[string]int{}
	var total int
	ids := map[string]bool{}
	for _, o := range m.Output {
		files[o.Type]++
		raw := e.download(o.URL, false)
		total += len(raw)
		if n := checkNDJSON(t, o.URL, o.Type, raw, ids); n != o.count(t) {
			t.Errorf("%s: manifest count %d, file has %d lines", o.URL, o.count(t), n)
		}
		if bin := e.download(o.URL, true); !bytes.Equal(bin, raw) {
			t.Errorf("%s: the Binary's data (%d bytes) differs from the NDJSON (%d bytes)", o.URL, len(bin), len(raw))
		}
	}
	for _, typ := range SyntheticTypes {
		if files[typ] != 3 {
			t.Errorf("%s: expected 3 files, got %d", typ, files[typ])
		}
	}
	if total < size*8/10 || total > size*12/10 {
		t.Errorf("export of %d bytes, asked for about %d", total, size)
	}
}

// The same seed gives the same bytes; another seed other content with the same counts.
func TestSyntheticDataIsDeterministic(t *testing.T) {
	get := func(seed int64) ([]byte, int) {
		e := newEnv(t, Config{Profile: ProfileBulkData, Synthetic: Synthetic{Resources: 500, Types: []string{"Patient"}, Seed: seed}})
		m := e.completedManifest("")
		if len(m.Output) != 1 {
			t.Fatalf("expected one file, got %+v", m.Output)
		}
		return e.download(m.Output[0].URL, false), m.Output[0].count(t)
	}
	a, na := get(1)
	b, nb := get(1)
	c, nc := get(2)
	if !bytes.Equal(a, b) {
		t.Error("seed 1 twice: different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("seeds 1 and 2: the same bytes")
	}
	if na != 500 || nb != 500 || nc != 500 {
		t.Errorf("counts %d %d %d, want 500", na, nb, nc)
	}
}

// _since keeps exactly the resources updated after it: synthetic resource i was updated i seconds after
// syntheticEpoch.
func TestSyntheticSinceCountsExactly(t *testing.T) {
	e := newEnv(t, Config{Profile: ProfileBulkData, Synthetic: Synthetic{Resources: 1000, Types: []string{"Observation"}}, FilesPerType: 4})
	since := syntheticEpoch.Add(299*time.Second + 500*time.Millisecond) // keeps 300..999
	m := e.completedManifest("?_since=" + url.QueryEscape(since.Format(time.RFC3339Nano)))
	sum := 0
	for _, o := range m.Output {
		sum += o.count(t)
		if n := checkNDJSON(t, o.URL, "Observation", e.download(o.URL, false), map[string]bool{}); n != o.count(t) {
			t.Errorf("%s: count %d, %d lines", o.URL, o.count(t), n)
		}
	}
	if sum != 700 || len(m.Output) != 3 { // the first quarter (0..249) is left out whole
		t.Errorf("expected 700 resources in 3 files, got %d in %d", sum, len(m.Output))
	}
	if m := e.completedManifest("?_since=" + url.QueryEscape("2030-01-01T00:00:00Z")); len(m.Output) != 0 {
		t.Errorf("a _since after every resource: expected no file, got %+v", m.Output)
	}
}

// Data files are split at line boundaries and streamed from the file system; blank lines, CRLF and a last
// line without a newline are served as clean NDJSON, and the counts are exact with and without _since.
func TestDataFilesAreSplitAndStreamed(t *testing.T) {
	var src strings.Builder
	for i := range 40 {
		year := 2020 + i%6
		fmt.Fprintf(&src, `{"resourceType":"Patient","id":"p%d","meta":{"lastUpdated":"%d-01-01T00:00:00.000+00:00"}}`, i, year)
		switch i {
		case 5:
			src.WriteString("\r\n\n")
		case 39:
		default:
			src.WriteString("\n")
		}
	}
	for _, dir := range []string{"", t.TempDir()} {
		var fsys fstest.MapFS
		cfg := Config{Profile: ProfileBulkData, FilesPerType: 4} // bulkdata: its manifest counts
		if dir == "" {
			fsys = fstest.MapFS{"Patient.ndjson": {Data: []byte(src.String())}}
			cfg.Data = fsys
		} else {
			if err := os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte(src.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.Data = os.DirFS(dir)
		}
		e := newEnv(t, cfg)
		for _, tc := range []struct {
			since string
			want  int
		}{{"", 40}, {"?_since=2023-06-01T00:00:00Z", 12}} { // years 2024 and 2025: i%6 in {4,5}, 12 of 40
			m := e.completedManifest(tc.since)
			var all []byte
			sum := 0
			for _, o := range m.Output {
				raw := e.download(o.URL, false)
				if n := checkNDJSON(t, o.URL, "Patient", raw, map[string]bool{}); n != o.count(t) {
					t.Errorf("%q %s: count %d, %d lines", dir, o.URL, o.count(t), n)
				}
				sum += o.count(t)
				all = append(all, raw...)
				if bin := e.download(o.URL, true); !bytes.Equal(bin, raw) {
					t.Errorf("%q %s: the Binary's data differs from the NDJSON", dir, o.URL)
				}
			}
			if tc.since == "" { // the last file's lines are clean: served verbatim, with its length known
				last := m.Output[len(m.Output)-1].URL
				for _, h := range []map[string]string{acceptNDJSON, acceptBinary} {
					if r := e.do(req{method: http.MethodGet, url: last, token: tokenA, headers: h}); r.header.Get("Content-Length") == "" {
						t.Errorf("%q %s %v: no Content-Length", dir, last, h)
					}
				}
			}
			if sum != tc.want {
				t.Errorf("dir %q since %q: %d resources, want %d", dir, tc.since, sum, tc.want)
			}
			if tc.since == "" {
				if len(m.Output) != 4 {
					t.Errorf("dir %q: expected 4 files, got %d", dir, len(m.Output))
				}
				want := strings.ReplaceAll(strings.ReplaceAll(src.String(), "\r\n\n", "\n"), "\n\n", "\n") + "\n"
				if string(all) != want {
					t.Errorf("dir %q: the files together are not the data file's lines:\n%s", dir, all)
				}
			}
		}
	}
}

// The output-bad-last-line fault cuts the last line of every file short, in both forms; the others stay valid.
func TestBadLastLineFault(t *testing.T) {
	e := newEnv(t, Config{Synthetic: Synthetic{Resources: 50, Types: []string{"Patient"}}, Faults: []string{string(faultOutputBadLastLine)}})
	m := e.completedManifest("")
	for _, binaryForm := range []bool{false, true} {
		data := e.download(m.Output[0].URL, binaryForm)
		lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
		if len(lines) != 50 {
			t.Fatalf("binary %t: %d lines, want 50", binaryForm, len(lines))
		}
		for i, l := range lines {
			if valid := json.Valid([]byte(l)); valid != (i < 49) {
				t.Errorf("binary %t line %d: valid JSON %t", binaryForm, i+1, valid)
			}
		}
	}
}

func TestSyntheticConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"negative":       {Synthetic: Synthetic{Bytes: -1}},
		"bytes and n":    {Synthetic: Synthetic{Bytes: 10, Resources: 10}},
		"unknown type":   {Synthetic: Synthetic{Bytes: 10, Types: []string{"Encounter"}}},
		"types only":     {Synthetic: Synthetic{Types: []string{"Patient"}}},
		"data and synth": {Synthetic: Synthetic{Bytes: 10}, Data: fstest.MapFS{}},
		"files negative": {FilesPerType: -2},
	} {
		if _, err := NewServer(cfg); err == nil {
			t.Errorf("%s: expected an error", name)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "500MB": 500e6, "1048576": 1 << 20, "1.5KiB": 1536, "3 MiB": 3 << 20} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "big", "-1MB", "1TB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): expected an error", in)
		}
	}
}

// Serving throughput of one synthetic output file of 256 MiB over loopback, read to a discard, as raw NDJSON
// and as a Binary (base64 encoded while written). SetBytes makes `go test -bench` print MB/s of the NDJSON.
func BenchmarkServeSyntheticFile(b *testing.B) {
	clk := newManualClock()
	srv, err := NewServer(Config{Clock: clk, Synthetic: Synthetic{Bytes: 256 << 20, Types: []string{"Patient"}}})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	get := func(u string, h map[string]string) *http.Response {
		r, _ := http.NewRequest(http.MethodGet, u, nil)
		r.Header.Set("Authorization", "Bearer "+DemoTokenA)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		resp, err := ts.Client().Do(r)
		if err != nil {
			b.Fatal(err)
		}
		return resp
	}
	kick := get(ts.URL+"/fhir/$export", asyncHdr)
	kick.Body.Close()
	clk.Advance(DefaultExportDuration)
	resp := get(kick.Header.Get("Content-Location"), nil)
	var m testManifest
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || len(m.Output) != 1 {
		b.Fatalf("manifest: %v %+v", err, m)
	}
	resp.Body.Close()
	fileURL := m.Output[0].URL
	size, err := io.Copy(io.Discard, get(fileURL, acceptNDJSON).Body)
	if err != nil {
		b.Fatal(err)
	}
	for _, form := range []struct {
		name   string
		accept map[string]string
	}{{"ndjson", acceptNDJSON}, {"binary", acceptBinary}} {
		b.Run(form.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				resp := get(fileURL, form.accept)
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || n < size {
					b.Fatalf("download: status %d, %d of %d bytes, %v", resp.StatusCode, n, size, err)
				}
			}
		})
	}
}

// The generator alone, without HTTP: the ceiling of the synthetic NDJSON throughput.
func BenchmarkSyntheticGenerator(b *testing.B) {
	ds, err := syntheticDataset(Synthetic{Bytes: 64 << 20, Types: []string{"Patient"}}, 1)
	if err != nil {
		b.Fatal(err)
	}
	src := ds.byType["Patient"]
	files, _ := src.files(time.Time{})
	var cw countingWriter
	if err := src.write(&cw, files[0]); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(cw))
	for b.Loop() {
		if err := src.write(io.Discard, files[0]); err != nil {
			b.Fatal(err)
		}
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// Indexing a data file at start (every line checked as a resource of its type): the start-up cost of -data.
func BenchmarkIndexDataFile(b *testing.B) {
	ds, err := syntheticDataset(Synthetic{Bytes: 64 << 20, Types: []string{"Patient"}}, 1)
	if err != nil {
		b.Fatal(err)
	}
	files, _ := ds.byType["Patient"].files(time.Time{})
	var buf bytes.Buffer
	if err := ds.byType["Patient"].write(&buf, files[0]); err != nil {
		b.Fatal(err)
	}
	fsys := fstest.MapFS{"Patient.ndjson": {Data: buf.Bytes()}}
	b.SetBytes(int64(buf.Len()))
	for b.Loop() {
		if _, err := indexDataFile(fsys, "Patient.ndjson", "Patient", 4); err != nil {
			b.Fatal(err)
		}
	}
}
