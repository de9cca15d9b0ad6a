// Package features holds the Gherkin specification of the two operations and the requirements table that every
// scenario tag points into. Both are embedded so that the conformance binary runs from anywhere.
package features

import (
	"bufio"
	"bytes"
	"embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// FS holds the feature files at its root, as godog's Options.FS expects them.
//
//go:embed *.feature REQUIREMENTS.md PROFILES.md
var FS embed.FS

// Severity says what a deviation does to the run. REQUIREMENTS.md gives each requirement's severity;
// PROFILES.md may give it another one in a profile.
type Severity string

const (
	Must   Severity = "MUST"   // a deviation fails the run
	Should Severity = "SHOULD" // a deviation is a warning; STRICT=1 makes it a failure
	May    Severity = "MAY"    // checked and reported as a warning, never failed, not even under STRICT
	// NotApplicable: the requirement does not apply in the profile; its scenarios are reported as not
	// applicable, never failed and never passed. Only a profile's severity can say so.
	NotApplicable Severity = "n/a"
)

func (s Severity) valid() bool { return s == Must || s == Should || s == May || s == NotApplicable }

// Requirement is one row of REQUIREMENTS.md.
type Requirement struct {
	ID       string
	Severity Severity
	Source   string
	Clause   string
}

// Requirements parses the table of REQUIREMENTS.md, keyed by ID: its first table. The tables after it (the
// section "Clause by clause", which traces each clause of the sources to a requirement or says why it is not
// checked) are documentation, not requirements.
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
			if inTable { // the first table ends here: what follows is no requirement
				break
			}
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
		if !IsRequirementID(r.ID) {
			return nil, fmt.Errorf("REQUIREMENTS.md line %d: %q is not a requirement ID (upper-case parts joined by '-', e.g. EXP-POLL-202)", line, r.ID)
		}
		if r.Severity != Must && r.Severity != Should && r.Severity != May {
			return nil, fmt.Errorf("REQUIREMENTS.md line %d: severity of %s must be MUST, SHOULD or MAY, got %q", line, r.ID, r.Severity)
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

// Profiles are the sources' differing choices: behaviour → profile → the answers it accepts. Profile names
// are the column headers of PROFILES.md after Behaviour and Requirement (and before Sources).
type Profiles struct {
	Names     []string
	Behaviour map[string]Behaviour
	// Tolerance: tolerance → profile → whether the deviation is accepted (as a known deviation).
	Tolerance map[string]map[string]bool
	// Severity: requirement ID → profile → its severity there, for the requirements whose severity differs
	// between profiles; every other requirement has the severity of REQUIREMENTS.md in every profile.
	Severity map[string]map[string]Severity
}

// SeverityOf is requirement r's severity in profile: its row in PROFILES.md's severity table, else its
// severity in REQUIREMENTS.md.
func (p Profiles) SeverityOf(r Requirement, profile string) Severity {
	if s, ok := p.Severity[r.ID][profile]; ok {
		return s
	}
	return r.Severity
}

// Behaviour is one row of PROFILES.md.
type Behaviour struct {
	Name        string
	Requirement string
	Answers     map[string][]Answer // by profile; nil: not checked in that profile
}

// Answer is one acceptable response shape.
type Answer struct {
	Status int // the status code; 0 when StatusClass names a class instead
	// StatusClass accepts any status of a class: 4 for "4xx" (400 to 499).
	StatusClass      int
	OperationOutcome bool // a JSON OperationOutcome body is required
	// OperationOutcomeExpected ("+ OperationOutcome (SHOULD)"): an answer without one is accepted with a
	// warning, and fails under STRICT.
	OperationOutcomeExpected bool
	XProgress                bool // a non-empty X-Progress header is required
	KnownDeviation           bool // accepted, and reported among the warnings
	Text                     string
}

// Accepts tells whether status is the answer's status code, or of its class.
func (a Answer) Accepts(status int) bool {
	if a.StatusClass != 0 {
		return status/100 == a.StatusClass
	}
	return status == a.Status
}

// LoadProfiles parses PROFILES.md.
func LoadProfiles() (Profiles, error) {
	raw, err := FS.ReadFile("PROFILES.md")
	if err != nil {
		return Profiles{}, fmt.Errorf("read profiles: %w", err)
	}
	return parseProfiles(raw)
}

func parseProfiles(raw []byte) (Profiles, error) {
	p := Profiles{Behaviour: map[string]Behaviour{}, Tolerance: map[string]map[string]bool{}, Severity: map[string]map[string]Severity{}}
	var header []string
	for n, text := range strings.Split(string(raw), "\n") {
		text = strings.TrimSpace(text)
		if !strings.HasPrefix(text, "|") {
			header = nil // a table ends at the first line that is not a row
			continue
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case header == nil && len(cells) > 2 && (cells[0] == "Tolerance" || cells[0] == "Requirement") && cells[len(cells)-1] == "Sources":
			if !slices.Equal(cells[1:len(cells)-1], p.Names) {
				return p, fmt.Errorf("PROFILES.md line %d: the %s table must name the profiles %v, in that order, after the behaviours", n+1, strings.ToLower(cells[0]), p.Names)
			}
			header = cells
			continue
		case header == nil:
			if len(cells) < 4 || cells[0] != "Behaviour" || cells[1] != "Requirement" || cells[len(cells)-1] != "Sources" || p.Names != nil {
				return p, fmt.Errorf("PROFILES.md line %d: expected the header | Behaviour | Requirement | <profiles...> | Sources |, once, before the tolerances", n+1)
			}
			header, p.Names = cells, cells[2:len(cells)-1]
			continue
		case strings.HasPrefix(cells[0], "---"):
			continue
		case len(cells) != len(header):
			return p, fmt.Errorf("PROFILES.md line %d: expected %d cells, got %d", n+1, len(header), len(cells))
		case header[0] == "Tolerance":
			accepts := map[string]bool{}
			for i, profile := range p.Names {
				switch cells[1+i] {
				case "no":
				case "yes (known deviation)":
					accepts[profile] = true
				default:
					return p, fmt.Errorf("PROFILES.md line %d, %s/%s: expected \"no\" or \"yes (known deviation)\", got %q", n+1, cells[0], profile, cells[1+i])
				}
			}
			p.Tolerance[strings.Trim(cells[0], "`")] = accepts
			continue
		case header[0] == "Requirement":
			id := cells[0]
			if !IsRequirementID(id) {
				return p, fmt.Errorf("PROFILES.md line %d: %q is not a requirement ID", n+1, id)
			}
			if _, dup := p.Severity[id]; dup {
				return p, fmt.Errorf("PROFILES.md line %d: the severity of %s is listed twice", n+1, id)
			}
			bySeverity := map[string]Severity{}
			for i, profile := range p.Names {
				s := Severity(cells[1+i])
				if !s.valid() {
					return p, fmt.Errorf("PROFILES.md line %d, %s/%s: expected MUST, SHOULD, MAY or n/a, got %q", n+1, id, profile, cells[1+i])
				}
				bySeverity[profile] = s
			}
			p.Severity[id] = bySeverity
			continue
		}
		b := Behaviour{Name: strings.Trim(cells[0], "`"), Requirement: cells[1], Answers: map[string][]Answer{}}
		for i, profile := range p.Names {
			answers, err := parseAnswers(cells[2+i])
			if err != nil {
				return p, fmt.Errorf("PROFILES.md line %d, %s/%s: %w", n+1, b.Name, profile, err)
			}
			b.Answers[profile] = answers
		}
		if _, dup := p.Behaviour[b.Name]; dup {
			return p, fmt.Errorf("PROFILES.md line %d: behaviour %s is listed twice", n+1, b.Name)
		}
		p.Behaviour[b.Name] = b
	}
	if len(p.Behaviour) == 0 {
		return p, fmt.Errorf("PROFILES.md: no behaviour rows found")
	}
	return p, nil
}

func parseAnswers(cell string) ([]Answer, error) {
	if cell == "—" || cell == "-" {
		return nil, nil
	}
	var out []Answer
	for _, alt := range strings.Split(cell, " or ") {
		a := Answer{Text: strings.TrimSpace(alt)}
		rest := a.Text
		if r, ok := strings.CutSuffix(rest, "(known deviation)"); ok {
			a.KnownDeviation, rest = true, strings.TrimSpace(r)
		}
		parts := strings.Split(rest, "+")
		if err := a.parseStatus(strings.TrimSpace(parts[0])); err != nil {
			return nil, fmt.Errorf("answer %q: %w", alt, err)
		}
		for _, part := range parts[1:] {
			switch strings.TrimSpace(part) {
			case "OperationOutcome":
				a.OperationOutcome = true
			case "OperationOutcome (SHOULD)":
				a.OperationOutcomeExpected = true
			case "X-Progress":
				a.XProgress = true
			default:
				return nil, fmt.Errorf("answer %q: unknown part %q (OperationOutcome, OperationOutcome (SHOULD) or X-Progress)", alt, strings.TrimSpace(part))
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// parseStatus reads a status code (404) or a class of them (4xx).
func (a *Answer) parseStatus(s string) error {
	if len(s) == 3 && s[1:] == "xx" && '1' <= s[0] && s[0] <= '5' {
		a.StatusClass = int(s[0] - '0')
		return nil
	}
	if n, err := strconv.Atoi(s); err == nil && len(s) == 3 && n >= 100 && n <= 599 {
		a.Status = n
		return nil
	}
	return fmt.Errorf("expected a status code (404) or class (4xx) first, got %q", s)
}
