package refserver

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

//go:embed data/*.ndjson
var embeddedData embed.FS

// resourceTypeRE is what a resource type name in _type or a data file name must match.
var resourceTypeRE = regexp.MustCompile(`^[A-Z][A-Za-z]+$`)

// dataset is the export data: for each resource type, a source that plans its output files and streams them.
// Nothing of the data itself is held in memory, so an export may be of any size: the files of a data
// directory are indexed once and read again on each download, synthetic data is generated on each download.
type dataset struct {
	byType map[string]typeSource
	types  []string // sorted
}

// typeSource is the resources of one type.
type typeSource interface {
	// files plans the output files of an export since `since` (zero: everything), in order, each with its
	// exact resource count; files left empty by `since` are left out.
	files(since time.Time) ([]outputFile, error)
	// write streams one planned file's NDJSON, one resource per line, each line ended by "\n".
	write(w io.Writer, f outputFile) error
}

// outputFile is one planned output file: the chunk-th part of a type's resources, filtered by since.
type outputFile struct {
	typ   string
	chunk int
	since time.Time
	count int
	size  int64 // exact byte size when known without reading (-1: unknown)
}

// loadDataset reads the export data: synthetic (cfg.Synthetic), else every <ResourceType>.ndjson file at the
// root of cfg.Data (nil: the embedded default), split into cfg.FilesPerType files per type.
func loadDataset(cfg Config) (*dataset, error) {
	if cfg.Synthetic.enabled() {
		return syntheticDataset(cfg.Synthetic, cfg.FilesPerType)
	}
	fsys := cfg.Data
	if fsys == nil {
		sub, err := fs.Sub(embeddedData, "data")
		if err != nil {
			return nil, fmt.Errorf("embedded data: %w", err)
		}
		fsys = sub
	}
	names, err := fs.Glob(fsys, "*.ndjson")
	if err != nil {
		return nil, fmt.Errorf("list *.ndjson: %w", err)
	}
	if len(names) == 0 {
		return nil, errors.New("no <ResourceType>.ndjson files found")
	}
	ds := &dataset{byType: make(map[string]typeSource)}
	for _, name := range names {
		typ := strings.TrimSuffix(path.Base(name), ".ndjson")
		if !resourceTypeRE.MatchString(typ) {
			return nil, fmt.Errorf("%s: file name must be <ResourceType>.ndjson", name)
		}
		src, err := indexDataFile(fsys, name, typ, cfg.FilesPerType)
		if err != nil {
			return nil, err
		}
		if len(src.chunks) > 0 {
			ds.byType[typ] = src
			ds.types = append(ds.types, typ)
		}
	}
	sort.Strings(ds.types)
	return ds, nil
}

// dataFile is one <ResourceType>.ndjson file, indexed: it is split into chunks of whole lines at about equal
// byte offsets, and each chunk is read from the file again when it is downloaded.
type dataFile struct {
	fsys   fs.FS
	name   string
	typ    string
	chunks []dataChunk
}

type dataChunk struct {
	off, end int64     // byte range of whole lines in the file
	lines    int       // resources in it
	earliest time.Time // the earliest meta.lastUpdated in it (zero: no line has one)
	// verbatim: every line is exactly a resource and "\n" (no blank lines, no surrounding whitespace, no
	// "\r"), so the byte range is served as it is; lastLF says whether its last line ends with "\n" (only
	// the file's last line may not).
	verbatim bool
	lastLF   bool
}

// indexDataFile reads a data file once, checking every line is a resource of the file's type with an id and,
// if present, a valid meta.lastUpdated, and splits it into at most parts chunks.
func indexDataFile(fsys fs.FS, name, typ string, parts int) (*dataFile, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", name, err)
	}
	if _, ok := f.(io.Seeker); !ok {
		return nil, fmt.Errorf("%s: the data file system must return files that can seek", name)
	}
	if parts < 1 {
		parts = 1
	}
	df := &dataFile{fsys: fsys, name: name, typ: typ}
	size := st.Size()
	lr := newLineReader(f)
	var cur *dataChunk
	var off int64
	blank := false // a blank line since the last resource
	for lineNo := 1; ; lineNo++ {
		raw, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		start := off
		off += int64(len(raw))
		line := bytes.TrimSpace(raw)
		if len(line) == 0 {
			blank = true
			continue
		}
		// A new chunk starts at the first line at or past the next of parts equal byte offsets.
		switch {
		case cur == nil || len(df.chunks) < parts && start >= size*int64(len(df.chunks))/int64(parts):
			df.chunks = append(df.chunks, dataChunk{off: start, verbatim: true})
			cur = &df.chunks[len(df.chunks)-1]
		case blank:
			cur.verbatim = false
		}
		blank = false
		updated, err := checkDataLine(typ, line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, lineNo, err)
		}
		cur.lines++
		cur.end = off
		cur.lastLF = raw[len(raw)-1] == '\n'
		if len(raw) != len(line) && !(len(raw) == len(line)+1 && cur.lastLF) {
			cur.verbatim = false
		}
		if !updated.IsZero() && (cur.earliest.IsZero() || updated.Before(cur.earliest)) {
			cur.earliest = updated
		}
	}
	return df, nil
}

// checkDataLine checks one line is a resource of type typ with an id, and returns its meta.lastUpdated
// (zero when it has none).
func checkDataLine(typ string, line []byte) (time.Time, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return time.Time{}, fmt.Errorf("not a JSON resource: %w", err)
	}
	if head.ResourceType != typ {
		return time.Time{}, fmt.Errorf("resourceType %q does not match the file's type %q", head.ResourceType, typ)
	}
	if head.ID == "" {
		return time.Time{}, errors.New("resource has no id")
	}
	if head.Meta.LastUpdated == "" {
		return time.Time{}, nil
	}
	t, err := parseInstant(head.Meta.LastUpdated)
	if err != nil {
		return time.Time{}, fmt.Errorf("meta.lastUpdated: %w", err)
	}
	return t, nil
}

// keepsAll reports whether since filters out no line of c: resources without meta.lastUpdated are always kept.
func (c dataChunk) keepsAll(since time.Time) bool {
	return since.IsZero() || c.earliest.IsZero() || since.Before(c.earliest)
}

func (df *dataFile) files(since time.Time) ([]outputFile, error) {
	var out []outputFile
	for i, c := range df.chunks {
		f := outputFile{typ: df.typ, chunk: i, since: since, count: c.lines, size: -1}
		if !c.keepsAll(since) {
			n, err := df.countSince(c, since)
			if err != nil {
				return nil, err
			}
			f.count = n
		} else if c.verbatim {
			f.size = c.end - c.off
			if !c.lastLF {
				f.size++
			}
		}
		if f.count > 0 {
			out = append(out, f)
		}
	}
	return out, nil
}

// countSince counts the lines of c a since filter keeps, reading the chunk.
func (df *dataFile) countSince(c dataChunk, since time.Time) (int, error) {
	n := 0
	err := df.eachLine(c, func(line []byte) error {
		keep, err := keptSince(df.typ, line, since)
		if keep {
			n++
		}
		return err
	})
	return n, err
}

func (df *dataFile) write(w io.Writer, f outputFile) error {
	c := df.chunks[f.chunk]
	if c.keepsAll(f.since) && c.verbatim {
		file, err := df.openAt(c.off)
		if err != nil {
			return err
		}
		defer file.Close()
		// A plain io.Copy lets net/http hand an *os.File to sendfile.
		if _, err := io.Copy(w, io.LimitReader(file, c.end-c.off)); err != nil {
			return err
		}
		if !c.lastLF {
			_, err = w.Write([]byte{'\n'})
		}
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	err := df.eachLine(c, func(line []byte) error {
		if !c.keepsAll(f.since) {
			keep, err := keptSince(df.typ, line, f.since)
			if err != nil || !keep {
				return err
			}
		}
		bw.Write(line)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return err
	}
	return bw.Flush()
}

// keptSince reports whether a line's resource was updated after since (or carries no meta.lastUpdated).
func keptSince(typ string, line []byte, since time.Time) (bool, error) {
	updated, err := checkDataLine(typ, line)
	if err != nil {
		return false, err
	}
	return updated.IsZero() || updated.After(since), nil
}

// eachLine calls fn with every non-blank line of c, trimmed.
func (df *dataFile) eachLine(c dataChunk, fn func([]byte) error) error {
	file, err := df.openAt(c.off)
	if err != nil {
		return err
	}
	defer file.Close()
	lr := newLineReader(io.LimitReader(file, c.end-c.off))
	for {
		raw, err := lr.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if line := bytes.TrimSpace(raw); len(line) > 0 {
			if err := fn(line); err != nil {
				return err
			}
		}
	}
}

// openAt opens the data file positioned at off.
func (df *dataFile) openAt(off int64) (fs.File, error) {
	f, err := df.fsys.Open(df.name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", df.name, err)
	}
	if _, err := f.(io.Seeker).Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek %s: %w", df.name, err)
	}
	return f, nil
}

// lineReader reads lines of any length, each with its "\n" if it has one; the slice is valid until the next
// call.
type lineReader struct {
	br   *bufio.Reader
	long []byte
}

func newLineReader(r io.Reader) *lineReader { return &lineReader{br: bufio.NewReaderSize(r, 256<<10)} }

func (lr *lineReader) next() ([]byte, error) {
	line, err := lr.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			err = nil
		}
		return line, err
	}
	lr.long = append(lr.long[:0], line...)
	for err == bufio.ErrBufferFull {
		line, err = lr.br.ReadSlice('\n')
		lr.long = append(lr.long, line...)
	}
	if err == io.EOF {
		err = nil
	}
	return lr.long, err
}

// instantRE is the FHIR R4 instant regex.
var instantRE = regexp.MustCompile(`^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]{1,9})?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)

// parseInstant parses a FHIR instant (full date, time and offset).
func parseInstant(s string) (time.Time, error) {
	if !instantRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("%q is not a FHIR instant (e.g. 2024-01-02T03:04:05.000+00:00)", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a valid FHIR instant: %v", s, err)
	}
	return t, nil
}
