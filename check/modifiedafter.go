package check

import (
	"encoding/json"
	"fmt"
	"time"
)

// ModifiedAfter is what comparing an output file's lines decoded strictly with the manifest's
// transactionTime found. BDA2 "Complete Status": transactionTime "Indicates the server's time when the query
// is run. The response SHOULD NOT include any resources modified after this instant". Only the lines decoded
// strictly are read (FileCheck's sample), so a deviation in few lines of a large file may be missed.
type ModifiedAfter struct {
	Compared int             // lines decoded strictly that carry a meta.lastUpdated, compared
	Lines    int             // of them, later than transactionTime by more than TransactionTimeSkew
	First    LastUpdatedLine // the first of those lines, by number
}

// LastUpdatedLine is one line of an output file with its resource's meta.lastUpdated as the server wrote it.
type LastUpdatedLine struct {
	Line        int
	Type, ID    string
	LastUpdated string
	Later       time.Duration // how much later than transactionTime
}

// String names the line's resource as FHIR references it, Type/id, or its type alone without an id.
func (l LastUpdatedLine) String() string {
	if l.ID == "" {
		return fmt.Sprintf("line %d (a %s without id)", l.Line, l.Type)
	}
	return fmt.Sprintf("line %d (%s/%s)", l.Line, l.Type, l.ID)
}

// compare reads one line's meta.lastUpdated, a line already decoded strictly, and counts it when it is later
// than tt by more than TransactionTimeSkew: lastUpdated and transactionTime may come from different nodes of
// one server, as the manifest's Date and transactionTime may. A line without meta.lastUpdated is not judged.
// A small Unmarshal of a line that costs a hundred times more to decode strictly: never on the other lines.
func (m *ModifiedAfter) compare(text []byte, line int, tt time.Time) {
	var r struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		Meta         struct {
			LastUpdated string `json:"lastUpdated"`
		} `json:"meta"`
	}
	if json.Unmarshal(text, &r) != nil || r.Meta.LastUpdated == "" {
		return
	}
	at, err := ParseFHIRInstant(r.Meta.LastUpdated)
	if err != nil { // the strict decoding judged its form
		return
	}
	m.Compared++
	if !at.After(tt.Add(TransactionTimeSkew)) {
		return
	}
	m.Lines++
	if m.Lines == 1 || line < m.First.Line {
		m.First = LastUpdatedLine{Line: line, Type: r.ResourceType, ID: r.ID, LastUpdated: r.Meta.LastUpdated, Later: at.Sub(tt)}
	}
}

// merge adds another judge's findings of the same file.
func (m *ModifiedAfter) merge(o ModifiedAfter) {
	if o.Lines > 0 && (m.Lines == 0 || o.First.Line < m.First.Line) {
		m.First = o.First
	}
	m.Compared += o.Compared
	m.Lines += o.Lines
}
