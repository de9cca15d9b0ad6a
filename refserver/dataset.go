package refserver

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
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

// dataset is the loaded export data: resources per type, in file order.
type dataset struct {
	byType map[string][]dataResource
	types  []string // sorted
}

type dataResource struct {
	line        []byte // compact JSON, no newline
	lastUpdated time.Time
	hasUpdated  bool
}

// loadDataset reads every <ResourceType>.ndjson file at the root of fsys
// (nil: the embedded default) and checks each line is a resource of that type
// with an id and, if present, a valid meta.lastUpdated.
func loadDataset(fsys fs.FS) (*dataset, error) {
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
	ds := &dataset{byType: make(map[string][]dataResource)}
	for _, name := range names {
		typ := strings.TrimSuffix(path.Base(name), ".ndjson")
		if !resourceTypeRE.MatchString(typ) {
			return nil, fmt.Errorf("%s: file name must be <ResourceType>.ndjson", name)
		}
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		var rs []dataResource
		for i, line := range bytes.Split(raw, []byte("\n")) {
			line = bytes.TrimSpace(line)
			if len(line) == 0 {
				continue
			}
			r, err := parseDataLine(typ, line)
			if err != nil {
				return nil, fmt.Errorf("%s line %d: %w", name, i+1, err)
			}
			rs = append(rs, r)
		}
		if len(rs) > 0 {
			ds.byType[typ] = rs
			ds.types = append(ds.types, typ)
		}
	}
	sort.Strings(ds.types)
	return ds, nil
}

func parseDataLine(typ string, line []byte) (dataResource, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(line, &head); err != nil {
		return dataResource{}, fmt.Errorf("not a JSON resource: %w", err)
	}
	if head.ResourceType != typ {
		return dataResource{}, fmt.Errorf("resourceType %q does not match the file's type %q", head.ResourceType, typ)
	}
	if head.ID == "" {
		return dataResource{}, errors.New("resource has no id")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, line); err != nil {
		return dataResource{}, fmt.Errorf("not a JSON resource: %w", err)
	}
	r := dataResource{line: compact.Bytes()}
	if head.Meta.LastUpdated != "" {
		t, err := parseInstant(head.Meta.LastUpdated)
		if err != nil {
			return dataResource{}, fmt.Errorf("meta.lastUpdated: %w", err)
		}
		r.lastUpdated, r.hasUpdated = t, true
	}
	return r, nil
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

// export returns the NDJSON of one type, filtered by since (zero: no filter),
// and its line count. Resources without meta.lastUpdated are kept.
func (ds *dataset) export(typ string, since time.Time) ([]byte, int) {
	var buf bytes.Buffer
	n := 0
	for _, r := range ds.byType[typ] {
		if !since.IsZero() && r.hasUpdated && !r.lastUpdated.After(since) {
			continue
		}
		buf.Write(r.line)
		buf.WriteByte('\n')
		n++
	}
	return buf.Bytes(), n
}
