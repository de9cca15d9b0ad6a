package check

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"hash/crc32"
	"io"
	"strings"
	"testing"
)

// zipEntry is one entry of a test archive: stored (no compression) unless deflate.
type zipEntry struct {
	name    string
	data    []byte
	deflate bool
}

func zipOf(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		method := zip.Store
		if e.deflate {
			method = zip.Deflate
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// jsonOfSize is a JSON object padded with white space to n bytes, which deflates over 1000:1 from 4 MiB on.
func jsonOfSize(n int) []byte { return append(bytes.Repeat([]byte(" "), n-2), "{}"...) }

// jsonStringOfSize is a JSON string of n bytes, quick to validate (a string's end is found by word).
func jsonStringOfSize(n int) []byte {
	b := bytes.Repeat([]byte("a"), n)
	b[0], b[n-1] = '"', '"'
	return b
}

func TestAReportArchiveHoldsJSONFiles(t *testing.T) {
	for name, data := range map[string][]byte{
		"one JSON file":              zipOf(t, zipEntry{name: "report.json", data: []byte(`{"rows":[]}`), deflate: true}),
		"a directory and JSON files": zipOf(t, zipEntry{name: "r/"}, zipEntry{name: "r/a.json", data: []byte(`[1,2]`)}, zipEntry{name: "r/b.json", data: []byte(`"x"`)}),
		"a name outside the archive": zipOf(t, zipEntry{name: "../report.json", data: []byte(`{}`)}),
	} {
		if skipped, err := CheckReportArchive(data); err != nil || skipped != "" {
			t.Errorf("%s: %v, not checked %q; want it to pass", name, err, skipped)
		}
	}
	for name, data := range map[string][]byte{
		"a text file":                   zipOf(t, zipEntry{name: "report.txt", data: []byte("Report generated.")}),
		"an empty file":                 zipOf(t, zipEntry{name: "report.json"}),
		"a CSV after a JSON file":       zipOf(t, zipEntry{name: "a.json", data: []byte(`{}`)}, zipEntry{name: "b.csv", data: []byte("a,b\n1,2\n"), deflate: true}),
		"two JSON values in one file":   zipOf(t, zipEntry{name: "a.ndjson", data: []byte("{}\n{}\n")}),
		"a JSON file cut short":         zipOf(t, zipEntry{name: "a.json", data: []byte(`{"rows":[`)}),
		"a file longer than its header": lyingSize(t),
	} {
		skipped, err := CheckReportArchive(data)
		if err == nil {
			t.Errorf("%s: passed (not checked %q); want an error", name, skipped)
		} else if skipped != "" {
			t.Errorf("%s: an error and not checked %q at once", name, skipped)
		}
	}
}

// lyingSize is a zip whose one entry declares 2 bytes uncompressed and holds 20.
func lyingSize(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	content := []byte(`{"a":"0123456789ab"}`)
	w, err := zw.CreateRaw(&zip.FileHeader{Name: "a.json", Method: zip.Store, CRC32: crc32.ChecksumIEEE(content), CompressedSize64: uint64(len(content)), UncompressedSize64: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(content)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Past a bound, a report is not checked, with the reason, and never failed: not even a file that is no JSON.
func TestAReportArchivePastABoundIsNotChecked(t *testing.T) {
	lim := ReportArchiveLimits
	if lim != (ArchiveLimits{Entries: 1000, EntrySize: 16 << 20, Ratio: 1000, TotalBytes: 64 << 20}) {
		t.Fatalf("ReportArchiveLimits = %+v, not the bounds the README states", lim)
	}
	t.Run("entries", func(t *testing.T) {
		many := make([]zipEntry, lim.Entries+1)
		for i := range many {
			many[i] = zipEntry{name: "r" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + ".json", data: []byte("not JSON")}
		}
		wantNotChecked(t, zipOf(t, many...), "1001 entries, more than the 1000")
		if skipped, err := CheckReportArchive(zipOf(t, many[:lim.Entries]...)); err == nil {
			t.Errorf("1000 entries that are no JSON: passed (not checked %q); want an error", skipped)
		}
	})
	t.Run("entry size", func(t *testing.T) {
		big := zipEntry{name: "big.json", data: jsonOfSize(int(lim.EntrySize) + 1)}
		wantNotChecked(t, zipOf(t, big, zipEntry{name: "small.json", data: []byte(`{}`)}), `"big.json": 16777217 bytes uncompressed, more than the 16777216`)
		// The small file is still read.
		if _, err := CheckReportArchive(zipOf(t, big, zipEntry{name: "small.csv", data: []byte("a,b")})); err == nil {
			t.Error("a CSV beside a file past the size bound: passed; want an error")
		}
		if skipped, err := CheckReportArchive(zipOf(t, zipEntry{name: "edge.json", data: jsonOfSize(int(lim.EntrySize))})); err != nil || skipped != "" {
			t.Errorf("a JSON file of exactly 16 MiB: %v, not checked %q; want it checked and passed", err, skipped)
		}
	})
	t.Run("ratio", func(t *testing.T) {
		// 4 MiB of white space deflates 1026:1.
		wantNotChecked(t, zipOf(t, zipEntry{name: "bomb.json", data: append(jsonOfSize(4<<20-1), 'x'), deflate: true}), `"bomb.json": 4194304 bytes uncompressed from`)
		rows, _ := json.Marshal(make([]int, 1<<18)) // [0,0,…]: 512 KiB, deflating some 500:1
		if skipped, err := CheckReportArchive(zipOf(t, zipEntry{name: "ok.json", data: rows, deflate: true})); err != nil || skipped != "" {
			t.Errorf("JSON deflated under 1000:1: %v, not checked %q; want it checked and passed", err, skipped)
		}
	})
	t.Run("total", func(t *testing.T) {
		var files []zipEntry
		for _, n := range []string{"a", "b", "c", "d"} {
			files = append(files, zipEntry{name: n + ".json", data: jsonStringOfSize(15 << 20)})
		}
		files = append(files, zipEntry{name: "e.json", data: []byte(`{}`), deflate: true}, zipEntry{name: "f.json", data: bytes.Repeat([]byte("x"), 4<<20)}) // no JSON, but past the total
		// a to d (60 MiB) and e are read, f is past the total: 64 MiB.
		wantNotChecked(t, zipOf(t, files...), `1 files from "f.json" on: past the 67108864 bytes`)
		// The same bound, scaled down: up to the total, a file is read and judged; past it, not.
		small := ArchiveLimits{Entries: 10, EntrySize: 10, Ratio: 1000, TotalBytes: 6}
		three := func(last string) []byte {
			return zipOf(t, zipEntry{name: "a.json", data: []byte(`{}`)}, zipEntry{name: "b.json", data: []byte(`[]`)}, zipEntry{name: "c.json", data: []byte(last)})
		}
		if _, err := checkReportArchive(three(`x`), small); err == nil {
			t.Error("a file that is no JSON, ending at the total: passed; want an error")
		}
		if skipped, err := checkReportArchive(three(`xyz`), small); err != nil || !strings.Contains(skipped, `1 files from "c.json" on`) {
			t.Errorf("a file past the total: %v, not checked %q; want it not checked", err, skipped)
		}
	})
	t.Run("method", func(t *testing.T) {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateRaw(&zip.FileHeader{Name: "a.json", Method: 12, CompressedSize64: 3, UncompressedSize64: 2}) // bzip2
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte("BZh"))
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		wantNotChecked(t, buf.Bytes(), "method 12")
	})
}

func wantNotChecked(t *testing.T, data []byte, reason string) {
	t.Helper()
	skipped, err := CheckReportArchive(data)
	if err != nil {
		t.Errorf("%v; want not checked, never an error", err)
	}
	if !strings.Contains(skipped, reason) {
		t.Errorf("not checked %q; want the reason %q", skipped, reason)
	}
}

// An archive passes only if each of its files reads, in full, to JSON: read again here, with archive/zip and
// encoding/json alone. An error and a not-checked never come together, and neither panics nor unpacks past
// the bounds (the fuzzer's own memory limit would catch a read past them).
func FuzzCheckReportArchive(f *testing.F) {
	f.Add(zipOf(f, zipEntry{name: "report.json", data: []byte(`{"rows":[]}`), deflate: true}))
	f.Add(zipOf(f, zipEntry{name: "r/"}, zipEntry{name: "r/a.json", data: []byte(`[1]`)}))
	f.Add(zipOf(f, zipEntry{name: "report.txt", data: []byte("Report generated.")}))
	f.Add(zipOf(f, zipEntry{name: "a.json", data: []byte(`{}`)}, zipEntry{name: "b.json", data: []byte(`{`), deflate: true}))
	f.Add(zipOf(f, zipEntry{name: "bomb.json", data: jsonOfSize(64 << 10), deflate: true}))
	f.Add([]byte("*NOT GENERATED YET*"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		skipped, err := CheckReportArchive(data)
		if err != nil && skipped != "" {
			t.Fatalf("an error (%v) and not checked %q at once", err, skipped)
		}
		if err != nil || skipped != "" {
			return
		}
		zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if zr == nil {
			t.Fatalf("passed, but archive/zip reads no archive: %v", zerr)
		}
		files := 0
		for _, zf := range zr.File {
			if zf.FileInfo().IsDir() {
				continue
			}
			files++
			rc, err := zf.Open()
			if err != nil {
				t.Fatalf("passed, but %q does not open: %v", zf.Name, err)
			}
			b, err := io.ReadAll(io.LimitReader(rc, int64(ReportArchiveLimits.EntrySize)+1))
			rc.Close()
			if err != nil || !json.Valid(b) {
				t.Fatalf("passed, but %q reads %q, %v: no JSON", zf.Name, b[:min(len(b), 64)], err)
			}
		}
		if files == 0 {
			t.Fatal("passed an archive of no file")
		}
	})
}
