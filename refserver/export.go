package refserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// exportJob is one system-level bulk export. Its state is computed from the
// clock: in progress until kickoff+ExportDuration, then completed, unless a
// DELETE cancelled it first.
type exportJob struct {
	id        string
	owner     string // user id
	kickoff   time.Time
	completes time.Time // kickoff + Config.ExportDuration
	request   string    // absolute kick-off URL
	types     []string  // nil: every type in the dataset
	since     time.Time
	cancelled time.Time    // zero: not cancelled
	released  time.Time    // zero: not released; set by a DELETE after completion in the bulkdata profile
	nextPoll  time.Time    // with Config.Throttle: a poll before this is answered 429 (the Retry-After announced)
	reuseKey  string       // what makes an identical kick-off (reuse.go)
	plan      []outputFile // its output files with their exact counts, fixed at kick-off (the data never changes)
	ignored   []string     // what a lenient kick-off ignored, one OperationOutcome each in its error file
	answered  bool         // its manifest was answered once (the manifest-forgotten fault forgets it then)

	materialized bool
	outputs      []exportOutput
	errors       []exportOutput // the error file, when the kick-off ignored something
	heapIndex    int            // in its store's expiries (store.go)
}

type exportOutput struct {
	typ      string
	binaryID string
	count    int
}

type exportState int

const (
	exportInProgress exportState = iota
	exportCompleted
	exportCancelled
)

func (j *exportJob) state(now time.Time) exportState {
	switch {
	case !j.cancelled.IsZero():
		return exportCancelled
	case !now.Before(j.completes):
		return exportCompleted
	default:
		return exportInProgress
	}
}

// exportOutputFormats are the accepted _outputFormat values.
var exportOutputFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// exportParams are the kick-off parameters the server understands.
type exportParams struct {
	outputFormat string
	types        []string
	since        time.Time
	exportID     string   // _exportId: a label, only part of what makes a kick-off identical (reuse.go)
	ignored      []string // with Prefer: handling=lenient, what was ignored: unsupported parameters, unknown types
}

// exportKickoff handles GET and POST [base]/$export.
func (s *Server) exportKickoff(w http.ResponseWriter, r *http.Request, u User) {
	if r.Method == http.MethodHead { // the GET route takes HEAD too; a HEAD is safe and must start no job
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, codeNotSupported, "HEAD would kick off an export: a kick-off is a GET or a POST (HL7 Bulk Data), and HEAD changes nothing (RFC 9110 §9.3.2)")
		return
	}
	prefer := preferTokens(r)
	if !prefer["respond-async"] {
		writeError(w, http.StatusBadRequest, codeInvalid, "Must request async processing for $export (send the header Prefer: respond-async)")
		return
	}
	lenient := prefer["handling=lenient"]
	if r.Method == http.MethodPost && s.faulty(faultKickoffPostRefused) {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, codeNotSupported, "$export is served to GET only")
		return
	}

	// Collect raw values by name: query parameters, then (POST) the body.
	values := map[string][]string{}
	for name, vs := range r.URL.Query() {
		values[name] = append(values[name], vs...)
	}
	if r.Method == http.MethodPost {
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 && !checkJSONContentType(w, r, true) {
			return
		}
		ps, err := decodeParameters(body)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeInvalid, err.Error())
			return
		}
		for _, p := range ps {
			v, err := exportParamValue(p)
			if err != nil {
				writeError(w, http.StatusBadRequest, codeInvalid, err.Error())
				return
			}
			values[p.Name] = append(values[p.Name], v)
		}
	}

	if s.cfg.Profile.dropsBlankFilters() {
		dropBlankFilters(values)
	}
	if t := values["_type"]; len(t) > 1 {
		if s.faulty(faultKickoffTypeRepeatedRefused) {
			writeError(w, http.StatusBadRequest, codeInvalid, fmt.Sprintf("_type may be given only once, as a comma-separated list (got %d)", len(t)))
			return
		}
	}
	if f := values["_outputFormat"]; len(f) == 1 && f[0] != exportOutputFormats[0] && s.faulty(faultKickoffFormatAbbreviationRefused) {
		writeError(w, http.StatusBadRequest, codeNotSupported, fmt.Sprintf("_outputFormat %q is not supported; use application/fhir+ndjson", f[0]))
		return
	}
	params, err := parseExportParams(values, lenient)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalid, err.Error())
		return
	}
	// A job keeps every _type it names, a known one in its list, another in a message of its error file: a
	// list longer than a job may keep is refused before a message is written for each of its names.
	if n := namesBytes(params.types); n > s.cfg.MaxJobRequestBytes {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooCostly,
			fmt.Sprintf("The export request names %d bytes of _type; this server keeps at most %d per job", n, s.cfg.MaxJobRequestBytes))
		return
	}
	var dropped []string
	if params.types, dropped, err = s.supportedTypes(params.types, lenient); err != nil {
		writeError(w, http.StatusBadRequest, codeNotSupported, err.Error())
		return
	}
	for _, t := range dropped {
		params.ignored = append(params.ignored, fmt.Sprintf("_type %s is not a resource type this server supports (FHIR R4); it was left out (Prefer: handling=lenient)", t))
	}

	base := s.baseURL(r)
	reqURL := base + "/$export"
	if r.URL.RawQuery != "" {
		reqURL += "?" + r.URL.RawQuery
	}
	plan, err := s.planExport(params.types, params.since)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeException, "plan the export's files: "+err.Error())
		return
	}
	job := &exportJob{
		id:       newUUID(),
		owner:    u.ID,
		request:  reqURL,
		types:    params.types,
		since:    params.since,
		reuseKey: exportReuseKey(base, params),
		plan:     plan,
		ignored:  params.ignored,
	}
	if kept := jobRequestBytes(job); kept > s.cfg.MaxJobRequestBytes {
		writeError(w, http.StatusRequestEntityTooLarge, codeTooCostly,
			fmt.Sprintf("The export request keeps %d bytes (its URL and _type list); this server keeps at most %d per job", kept, s.cfg.MaxJobRequestBytes))
		return
	}
	st := s.store(u.ID)
	now := s.lock(st)
	job.kickoff = now
	job.completes = now.Add(s.cfg.ExportDuration)
	if s.cfg.Throttle { // the first poll too must wait for the announced delay
		job.nextPoll = now.Add(s.cfg.RetryAfter)
		w.Header().Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
	}
	if reused := s.reusableJobLocked(st, r, job, now); reused != nil {
		job = reused
	} else if len(st.exports) >= s.cfg.MaxJobsPerUser {
		retry := s.oldestExportExpiry(st).Sub(now)
		st.mu.Unlock()
		w.Header().Del("Retry-After")
		s.writeTooManyJobs(w, "export", retry)
		return
	} else {
		s.addExportLocked(st, job)
	}
	st.mu.Unlock()
	s.sweepOthers(st)

	markAnswer(w, answerKickoff)
	w.Header().Set("Content-Location", s.pollingURL(base, job.id))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
}

// jobRequestBytes is what an export job keeps of its request.
func jobRequestBytes(j *exportJob) int64 {
	n := int64(len(j.request) + len(j.reuseKey))
	for _, t := range j.types {
		n += int64(len(t))
	}
	for _, m := range j.ignored {
		n += int64(len(m))
	}
	return n
}

// namesBytes is the length of names, together.
func namesBytes(names []string) int64 {
	var n int64
	for _, s := range names {
		n += int64(len(s))
	}
	return n
}

// exportParamValue returns a body parameter's value as a string.
func exportParamValue(p namedParam) (string, error) {
	switch {
	case p.ValueString != nil:
		return *p.ValueString, nil
	case p.ValueInstant != nil && p.Name == "_since":
		return *p.ValueInstant, nil
	case p.Name == "_since":
		return "", fmt.Errorf("parameter %s must have a valueInstant or valueString", p.Name)
	case p.Name == "_outputFormat" || p.Name == "_type":
		return "", fmt.Errorf("parameter %s must have a valueString", p.Name)
	default:
		return "", nil // unknown parameters are judged by parseExportParams
	}
}

// hapiFilterParams are the kick-off parameters HAPI FHIR reads as filters (BulkExportJobParametersBuilder:
// filters and postFetchFilterUrl), both in FUT's $export OperationDefinition (0..*).
var hapiFilterParams = []string{"_typeFilter", "_typePostFetchFilterUrl"}

// dropBlankFilters removes the filter parameters whose every value is blank, as HAPI does: its
// BulkExportJobParametersBuilder.parseFilters splits each value before each "Type?" and keeps the
// StringUtils::isNotBlank pieces only (hapifhir/hapi-fhir 056b0ce; the older provider's splitTypeFilters
// alike), so "_typeFilter=" starts an export with no filter. A piece is blank only when the whole value is,
// since a split comma is followed by a type name. A filter that names something is left to parseExportParams.
func dropBlankFilters(values map[string][]string) {
	for _, name := range hapiFilterParams {
		vs, ok := values[name]
		if !ok {
			continue
		}
		blank := true
		for _, v := range vs {
			if strings.TrimSpace(v) != "" {
				blank = false
			}
		}
		if blank {
			delete(values, name)
		}
	}
}

// parseExportParams validates the kick-off parameters. Unsupported ones are
// an error unless the client asked for lenient handling.
func parseExportParams(values map[string][]string, lenient bool) (exportParams, error) {
	p := exportParams{outputFormat: exportOutputFormats[0]}
	names := make([]string, 0, len(values))
	for name := range values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vs := values[name]
		switch name {
		case "_outputFormat":
			if len(vs) != 1 {
				return p, fmt.Errorf("_outputFormat may be given only once")
			}
			if !slices.Contains(exportOutputFormats, vs[0]) {
				return p, fmt.Errorf("_outputFormat %q is not supported; use one of %s", vs[0], strings.Join(exportOutputFormats, ", "))
			}
			p.outputFormat = vs[0]
		case "_type":
			seen := map[string]bool{} // a body under the cap holds some 10⁵ names: no quadratic dedup
			for _, v := range vs {
				for _, t := range strings.Split(v, ",") {
					t = strings.TrimSpace(t)
					if !resourceTypeRE.MatchString(t) {
						return p, fmt.Errorf("_type %q: %q is not a resource type name", v, t)
					}
					if !seen[t] {
						seen[t] = true
						p.types = append(p.types, t)
					}
				}
			}
		case "_since":
			if len(vs) != 1 {
				return p, fmt.Errorf("_since may be given only once")
			}
			t, err := parseInstant(vs[0])
			if err != nil {
				msg := "_since: " + err.Error()
				if strings.Contains(vs[0], " ") {
					msg += " (a '+' in a query string must be sent as %2B)"
				}
				return p, fmt.Errorf("%s", msg)
			}
			p.since = t
		case "_exportId":
			p.exportID = strings.Join(vs, ",")
		case "_format", "_pretty":
			// Accepted and ignored (FUT's own example sends _format and _pretty).
		default:
			if !lenient {
				return p, fmt.Errorf("parameter %s is not supported by this server (send Prefer: handling=lenient to ignore it)", name)
			}
			p.ignored = append(p.ignored, fmt.Sprintf("parameter %s is not supported by this server; it was ignored (Prefer: handling=lenient)", name))
		}
	}
	return p, nil
}

// preferTokens returns the Prefer header preferences, lower-cased, e.g.
// "respond-async" and "handling=lenient".
func preferTokens(r *http.Request) map[string]bool {
	out := map[string]bool{}
	for _, h := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(h, ",") {
			for _, tok := range strings.Split(part, ";") {
				tok = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(tok), " ", ""))
				if tok != "" {
					out[tok] = true
				}
			}
		}
	}
	return out
}

// planExport plans the output files of an export of types (nil: every type in the dataset) since since
// (zero: everything), sorted by type, each with its exact count. Types without data have no file.
func (s *Server) planExport(types []string, since time.Time) ([]outputFile, error) {
	if types == nil {
		types = s.dataset.types
	}
	types = slices.Clone(types)
	slices.Sort(types)
	var plan []outputFile
	for _, typ := range types {
		src := s.dataset.byType[typ]
		if src == nil {
			continue
		}
		files, err := src.files(since)
		if err != nil {
			return nil, err
		}
		plan = append(plan, files...)
	}
	return plan, nil
}

// ExportedType is what an export of everything holds of one resource type.
type ExportedType struct {
	Type      string
	Files     int
	Resources int
}

// ExportContents is what an export of every type without _since holds, type by type: exact counts, known
// without reading or generating the data (the manifest says them in bulkdata only: Profile.countsOutput).
func (s *Server) ExportContents() ([]ExportedType, error) {
	plan, err := s.planExport(nil, time.Time{})
	if err != nil {
		return nil, err
	}
	var out []ExportedType
	for _, f := range plan {
		if len(out) == 0 || out[len(out)-1].Type != f.typ {
			out = append(out, ExportedType{Type: f.typ})
		}
		out[len(out)-1].Files++
		out[len(out)-1].Resources += f.count
	}
	return out, nil
}

// materializeLocked creates the output Binaries of a completed job once, in its owner's store, one per
// planned file; their content is streamed from the dataset when they are read. st.mu must be held.
func (s *Server) materializeLocked(st *userStore, j *exportJob) {
	if j.materialized {
		return
	}
	j.materialized = true
	for _, f := range j.plan {
		b := s.exportBinaryLocked(st, j, f.typ)
		b.file = f
		j.outputs = append(j.outputs, exportOutput{typ: f.typ, binaryID: b.id, count: f.count})
	}
	if len(j.ignored) > 0 {
		b := s.exportBinaryLocked(st, j, "OperationOutcome")
		b.data = ignoredOutcomes(j.ignored)
		j.errors = append(j.errors, exportOutput{typ: "OperationOutcome", binaryID: b.id, count: len(j.ignored)})
	}
}

// exportBinaryLocked adds one NDJSON file of the job, of resource type typ, to its owner's store under a new
// id; the caller gives it its content. st.mu must be held.
func (s *Server) exportBinaryLocked(st *userStore, j *exportJob, typ string) *binary {
	id := newBinaryID()
	for st.binaries[id] != nil {
		id = newBinaryID()
	}
	b := &binary{
		id:           id,
		owner:        j.owner,
		contentType:  contentTypeNDJSON,
		lastUpdated:  j.completes,
		versionID:    "1",
		exportJobID:  j.id,
		resourceType: typ,
	}
	st.binaries[id] = b
	return b
}

// ignoredOutcomes is the error file of a lenient kick-off: NDJSON, one warning OperationOutcome per thing it
// ignored. HL7 Bulk Data IG v2, Complete Status, error: "If the request contained invalid or unsupported
// parameters along with a Prefer: handling=lenient header and the server processed the request, the server
// SHOULD include a FHIR OperationOutcome resource for each of these parameters."
func ignoredOutcomes(ignored []string) []byte {
	var b bytes.Buffer
	for _, msg := range ignored {
		line, err := json.Marshal(operationOutcome{ResourceType: "OperationOutcome",
			Issue: []ooIssue{{Severity: sevWarning, Code: codeNotSupported, Diagnostics: msg}}})
		if err != nil { // cannot happen for this fixed shape
			continue
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
