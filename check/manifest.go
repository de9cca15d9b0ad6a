package check

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/fixtures"
)

// Manifest is the Bulk Data complete-status body (BDA2 "Complete Status").
type Manifest struct {
	TransactionTime     string         `json:"transactionTime"`
	Request             string         `json:"request"`
	RequiresAccessToken bool           `json:"requiresAccessToken"`
	Output              []ManifestItem `json:"output"`
	Error               []ManifestItem `json:"error"`
	Deleted             []ManifestItem `json:"deleted"`
}

// ManifestItem is one file of a manifest.
type ManifestItem struct {
	Type  string `json:"type"`
	URL   string `json:"url"`
	Count *int64 `json:"count"`
}

// UnmarshalJSON reads count as the JSON number BDA2 makes it: 10.0 and 1e3 are whole numbers too (the
// schema's "integer" accepts them), which an int64 field alone would refuse.
func (it *ManifestItem) UnmarshalJSON(b []byte) error {
	var raw struct {
		Type  string       `json:"type"`
		URL   string       `json:"url"`
		Count *json.Number `json:"count"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*it = ManifestItem{Type: raw.Type, URL: raw.URL}
	if raw.Count != nil {
		n, err := raw.Count.Int64()
		if err != nil {
			f, ferr := raw.Count.Float64()
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return fmt.Errorf("count %s: not a whole number of resources", raw.Count.String())
			}
			n = int64(f)
		}
		it.Count = &n
	}
	return nil
}

// TransactionTimeSkew is how far a manifest's transactionTime may be after its answer's Date: clock skew
// between a server's nodes, never the hour or two of a local time written as UTC.
const TransactionTimeSkew = 5 * time.Minute

// CheckManifest holds a complete-status answer to the JSON Schema in fixtures/, then to what a schema cannot
// say, and returns the decoded manifest.
func CheckManifest(req string, x *Exchange) (*Manifest, error) {
	if x.Status != http.StatusOK {
		return nil, Violationf(req, "status of the completed export", StatusPhrase(http.StatusOK), StatusPhrase(x.Status))
	}
	if err := CheckMediaType(req, x, "application/json"); err != nil {
		return nil, err
	}
	if err := fixtures.Validate(fixtures.ManifestSchema, x.Body); err != nil {
		return nil, Violationf(req, "manifest", "a Bulk Data complete-status manifest", "%v", err)
	}
	var m Manifest
	if err := json.Unmarshal(x.Body, &m); err != nil {
		return nil, Violationf(req, "manifest", "a Bulk Data complete-status manifest", "%v", err)
	}
	tt, err := ParseFHIRInstant(m.TransactionTime)
	if err != nil {
		return nil, Violationf(req, "manifest transactionTime", "a FHIR instant", "%q: %v", m.TransactionTime, err)
	}
	// BDA2: "the server's time when the query is run": not later than the answer that says the query is done.
	// Only the server's own Date is compared (the harness's clock is not the server's), with room for the
	// skew between the node that ran the job and the one that answers.
	if date, err := http.ParseTime(x.Header.Get("Date")); err == nil && tt.After(date.Add(TransactionTimeSkew)) {
		return nil, Violationf(req, "manifest transactionTime", fmt.Sprintf("the time the export's query ran: not after the answer's own Date %s (%s of clock skew allowed)", x.Header.Get("Date"), TransactionTimeSkew), "%q, %s later", m.TransactionTime, tt.Sub(date).Round(time.Second))
	}
	// BDA2: request is "the full URL of the original Bulk Data kick-off request". Its host is not compared with
	// the run's: FUT's example names the service's internal host (digest B3).
	if err := CheckAbsoluteURL(req, "manifest request", m.Request); err != nil {
		return nil, err
	}
	// an item's type is the resource type its file holds; an error file holds OperationOutcomes, a deleted
	// file transaction Bundles (BDA2)
	for i, it := range m.Error {
		if it.Type != "OperationOutcome" {
			return nil, Violationf(req, fmt.Sprintf("type of manifest error item %d (%s)", i, it.URL), "OperationOutcome: an error file holds OperationOutcomes", "%q", it.Type)
		}
	}
	for i, it := range m.Deleted {
		if it.Type != "Bundle" {
			return nil, Violationf(req, fmt.Sprintf("type of manifest deleted item %d (%s)", i, it.URL), "Bundle: a deleted file holds transaction Bundles of DELETE entries", "%q", it.Type)
		}
	}
	// the schema holds a url to its scheme; a URL with no host ("https:///Binary/1") is still no absolute URL.
	// BDA2: output is "an array of file items with one entry for each generated file", and error and deleted
	// follow its structure: a file listed twice would be imported twice by a client.
	listed := make(map[string]string, len(m.Output)+len(m.Error)+len(m.Deleted))
	for _, list := range []struct {
		name  string
		items []ManifestItem
	}{{"output", m.Output}, {"error", m.Error}, {"deleted", m.Deleted}} {
		for i, it := range list.items {
			subject := fmt.Sprintf("url of manifest %s item %d (%s)", list.name, i, it.Type)
			if err := CheckAbsoluteURL(req, subject, it.URL); err != nil {
				return nil, err
			}
			if first, ok := listed[it.URL]; ok {
				return nil, Violationf(req, subject, "each file listed once: one item for each generated file (BDA2 output, error, deleted)", "%q, listed already as %s", it.URL, first)
			}
			listed[it.URL] = fmt.Sprintf("%s item %d", list.name, i)
		}
	}
	return &m, nil
}

// CheckManifestRequest holds a manifest's request (the manifest already through CheckManifest) to the kick-off
// whose polling location answered it (BDA2 "Complete Status"). request is "the full URL of the original Bulk
// Data kick-off request. In the case of a POST request, this URL will not include the request parameters": its
// host and base path are the server's own view (FUT's example names an internal host and port), but it names
// the kick-off's operation ($export, not the polling location), and a GET's the parameters that select the
// data, _since and _type, with the kick-off's values. A manifest of another kick-off (a job reused against
// Cache-Control: no-cache, the wrong user's) fails it: every kick-off of the run sends a _since of its own.
func CheckManifestRequest(req string, m *Manifest, kickoff *Exchange) error {
	if kickoff == nil {
		return nil
	}
	k, kerr := url.Parse(kickoff.URL)
	r, rerr := url.Parse(m.Request)
	if kerr != nil || rerr != nil {
		return nil
	}
	want := fmt.Sprintf("the full URL of the kick-off, %s %s (BDA2: request is the full URL of the original kick-off request, of any host)", kickoff.Method, kickoff.URL)
	if op := path.Base(k.Path); path.Base(r.Path) != op {
		return Violationf(req, "manifest request", want, "%q, which names %q, not the kick-off's %s", m.Request, path.Base(r.Path), op)
	}
	if kickoff.Method == http.MethodGet {
		kq, rq := k.Query(), r.Query()
		for _, name := range []string{"_since", "_type"} {
			sent, ok := kq[name]
			if !ok {
				continue
			}
			if got, ok := rq[name]; !ok || !sameParam(name, sent, got) {
				return Violationf(req, "manifest request", want, "%q, whose %s is %q, not the kick-off's %q", m.Request, name, rq.Get(name), kq.Get(name))
			}
		}
	}
	return nil
}

// CheckTransactionTimeAfterKickoff holds a manifest's transactionTime to its kick-off: it "indicates the
// server's time when the query is run" (BDA2 "Complete Status"), which is after the kick-off arrived: not
// before the kick-off answer's own Date, with the clock skew between a server's nodes allowed
// (TransactionTimeSkew); the harness's clock is never compared. HAPI writes its job's start (≥ 8.2) or end
// (≤ 8.1), so an earlier time is a manifest of an older export. A server that writes the time its data was
// last loaded, the bound of its query, fails it: the profile decides (features/PROFILES.md,
// transaction-time-of-the-data).
func CheckTransactionTimeAfterKickoff(req string, m *Manifest, kickoff *Exchange) error {
	if kickoff == nil {
		return nil
	}
	tt, terr := ParseFHIRInstant(m.TransactionTime)
	sent, derr := http.ParseTime(kickoff.Header.Get("Date"))
	if terr == nil && derr == nil && tt.Before(sent.Add(-TransactionTimeSkew)) {
		return Violationf(req, "manifest transactionTime", fmt.Sprintf("the time the export's query ran: not before the kick-off's answer, Date %s (%s of clock skew allowed)", kickoff.Header.Get("Date"), TransactionTimeSkew), "%q, %s earlier", m.TransactionTime, sent.Sub(tt).Round(time.Second))
	}
	return nil
}

// sameParam compares a kick-off parameter's values with the manifest request's. _type is a set of resource
// types: its order and repetitions, in one comma-separated value or in repeated parameters, do not matter
// (Patient,Observation is Observation,Patient). _since is an instant, which a server may write another way
// (another offset, fractional seconds); a "+" of its offset written unencoded in the request arrives
// query-decoded as a space, and is read as the "+" it was. The rest compare as strings.
func sameParam(name string, sent, got []string) bool {
	switch name {
	case "_type":
		return maps.Equal(typeSet(sent), typeSet(got))
	case "_since":
		if len(sent) != len(got) {
			return false
		}
		for i := range sent {
			if sent[i] == got[i] {
				continue
			}
			a, aerr := ParseFHIRInstant(strings.ReplaceAll(sent[i], " ", "+"))
			b, berr := ParseFHIRInstant(strings.ReplaceAll(got[i], " ", "+"))
			if aerr != nil || berr != nil || !a.Equal(b) {
				return false
			}
		}
		return true
	}
	return slices.Equal(sent, got)
}

// typeSet is the set of resource types of _type's values, each a comma-separated list.
func typeSet(values []string) map[string]bool {
	set := map[string]bool{}
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				set[t] = true
			}
		}
	}
	return set
}

// HasManifest tells whether body looks like a manifest (a JSON object with output or transactionTime), which
// an in-progress answer must not carry.
func HasManifest(body []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return false
	}
	_, output := m["output"]
	_, transactionTime := m["transactionTime"]
	return output || transactionTime
}

// LineFault is what a FileCheck.Line found wrong with a line: what it expected and what it got.
type LineFault struct{ Expected, Got string }

func (f *LineFault) Error() string { return "expected " + f.Expected + ", got " + f.Got }

// DeletedBundle holds one line of a manifest's deleted file to BDA2 ("deleted"): "a FHIR Bundle with a type of
// transaction which SHALL contain one or more entry items that reflect a deleted resource. In each entry, the
// request.url and request.method elements SHALL be populated. The request.method element SHALL be set to
// DELETE." The line is valid JSON of resourceType Bundle by then.
func DeletedBundle(line []byte) error {
	const want = "a transaction Bundle of one or more entries, each with request.method DELETE and request.url"
	var b struct {
		Type  string `json:"type"`
		Entry []struct {
			Request *struct {
				Method string `json:"method"`
				URL    string `json:"url"`
			} `json:"request"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(line, &b); err != nil {
		return &LineFault{want, err.Error()}
	}
	switch {
	case b.Type != "transaction":
		return &LineFault{want, fmt.Sprintf("type %q", b.Type)}
	case len(b.Entry) == 0:
		return &LineFault{want, "no entry"}
	}
	for i, e := range b.Entry {
		switch {
		case e.Request == nil:
			return &LineFault{want, fmt.Sprintf("entry %d without request", i)}
		case e.Request.Method != "DELETE":
			return &LineFault{want, fmt.Sprintf("entry %d request.method %q", i, e.Request.Method)}
		case e.Request.URL == "":
			return &LineFault{want, fmt.Sprintf("entry %d without request.url", i)}
		}
	}
	return nil
}
