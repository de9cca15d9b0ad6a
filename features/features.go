// Package features holds the Gherkin specification of the two operations and the requirements table that every
// scenario tag points into. Both are embedded so that the conformance binary runs from anywhere.
package features

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"strings"
)

// FS holds the feature files at its root, as godog's Options.FS expects them.
//
//go:embed *.feature REQUIREMENTS.md
var FS embed.FS

// Severity says whether a deviation fails the run or is reported as a warning.
type Severity string

const (
	Must   Severity = "MUST"
	Should Severity = "SHOULD"
)

// Requirement is one row of REQUIREMENTS.md.
type Requirement struct {
	ID       string
	Severity Severity
	Source   string
	Clause   string
}

// Requirements parses the table of REQUIREMENTS.md, keyed by ID.
func Requirements() (map[string]Requirement, error) {
	raw, err := FS.ReadFile("REQUIREMENTS.md")
	if err != nil {
		return nil, fmt.Errorf("read requirements: %w", err)
	}
	return parseRequirements(raw)
}

func parseRequirements(raw []byte) (map[string]Requirement, error) {
	reqs := map[string]Requirement{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	inTable := false
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(text, "|") {
			inTable = false
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if !inTable { // the header row, then the |---| separator
			inTable = true
			continue
		}
		if strings.HasPrefix(cells[0], "---") {
			continue
		}
		if len(cells) != 4 {
			return nil, fmt.Errorf("REQUIREMENTS.md line %d: expected 4 cells (ID, Severity, Source, Clause), got %d", line, len(cells))
		}
		r := Requirement{ID: cells[0], Severity: Severity(cells[1]), Source: cells[2], Clause: cells[3]}
		if r.Severity != Must && r.Severity != Should {
			return nil, fmt.Errorf("REQUIREMENTS.md line %d: severity of %s must be MUST or SHOULD, got %q", line, r.ID, r.Severity)
		}
		if _, dup := reqs[r.ID]; dup {
			return nil, fmt.Errorf("REQUIREMENTS.md line %d: requirement %s is listed twice", line, r.ID)
		}
		reqs[r.ID] = r
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read requirements: %w", err)
	}
	if len(reqs) == 0 {
		return nil, fmt.Errorf("REQUIREMENTS.md: no requirement rows found")
	}
	return reqs, nil
}
