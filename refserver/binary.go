package refserver

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// binary is a stored Binary: an export output file or a report.
type binary struct {
	id          string
	owner       string // user id; only this user may read it
	contentType string
	data        []byte     // a report's content
	file        outputFile // an export file's content, streamed from the dataset
	lastUpdated time.Time
	versionID   string

	// Export files.
	exportJobID  string
	resourceType string

	// Report Binaries: the job that fills this Binary when it is done.
	report *reportJob
}

// Meta extensions HAPI puts on bulk export Binaries (seen in FUT's example).
const (
	extBulkExportJobID        = "https://hapifhir.org/NamingSystem/bulk-export-job-id"
	extBulkExportResourceType = "https://hapifhir.org/NamingSystem/bulk-export-binary-resource-type"
)

type binaryResource struct {
	ResourceType    string      `json:"resourceType"`
	ID              string      `json:"id"`
	Meta            binaryMeta  `json:"meta"`
	ContentType     string      `json:"contentType"`
	SecurityContext securityCtx `json:"securityContext"`
	Data            []byte      `json:"data"` // encoding/json writes []byte as standard base64
}

type binaryMeta struct {
	VersionID   string         `json:"versionId,omitempty"`
	LastUpdated string         `json:"lastUpdated"`
	Extension   []extValString `json:"extension,omitempty"`
}

type extValString struct {
	URL         string `json:"url"`
	ValueString string `json:"valueString"`
}

type securityCtx struct {
	Identifier struct {
		Value string `json:"value"`
	} `json:"identifier"`
}

// resource renders b as a FHIR Binary resource.
func (b *binary) resource() binaryResource {
	res := binaryResource{
		ResourceType: "Binary",
		ID:           b.id,
		Meta:         binaryMeta{VersionID: b.versionID, LastUpdated: fhirInstant(b.lastUpdated)},
		ContentType:  b.contentType,
		Data:         b.data,
	}
	if res.Data == nil {
		res.Data = []byte{}
	}
	if b.exportJobID != "" {
		res.Meta.Extension = []extValString{
			{URL: extBulkExportJobID, ValueString: b.exportJobID},
			{URL: extBulkExportResourceType, ValueString: b.resourceType},
		}
	}
	res.SecurityContext.Identifier.Value = b.owner
	return res
}

// binaryGet handles GET [base]/Binary/{id} for an authenticated user; with the output-no-token fault, an
// export file also for a request without a token.
func (s *Server) binaryGet(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.userFor(r); !ok && s.faulty(faultOutputNoToken) && r.Header.Get("Authorization") == "" {
		s.binaryRead(w, r, User{})
		return
	}
	s.authed(s.binaryRead)(w, r)
}

// binaryStore is the store that serves Binary id to u: u's own. The faults output-no-token (no user) and
// output-cross-user (another user) serve an export file from its owner's store instead.
func (s *Server) binaryStore(id string, u User) *userStore {
	own := s.store(u.ID)
	faulty := u.ID == "" && s.faulty(faultOutputNoToken) || u.ID != "" && s.faulty(faultOutputCrossUser)
	if !faulty || own != nil && s.holdsBinary(own, id, false) {
		return own
	}
	for _, other := range s.storeList {
		if s.holdsBinary(other, id, true) {
			return other
		}
	}
	return own
}

// holdsBinary tells whether st holds Binary id (an export file, if exportFile).
func (s *Server) holdsBinary(st *userStore, id string, exportFile bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	b := st.binaries[id]
	return b != nil && (!exportFile || b.exportJobID != "")
}

// binaryRead handles GET [base]/Binary/{id}. Only the owner may read (Binaries
// are held in the owner's store); anyone else gets the same 404 as for an
// unknown id. Export files are served as raw NDJSON unless the request asks
// for the FHIR Binary resource (wantsBinaryResource).
func (s *Server) binaryRead(w http.ResponseWriter, r *http.Request, u User) {
	id := r.PathValue("id")
	st := s.binaryStore(id, u)
	if st == nil {
		writeError(w, http.StatusNotFound, codeNotFound, "Resource Binary/"+id+" is not known")
		return
	}
	now := s.lock(st)
	b := st.binaries[id]
	var report *reportJob
	if b != nil {
		report = b.report
	}
	st.mu.Unlock()
	s.sweepOthers(st)
	if report != nil {
		s.refreshReport(st, report, now)
	}
	var snapshot binary
	if b != nil {
		st.mu.Lock()
		snapshot = *b // data is never mutated in place, only replaced
		st.mu.Unlock()
	}

	if b == nil || snapshot.id == "" {
		writeError(w, http.StatusNotFound, codeNotFound, "Resource Binary/"+id+" is not known")
		return
	}
	if snapshot.exportJobID != "" {
		markAnswer(w, answerExportFile)
		s.writeExportFile(w, r, &snapshot)
		return
	}
	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, snapshot.resource())
}

// wantsBinaryResource reports whether a file request explicitly asks for the
// FHIR Binary resource rather than the file itself. The HL7 IG's Output File
// Request says Accept "defaults to application/fhir+ndjson", and HAPI FHIR
// (FUT's server) serves a Binary's raw content unless the request names a FHIR
// format: RestfulServerUtils.streamResponseAsResource returns the content when
// determineResponseEncodingNoDefault finds no FHIR type, matched strictly for
// Binary, so plain application/json, */* or application/octet-stream get the
// file too. So: the resource only when a FHIR JSON type in Accept outranks every
// NDJSON type there, or _format names JSON.
func wantsBinaryResource(r *http.Request) bool {
	for _, f := range r.URL.Query()["_format"] {
		switch strings.TrimSpace(f) {
		case "json", "application/json", "application/fhir+json", "application/json+fhir":
			return true
		}
	}
	fhirQ, ndjsonQ := 0.0, 0.0
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 {
					continue
				}
			}
			switch mt {
			case "application/fhir+json", "application/json+fhir":
				fhirQ = max(fhirQ, q)
			case "application/fhir+ndjson", "application/ndjson":
				ndjsonQ = max(ndjsonQ, q)
			}
		}
	}
	return fhirQ > 0 && fhirQ > ndjsonQ
}

// writeExportFile streams an export file as raw NDJSON when Accept names an NDJSON type, else as a Binary
// resource whose data is the NDJSON in base64, encoded while it is written: a file of any size is served in
// constant memory. A failure after the status line aborts the connection, so the client sees a broken
// download rather than a short file.
func (s *Server) writeExportFile(w http.ResponseWriter, r *http.Request, b *binary) {
	if b.data == nil && s.faulty(faultOutputExternalizedBinary) {
		writeExternalizedExportFile(w, r, b)
		return
	}
	size := b.file.size // -1: not known before it is written
	content := func(out io.Writer) error { return s.dataset.byType[b.file.typ].write(out, b.file) }
	if b.data != nil { // an error file, held whole
		size = int64(len(b.data))
		content = func(out io.Writer) error { _, err := out.Write(b.data); return err }
	}
	h := w.Header()
	var out io.Writer = w
	var finish func() error
	binaryForm := wantsBinaryResource(r)
	switch {
	case binaryForm:
		h.Set("Content-Type", contentTypeFHIRJSON)
		bw := bufio.NewWriterSize(w, 64<<10)
		res := b.resource()
		res.Data = []byte{}
		head, err := json.Marshal(res)
		if err != nil || !bytes.HasSuffix(head, []byte(`"data":""}`)) {
			writeError(w, http.StatusInternalServerError, codeException, "render the Binary")
			return
		}
		head = append(head[:len(head)-3], '"') // up to `"data":"`
		if size >= 0 && !s.faulty(faultOutputBadLastLine) {
			h.Set("Content-Length", strconv.FormatInt(int64(len(head))+int64(base64.StdEncoding.EncodedLen(int(size)))+2, 10))
		}
		bw.Write(head)
		enc := base64.NewEncoder(base64.StdEncoding, bw)
		out = enc
		finish = func() error {
			if err := enc.Close(); err != nil {
				return err
			}
			bw.WriteString(`"}`)
			return bw.Flush()
		}
	default:
		h.Set("Content-Type", contentTypeNDJSON)
		if size >= 0 && !s.faulty(faultOutputBadLastLine) {
			h.Set("Content-Length", strconv.FormatInt(size, 10))
		}
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead { // the GET's headers; the file is not produced only to be dropped
		return
	}
	if s.faulty(faultOutputBadLastLine) {
		cut := &lastBraceCutter{w: out}
		out = cut
		inner := finish
		finish = func() error {
			if err := cut.close(); err != nil {
				return err
			}
			if inner != nil {
				return inner()
			}
			return nil
		}
	}
	err := content(out)
	if err == nil && finish != nil {
		err = finish()
	}
	if err != nil {
		panic(http.ErrAbortHandler)
	}
}

// writeExternalizedExportFile answers as HAPI FHIR does for a Binary whose data its externalized binary storage
// keeps and does not re-inflate (above autoInflateBinariesMaximumBytes, 10 MB by default): the file itself
// comes empty, and the Binary has no data, only HAPI's extension naming the blob on its primitive (_data).
func writeExternalizedExportFile(w http.ResponseWriter, r *http.Request, b *binary) {
	if !wantsBinaryResource(r) {
		w.Header().Set("Content-Type", contentTypeNDJSON)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	type extension struct {
		URL         string `json:"url"`
		ValueString string `json:"valueString"`
	}
	res := b.resource()
	writeJSON(w, http.StatusOK, contentTypeFHIRJSON, struct {
		ResourceType    string      `json:"resourceType"`
		ID              string      `json:"id"`
		Meta            binaryMeta  `json:"meta"`
		ContentType     string      `json:"contentType"`
		SecurityContext securityCtx `json:"securityContext"`
		Data            struct {
			Extension []extension `json:"extension"`
		} `json:"_data"`
	}{res.ResourceType, res.ID, res.Meta, res.ContentType, res.SecurityContext, struct {
		Extension []extension `json:"extension"`
	}{[]extension{{extExternalizedBinaryID, "blob-" + b.id}}}})
}

// extExternalizedBinaryID is HAPI FHIR's extension on a Binary's data kept in its externalized binary storage
// (HapiExtensions.EXT_EXTERNALIZED_BINARY_ID, BinaryAccessProvider.replaceDataWithExtension).
const extExternalizedBinaryID = "http://hapifhir.io/fhir/StructureDefinition/externalized-binary-id"

// lastBraceCutter passes a stream through but holds back its last two bytes, and at close writes them
// without a final "}": the last NDJSON line is cut short and is no longer JSON.
type lastBraceCutter struct {
	w    io.Writer
	held []byte
}

func (c *lastBraceCutter) Write(p []byte) (int, error) {
	all := p
	if len(c.held) > 0 {
		all = append(c.held, p...)
	}
	if len(all) <= 2 {
		c.held = append(c.held[:0:0], all...)
		return len(p), nil
	}
	if _, err := c.w.Write(all[:len(all)-2]); err != nil {
		return 0, err
	}
	c.held = append(c.held[:0], all[len(all)-2:]...)
	return len(p), nil
}

func (c *lastBraceCutter) close() error {
	if i := bytes.LastIndexByte(c.held, '}'); i >= 0 {
		c.held = append(c.held[:i], c.held[i+1:]...)
	}
	_, err := c.w.Write(c.held)
	return err
}
