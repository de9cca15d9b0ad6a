package check

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ArchiveLimits bounds what CheckReportArchive unpacks of a report: a zip may unpack to far more than the
// Binary's size (a zip bomb), and the harness must neither hang nor run out of memory on one. Past a bound,
// what is beyond it is not checked, with the reason: never a failure, since no source bounds a report.
type ArchiveLimits struct {
	Entries    int    // entries (files and directories) in the archive
	EntrySize  uint64 // bytes of one entry, uncompressed
	Ratio      uint64 // uncompressed bytes per compressed byte of one entry
	TotalBytes uint64 // bytes of all entries, uncompressed
}

// ReportArchiveLimits are the bounds of a DONE report's archive.
var ReportArchiveLimits = ArchiveLimits{Entries: 1000, EntrySize: 16 << 20, Ratio: 1000, TotalBytes: 64 << 20}

// CheckReportArchive holds a DONE report's data to what every FUT report OperationDefinition says its output
// is: "in Binary.content … a Base64 encoded .zip file containing JSON files". A zip archive with at least one
// file, each file JSON (RFC 8259, as encoding/json reads it). An error is the deviation; notChecked says, when
// not empty, what was not read because it was past a bound of ReportArchiveLimits (or compressed by a method
// the harness cannot read), and why.
func CheckReportArchive(data []byte) (notChecked string, err error) {
	return checkReportArchive(data, ReportArchiveLimits)
}

func checkReportArchive(data []byte, lim ArchiveLimits) (notChecked string, err error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // a name like ../x is no concern: nothing is written
		return "", fmt.Errorf("not a zip archive: %w", err)
	}
	var files []*zip.File
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return "", fmt.Errorf("a zip archive of no file")
	}
	if len(zr.File) > lim.Entries {
		return fmt.Sprintf("the JSON of the report's files not checked: the archive has %d entries, more than the %d the harness reads", len(zr.File), lim.Entries), nil
	}
	var skipped []string
	var total uint64
	for i, f := range files {
		size, packed := f.UncompressedSize64, f.CompressedSize64
		switch {
		case size > lim.EntrySize:
			skipped = append(skipped, fmt.Sprintf("%q: %d bytes uncompressed, more than the %d the harness reads of one file", f.Name, size, lim.EntrySize))
			continue
		case packed < size && size > lim.Ratio*packed: // no overflow: size is within EntrySize
			skipped = append(skipped, fmt.Sprintf("%q: %d bytes uncompressed from %d, a ratio over the %d:1 the harness reads", f.Name, size, packed, lim.Ratio))
			continue
		case total+size > lim.TotalBytes:
			skipped = append(skipped, fmt.Sprintf("%d files from %q on: past the %d bytes uncompressed the harness reads of one archive", len(files)-i, f.Name, lim.TotalBytes))
			return strings.Join(skipped, "; "), nil
		}
		b, reason, err := readEntry(f, size)
		if err != nil {
			return "", err
		}
		if reason != "" {
			skipped = append(skipped, reason)
			continue
		}
		total += size
		if !validJSON(b) {
			return "", fmt.Errorf("file %q of the archive is not JSON: %d bytes, starting %q", f.Name, len(b), b[:min(len(b), 64)])
		}
	}
	if len(skipped) > 0 {
		return "the JSON of the report's files not checked: " + strings.Join(skipped, "; "), nil
	}
	return "", nil
}

// readEntry reads one entry of at most size bytes, the size its header declares and the bounds allowed: the
// zip reader itself fails an entry that unpacks to more, or less, than its header says, and the read is
// bounded again here. A compression method the reader does not know is a reason not to check it.
func readEntry(f *zip.File, size uint64) (b []byte, notChecked string, err error) {
	rc, err := f.Open()
	if errors.Is(err, zip.ErrAlgorithm) {
		return nil, fmt.Sprintf("%q: compressed by method %d, which the harness cannot unpack", f.Name, f.Method), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("file %q of the archive cannot be read: %w", f.Name, err)
	}
	defer rc.Close()
	b, err = io.ReadAll(io.LimitReader(rc, int64(size)+1))
	if err == nil && uint64(len(b)) > size {
		err = fmt.Errorf("more than the %d bytes its header declares", size)
	}
	if err != nil {
		return nil, "", fmt.Errorf("file %q of the archive cannot be read: %w", f.Name, err)
	}
	return b, "", nil
}
