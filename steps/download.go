package steps

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/check"
)

// download is one output file: its exchange (the body's start only) and what judging it while it arrived
// found.
type download struct {
	item    check.ManifestItem
	output  bool // an item of the manifest's output, not of its error or deleted files
	x       *check.Exchange
	file    check.OutputFile
	verdict error // the server's deviation in the file, or nil
	err     error // the download failed: transport, timeout; the step fails with it
	// unasked is a content coding of the answer that the request did not accept (Content-Encoding), or "";
	// undecoded says the harness cannot decode it (br, zstd): the file's content is not checked.
	unasked   string
	undecoded bool
	// refused is the answer to the request without a token that a manifest of requiresAccessToken false
	// refused (401, 403, 404), when the file was asked again with the owner's token (x, then): the pair that
	// shows whether the file needs the $export's authorization (EXP-OUTPUT-TOKEN).
	refused *check.Exchange
	// unchecked says why the file is not checked ("": it is): refused without a token under a manifest of
	// requiresAccessToken false, and not read with the owner's token either (askAgainWithToken).
	unchecked string
	// asBinary is the answer to the file's URL read once more as its FHIR Binary, after the file itself came
	// empty (readEmptyFileAsBinary), or nil.
	asBinary *check.Exchange
}

// fileHeadBytes of an output file are kept for the transcript; the rest is judged and dropped.
const fileHeadBytes = 4 << 10

// downloadOutputFiles downloads every output file of the manifest, then its error files and its deleted
// files, on at most ParallelDownloads connections, each judged line by line while it arrives
// (check.ReadOutputStream), in the manifest's order in the result. Error and deleted files are judged as
// their items' type says, which the manifest check holds to OperationOutcome and Bundle (BDA2: error files
// hold OperationOutcomes, deleted files transaction Bundles of DELETEs, at URLs that SHALL be accessible);
// each line of a deleted file is held to that too (check.DeletedBundle).
// accept is the Accept of every request ("": none, as a client that names no format).
//
// retryAs, when the manifest says requiresAccessToken false, is the user (the export's owner) whose token a
// file refused without one is asked for again, once, on an origin trusted with the token
// (askAgainWithToken); "" asks no file again.
func (w *World) downloadOutputFiles(ctx context.Context, m *check.Manifest, user, accept, retryAs string) ([]download, error) {
	// BDA2: the token goes with the file request only when the manifest says it is required, so that a
	// file server of another party never sees it otherwise. Asked once: a skip is decided once.
	as := ""
	if m.RequiresAccessToken {
		as = user
		retryAs = ""
	}
	token, err := w.token(as)
	if err != nil {
		return nil, err
	}
	retryToken, err := w.token(retryAs)
	if err != nil {
		return nil, err
	}
	// The downloads share DOWNLOAD_WAIT, and at most MAX_FILES are checked: what either leaves out is
	// reported as not checked, never dropped silently.
	items := slices.Concat(m.Output, m.Error, m.Deleted)
	deletedFrom := len(m.Output) + len(m.Error) // the deleted files' lines are transaction Bundles of DELETEs
	if w.target.MaxFiles > 0 && len(items) > w.target.MaxFiles {
		w.leftUnchecked(fmt.Sprintf("%d of the manifest's %d output files not checked: MAX_FILES=%d (MAX_FILES=%d checks them all, with DOWNLOAD_WAIT long enough for them; EXPORT_TYPES makes the export smaller)", len(items)-w.target.MaxFiles, len(items), w.target.MaxFiles, len(items)))
		items = items[:w.target.MaxFiles]
	}
	if w.target.DownloadWait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.target.DownloadWait)
		defer cancel()
	}
	results := make([]download, len(items))
	heads := headsKept{first: map[outcome]int{}}
	slots := make(chan struct{}, w.target.ParallelDownloads)
	var wg sync.WaitGroup
	typeLines := map[string]*atomic.Int64{} // each type's budget of lines decoded strictly (TypeLines)
	// The output lines decoded strictly are compared with it (EXP-MODIFIED-AFTER); a manifest's transactionTime
	// that is no instant fails EXP-POLL-200, and leaves nothing to compare.
	transactionTime, _ := check.ParseFHIRInstant(m.TransactionTime)
	for i, item := range items {
		if typeLines[item.Type] == nil {
			typeLines[item.Type] = new(atomic.Int64)
			typeLines[item.Type].Store(TypeLines)
		}
		lc := lineChecks{typeLines: typeLines[item.Type]}
		switch {
		case i >= deletedFrom:
			lc.eachLine = check.DeletedBundle
		case i < len(m.Output): // an error or a deleted file holds no exported resource
			lc.transactionTime = transactionTime
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			results[i] = download{x: &check.Exchange{Method: http.MethodGet, URL: item.URL, Err: ctx.Err()}, err: ctx.Err()}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			d := w.downloadFile(ctx, token, item, accept, lc)
			used := token
			if retryAs != "" && refusedWithoutToken(d) {
				d = w.askAgainWithToken(ctx, d, retryAs, retryToken, item, accept, lc)
				used = retryToken
			}
			if w.emptyBinaryFile(d, item) {
				d = w.readEmptyFileAsBinary(ctx, d, used, item, lc)
			}
			results[i] = d
			heads.judged(results, i)
		}()
	}
	wg.Wait()
	kept := results[:0]
	var late, untrusted, otherScheme, undecoded []string
	unasked := map[string][]string{} // the files of each content coding the requests did not accept
	var codings []string
	for i, d := range results {
		if c := d.unasked; c != "" {
			if unasked[c] == nil {
				codings = append(codings, c)
			}
			unasked[c] = append(unasked[c], items[i].URL)
		}
		d.item, d.output = items[i], i < len(m.Output)
		switch {
		case d.err != nil && ctx.Err() != nil:
			late = append(late, d.item.URL)
		case d.unchecked != "":
			otherScheme = append(otherScheme, d.unchecked)
		// without the token a file store may also deny that the file exists (404: Azure's private blobs do)
		case d.x.TokenWithheld != "" && (d.x.Status == http.StatusUnauthorized || d.x.Status == http.StatusForbidden || d.x.Status == http.StatusNotFound):
			untrusted = append(untrusted, d.item.URL)
		case d.undecoded:
			undecoded = append(undecoded, fmt.Sprintf("output file %s not checked: its Content-Encoding %q is a content coding the harness cannot decode", d.item.URL, d.unasked))
		default:
			kept = append(kept, d)
		}
	}
	if len(late) > 0 {
		w.leftUnchecked(fmt.Sprintf("%d of the manifest's %d output files not checked: the downloads took DOWNLOAD_WAIT (%s), e.g. %s unfinished", len(late), len(items), w.target.DownloadWait, late[0]))
	}
	for _, u := range untrusted {
		w.leftUnchecked(fmt.Sprintf("output file %s not checked: origin not trusted, %s", u, untrustedNote(u)))
	}
	for _, reason := range otherScheme {
		w.leftUnchecked(reason)
	}
	for _, c := range codings {
		// RFC 9110 §12.5.3: to a request whose Accept-Encoding lists none of its codings, a server SHOULD send
		// the content without one. A SHOULD: a warning, never a failure; the file is judged as it decodes.
		files := unasked[c]
		what := "output file " + files[0]
		if len(files) > 1 {
			what = fmt.Sprintf("%d output files, e.g. %s,", len(files), files[0])
		}
		then := "decoded and judged"
		if c != "deflate" {
			then = "which the harness cannot decode: the content is not checked"
		}
		w.recordWarning(Finding{Scenario: w.scenario, Requirement: w.primaryRequirement(), Message: fmt.Sprintf(
			"%s answered with Content-Encoding %q, a content coding the request did not accept (Accept-Encoding: %s; RFC 9110 §12.5.3: a server SHOULD then send the content without one), %s",
			what, c, contentCodingAsked, then)})
	}
	for _, u := range undecoded {
		w.leftUnchecked(u)
	}
	return kept, nil
}

// refusedWithoutToken tells a file requested without a token that was refused as a file server refuses a
// request without the credential it wants: 401, 403, or 404 from a store that denies what it will not show
// (Azure's private blobs do), as for a token withheld from an untrusted origin (downloadOutputFiles); or
// Azure Storage's refusal of anonymous access (azureAnonymousRefused).
func refusedWithoutToken(d download) bool {
	if d.err != nil || d.x.TokenWithheld != "" || d.x.RequestHeader.Get("Authorization") != "" {
		return false
	}
	switch d.x.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	case http.StatusConflict:
		return azureAnonymousRefused(d.x)
	}
	return false
}

// azureAnonymousRefused tells Azure Blob Storage's answer to a request without a credential on a storage account
// that allows no anonymous access (AllowBlobPublicAccess false, the default of new accounts): 409 Conflict with
// the error code PublicAccessNotPermitted, in the x-ms-error-code header (service version 2017-07-29 and later)
// and in the XML body (Azure Storage REST "Status and error codes"). Microsoft's FHIR server hands out such
// blobs with requiresAccessToken false (README, "Independent Bulk Data servers"). Any other 409 is no refusal
// of a credential and is judged as the answer it is.
func azureAnonymousRefused(x *check.Exchange) bool {
	const code = "PublicAccessNotPermitted"
	return x.Header.Get("X-Ms-Error-Code") == code || bytes.Contains(x.Body, []byte("<Code>"+code+"</Code>"))
}

// anotherScheme is why a file refused without a token, under a manifest of requiresAccessToken false, is not
// checked when the owner's token does not read it either.
const anotherScheme = "the manifest says requiresAccessToken false, so its file server may control access by a scheme other than the $export's, for which the harness holds no credential (BDA2 \"Complete Status\": requiresAccessToken \"MAY be false for file servers that use access-control schemes other than OAuth 2.0\")"

// askAgainWithToken asks once more, with user as's token, for a file that a manifest of requiresAccessToken
// false lets anyone download but that was refused without a token (first). BDA2 "Complete Status":
// requiresAccessToken tells "whether downloading the generated files requires the same authorization
// mechanism as the $export operation itself", and MAY be false for a file server of another access-control
// scheme (a pre-signed store URL, a server inside a firewall). So a refusal without a token proves nothing by
// itself: read with the token, the file needs the $export's authorization after all, and the manifest's false
// is wrong (the download returned holds both answers, refused first, and is judged on the second); refused
// again, or on an origin the token may not go to (never sent there), the file is not checked, saying why.
func (w *World) askAgainWithToken(ctx context.Context, first download, as, token string, item check.ManifestItem, accept string, lc lineChecks) download {
	without := check.StatusPhrase(first.x.Status)
	switch {
	case !w.target.Trusts(item.URL):
		first.unchecked = fmt.Sprintf("output file %s not checked: refused without a token (%s); %s; not asked again with user %s's token: %s", item.URL, without, anotherScheme, as, untrustedNote(item.URL))
		return first
	case token == "":
		first.unchecked = fmt.Sprintf("output file %s not checked: refused without a token (%s); %s; user %s has no bearer token to ask again with", item.URL, without, anotherScheme, as)
		return first
	}
	fmt.Fprintf(w.target.Log, "  GET %s: %s without a token, though the manifest says requiresAccessToken false: asking once more, with user %s's token\n", item.URL, without, as)
	d := w.downloadFile(ctx, token, item, accept, lc)
	d.refused = first.x
	if d.err == nil && d.x.Status != http.StatusOK {
		with := check.StatusPhrase(d.x.Status)
		if d.x.Redirected != "" { // a hop to an origin not trusted got no token (the transcript shows the URL)
			with += ", answered by " + Origin(d.x.Redirected) + " after a redirect"
		}
		d.unchecked = fmt.Sprintf("output file %s not checked: refused without a token (%s) and with user %s's bearer token (%s); %s", item.URL, without, as, with, anotherScheme)
	}
	return d
}

// outcome is what the Then steps judge a downloaded file by (outputFilesHoldTheirType, outputFilesAreNDJSON,
// outputFilesAnswerAsTokenRequires, outputFilesRefusedTo): each fails on the first file, in the manifest's
// order, whose outcome it refuses, so that file is the first of its outcome.
type outcome struct {
	status                     int
	ndjson                     bool
	verdict, err, tok, retried bool
}

// headsKept keeps the head of a downloaded file (fileHeadBytes, for the transcript) only while it is the
// first file of its outcome in the manifest's order: every file is judged whole, but an export of 20,000
// files would otherwise hold 20,000 heads, about 80 MiB, of which a failure shows one. The outcomes are
// few (statuses by kinds of answer), so the heads kept are too.
type headsKept struct {
	mu    sync.Mutex
	first map[outcome]int // the lowest index of each outcome so far
}

// judged takes results[i], just downloaded, into account: its head is dropped, or the one of the later file
// of its outcome it replaces.
func (h *headsKept) judged(results []download, i int) {
	d := results[i]
	k := outcome{status: d.x.Status, ndjson: d.x.MediaType() == check.NDJSON, verdict: d.verdict != nil, err: d.err != nil, tok: d.x.TokenWithheld != "", retried: d.refused != nil}
	h.mu.Lock()
	defer h.mu.Unlock()
	j, seen := h.first[k]
	switch {
	case !seen:
		h.first[k] = i
	case i < j:
		h.first[k] = i
		dropHeads(results[j])
	default:
		dropHeads(d)
	}
}

// dropHeads forgets the heads of a download's bodies: its answer's, the refusal's it was asked again after,
// and its Binary's when an empty file was read again so.
func dropHeads(d download) {
	dropHead(d.x)
	if d.refused != nil {
		dropHead(d.refused)
	}
	if d.asBinary != nil {
		dropHead(d.asBinary)
	}
}

// binaryAccept is the Accept of FUT's own read of an export file's Binary (GET_Binary_export.md).
const binaryAccept = "application/fhir+json"

// emptyBinaryFile tells a file that downloaded whole as NDJSON holding nothing, at a Binary's URL
// ([base]/Binary/<id>), in a profile whose files are FUT's Binaries (fut, hapi-8.0: FUT's $export text, "the
// files are Binary resources", and GET_Binary_export.md, which reads one with Accept: application/fhir+json).
// HAPI FHIR answers so for a Binary whose data its externalized binary storage kept (above
// autoInflateBinariesMaximumBytes, 10 MB by default, a read shows the Binary without its data, and its content
// streamed is nothing): only the Binary tells that file from an empty one. bulkdata defines no such read.
func (w *World) emptyBinaryFile(d download, item check.ManifestItem) bool {
	if !definesFUTPollOperation(w.target.Profile) || d.err != nil || d.verdict != nil || d.unchecked != "" || d.undecoded {
		return false
	}
	if d.x.Status != http.StatusOK || d.x.MediaType() != check.NDJSON || d.file.Format != "ndjson" || d.file.Resources != 0 {
		return false
	}
	u, err := url.Parse(item.URL)
	return err == nil && path.Base(path.Dir(u.Path)) == "Binary"
}

// readEmptyFileAsBinary reads an empty file (emptyBinaryFile) once more, as FUT reads an export file's Binary
// (Accept: application/fhir+json), with the token the file was read with. A Binary without data is the empty
// file it looked like. One whose data element carries HAPI's externalized-binary-id extension (check's
// checkDataNotExternalized), or whose data holds resources, says that the file the manifest lists was not
// sent: the file fails, its verdict naming both answers, and the transcript holds both. Any other second
// answer (another status, no Binary, a Binary the checks refuse, a transport failure) changes nothing: the
// read is there to tell an empty file from one the server kept, not to judge the Binary read itself, and the
// empty file stands as it was read, with a line on the log.
func (w *World) readEmptyFileAsBinary(ctx context.Context, d download, token string, item check.ManifestItem, lc lineChecks) download {
	fmt.Fprintf(w.target.Log, "  GET %s: an empty file at a Binary's URL: reading it once more as its Binary (Accept: %s)\n", item.URL, binaryAccept)
	lc.eachLine = nil
	b := w.downloadFile(ctx, token, item, binaryAccept, lc)
	d.asBinary = b.x
	var v *check.Violation
	switch mt := b.x.MediaType(); {
	case b.err != nil || b.x.Status != http.StatusOK || mt != "application/fhir+json" && mt != "application/json":
		fmt.Fprintf(w.target.Log, "  GET %s as its Binary: %s, no Binary to read: the empty file stands\n", item.URL, check.StatusPhrase(b.x.Status))
	case check.IsDataExternalized(b.verdict) && errors.As(b.verdict, &v):
		d.verdict = check.Violationf(v.Requirement, fmt.Sprintf("%s, read as its Binary (Accept %s, as FUT reads its export files) after the file itself came empty (%s to Accept %q)", v.Subject, binaryAccept, check.NDJSON, d.x.RequestHeader.Get("Accept")), v.Expected, v.Got)
	case b.verdict != nil:
		fmt.Fprintf(w.target.Log, "  GET %s as its Binary: %v: the empty file stands\n", item.URL, b.verdict)
	case b.file.Resources > 0:
		d.verdict = check.Violationf("", "output file "+item.URL+" requested as the file itself", fmt.Sprintf("the NDJSON its Binary holds: %d resources (GET with Accept %q)", b.file.Resources, binaryAccept), "an empty %s body", check.NDJSON)
	}
	return d
}

// dropHead forgets the head of a file's body, counting it with the bytes read and judged but not kept.
func dropHead(x *check.Exchange) {
	x.BodyOmitted += int64(len(x.Body))
	x.Body = nil
}

// leftUnchecked records files of the manifest the downloads left unchecked, against the scenario's own
// requirement: EXP-OUTPUT-TOKEN's or EXP-CROSS-USER's downloads leave their own requirement partly checked.
func (w *World) leftUnchecked(reason string) {
	w.export.unchecked = append(w.export.unchecked, reason)
	w.notChecked("", reason)
}

// lineChecks is what judges a file's lines beyond their JSON and type.
type lineChecks struct {
	// typeLines is the budget of lines decoded strictly that the files of the item's type share, with the
	// default sample (Target.FHIRLines, TypeLines).
	typeLines *atomic.Int64
	// eachLine, when set, judges every line further (a deleted file's).
	eachLine func([]byte) error
	// transactionTime, when set (an output file's), is the manifest's: the lines decoded strictly are
	// compared with it (check.FileCheck.TransactionTime).
	transactionTime time.Time
}

// downloadFile sends one GET for an output file and judges its body while it streams. An output file is
// bounded by time (MAX_WAIT for the whole download), not by MAX_BODY: real exports have files of gigabytes.
func (w *World) downloadFile(ctx context.Context, token string, item check.ManifestItem, accept string, lc lineChecks) download {
	header := http.Header{}
	if accept != "" {
		header.Set("Accept", accept)
	}
	x := &check.Exchange{Method: http.MethodGet, URL: item.URL, RequestHeader: header}
	switch {
	case token != "" && w.target.Trusts(item.URL):
		header.Set("Authorization", "Bearer "+token)
	case token != "":
		x.TokenWithheld = untrustedNote(item.URL)
		fmt.Fprintf(w.target.Log, "  GET %s: %s\n", item.URL, x.TokenWithheld)
	}
	d := download{x: x}
	ctx, cancel := context.WithTimeout(ctx, w.target.MaxWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, item.URL, nil)
	if err != nil {
		x.Err = err
		d.err = fmt.Errorf("build request GET %s: %w", item.URL, err)
		return d
	}
	// Asked for by name, not left to Go's transport: its transparent gzip reports a body cut short on the
	// wire and a gzip stream the server cut short alike (io.ErrUnexpectedEOF); decoded here, the transfer's
	// errors are told from the server's bytes (transportErrors, decodeContent). In the exchange's header, so
	// that the transcript shows what the request accepted.
	header.Set("Accept-Encoding", contentCodingAsked)
	req.Header = header.Clone()
	start := time.Now()
	defer func() {
		x.Duration = time.Since(start)
		x.Received = start.Add(x.Duration)
	}()
	var resp *http.Response
	var sent time.Time // of the request answered last: a 401 after 429s answers the retry, sent later
	for n := 0; ; n++ {
		sent = w.target.now() // by the clock token expiry is judged by
		resp, err = w.target.HTTPClient.Do(req.Clone(ctx))
		if err != nil {
			x.Err = describeTransportError(err, ctx, w.target.MaxWait)
			d.err = transportFailure(item.URL, x.Err)
			return d
		}
		x.Status, x.Header = resp.StatusCode, resp.Header
		x.Received = time.Now()
		if u := resp.Request.URL.String(); u != req.URL.String() {
			x.Redirected = u
		}
		// A file server that throttles (429) is waited out as every other request of the scenarios is
		// (w.request): after its Retry-After, or a backoff without one, within the download's time.
		delay, ok := throttleDelay(x, n)
		if deadline, _ := ctx.Deadline(); !ok || time.Now().Add(delay).After(deadline) {
			break
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, fileHeadBytes))
		resp.Body.Close()
		fmt.Fprintf(w.target.Log, "  GET %s: %s, Retry-After %q: asking again in %s\n", item.URL, check.StatusPhrase(x.Status), x.Header.Get("Retry-After"), delay.Round(time.Millisecond))
		if err := check.WaitFor(ctx, delay); err != nil {
			x.Err = err
			d.err = transportFailure(item.URL, fmt.Errorf("waiting out a 429: %w", err))
			return d
		}
	}
	defer resp.Body.Close()
	head := &headKeeper{x: x}
	if x.Status != http.StatusOK { // judged by the step that reads the files; its start is enough to show
		if _, err := io.Copy(head, io.LimitReader(resp.Body, fileHeadBytes)); err != nil {
			x.Err = describeTransportError(err, ctx, w.target.MaxWait)
		}
		if x.TokenWithheld == "" && x.Err == nil {
			x.Err = w.expiredCredential(x, token, sent)
			d.err = x.Err
		}
		return d
	}
	fc := check.FileCheck{StrictLines: w.target.FHIRLines, StrictSample: w.target.FHIRSample, Line: lc.eachLine, JobID: w.exportJobID(), TransactionTime: lc.transactionTime}
	switch {
	case w.target.FHIRLines == NoFHIRLines:
		fc.StrictLines = 0
	case w.target.FHIRLines == 0:
		fc.TypeLines = lc.typeLines
	}
	body, err := decodeContent(x, transportErrors{resp.Body})
	d.unasked = unaskedCoding(x)
	if errors.Is(err, errUndecodable) {
		d.undecoded = true
		return d
	}
	if err == nil {
		d.file, err = check.ReadOutputStream(item, x, io.TeeReader(body, head), fc)
	}
	switch {
	case errors.Is(err, check.ErrNonConformant):
		d.verdict = err
	case err != nil:
		x.Err = describeTransportError(err, ctx, w.target.MaxWait)
		d.err = transportFailure(item.URL, x.Err)
	}
	return d
}

// exportJobID is the scenario's export job id where the profile's sources define it: FUT's polling location
// $export-poll-status?_jobId=<id> (fut, hapi-8.0), whose files HAPI labels with it. "" where unknown.
func (w *World) exportJobID() string {
	if !definesFUTPollOperation(w.target.Profile) || w.export.pollURL == "" {
		return ""
	}
	u, err := url.Parse(w.export.pollURL)
	if err != nil || path.Base(u.Path) != "$export-poll-status" {
		return ""
	}
	return u.Query().Get("_jobId")
}

// transportFailure is a download that got no complete response: an error of the run, charged to no
// requirement (check.ErrTransport), not a deviation of the server's.
func transportFailure(url string, err error) error {
	if errors.Is(err, check.ErrTransport) {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return fmt.Errorf("GET %s: %w: %w", url, check.ErrTransport, err)
}

// transportErrors marks every error of reading a response body but its end as the transport's
// (check.ErrTransport): a connection reset, a chunked body without its last chunk, a body shorter than its
// Content-Length (net/http's io.ErrUnexpectedEOF) are no fault of the bytes the server sent, and a cut last
// line is not the server's invalid JSON.
type transportErrors struct{ r io.Reader }

func (t transportErrors) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%w: %w", check.ErrTransport, err)
	}
	return n, err
}

// contentCodingAsked is the Accept-Encoding of every file request: the one content coding the harness asks for.
const contentCodingAsked = "gzip"

// errUndecodable: the answer's content coding is one the harness cannot decode (br, zstd, or another).
var errUndecodable = errors.New("a content coding the harness cannot decode")

// unaskedCoding is the answer's Content-Encoding when it is a coding the request did not accept, or "".
func unaskedCoding(x *check.Exchange) string {
	switch coding := strings.ToLower(strings.TrimSpace(x.Header.Get("Content-Encoding"))); coding {
	case "", "identity", "gzip", "x-gzip":
		return ""
	default:
		return coding
	}
}

// decodeContent undoes the response's content coding: none, the gzip the request accepted (RFC 9110 §8.4.1),
// or a deflate it did not accept (the zlib format, RFC 9110 §8.4.1.2), which the standard library reads; the
// file is judged as it decodes either way. A stream that is not one, or that ends or breaks inside while its
// transfer was whole, is the server's deviation. Another coding (br, zstd) is errUndecodable: its content is
// not checked, neither failed nor passed.
func decodeContent(x *check.Exchange, body io.Reader) (io.Reader, error) {
	switch coding := strings.ToLower(strings.TrimSpace(x.Header.Get("Content-Encoding"))); coding {
	case "", "identity":
		return body, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, codingError(x, "gzip", err)
		}
		return codingErrors{zr, x, "gzip"}, nil
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return nil, codingError(x, "deflate", err)
		}
		return codingErrors{zr, x, "deflate"}, nil
	default:
		return nil, fmt.Errorf("%w: Content-Encoding %q", errUndecodable, x.Header.Get("Content-Encoding"))
	}
}

// codingErrors turns the errors of a compressed stream into the server's deviation, but the transport's own.
type codingErrors struct {
	r      io.Reader
	x      *check.Exchange
	coding string
}

func (c codingErrors) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = codingError(c.x, c.coding, err)
	}
	return n, err
}

func codingError(x *check.Exchange, coding string, err error) error {
	if errors.Is(err, check.ErrTransport) {
		return err
	}
	format := "gzip"
	if coding == "deflate" {
		format = "deflate (zlib)"
	}
	return check.Violationf("", "body of output file "+x.URL+" (Content-Encoding "+coding+")", "a whole "+format+" stream", "%v", err)
}

// headKeeper keeps the first fileHeadBytes of a body in the exchange and counts the rest.
type headKeeper struct{ x *check.Exchange }

func (h *headKeeper) Write(p []byte) (int, error) {
	if room := fileHeadBytes - len(h.x.Body); room > 0 {
		h.x.Body = append(h.x.Body, p[:min(room, len(p))]...)
		h.x.BodyOmitted += int64(len(p) - min(room, len(p)))
	} else {
		h.x.BodyOmitted += int64(len(p))
	}
	return len(p), nil
}

// DownloadOutputFiles downloads and judges every output file of m as the download steps do (at most
// ParallelDownloads at once, each judged while it streams), outside a scenario: for cmd/benchscale. The
// error is the first failure in the manifest's order: a transport failure, a status other than 200, or a
// file's deviation.
func DownloadOutputFiles(ctx context.Context, t Target, m *check.Manifest, user string) ([]check.OutputFile, error) {
	t, err := t.withDefaults()
	if err != nil {
		return nil, err
	}
	t.Findings = &Findings{}
	w := &World{target: &t, scenario: "download"}
	files, err := w.downloadOutputFiles(ctx, m, user, harnessFileAccept, "")
	if err != nil {
		return nil, err
	}
	if left := t.Findings.NotChecked(); len(left) > 0 {
		return nil, fmt.Errorf("not every output file was checked: %s", left[0].Message)
	}
	out := make([]check.OutputFile, len(files))
	for i, d := range files {
		switch {
		case d.err != nil:
			return nil, d.err
		case d.x.Status != http.StatusOK:
			return nil, check.Violationf("", "download of output file "+d.x.URL, check.StatusPhrase(http.StatusOK), check.StatusPhrase(d.x.Status))
		case d.verdict != nil:
			return nil, d.verdict
		}
		out[i] = d.file
	}
	return out, nil
}

// Of the files a Then step fails, the failure names the first (its violation, the response shown) and the
// next filesNamed, each with its fault in at most faultShown runes beside its URL (itself at most
// maxURLShown): a server that writes one defect into each of HAPI's thousands of files (at most 1,000
// resources a file) shows it is systematic, and where, in a few lines.
const (
	filesNamed = 4
	faultShown = 200
)

// failingFiles is a Then step's failure on several downloaded files: the first file's error, as a step that
// stopped there returned it (its violation and requirement reached through Unwrap), then how many of the
// files checked failed the step and the next filesNamed of them, in the manifest's order. It holds a few
// short strings, whatever the number of files.
type failingFiles struct {
	first           error
	failed, checked int
	next            []string // "<URL>: <fault>", one line each
}

func (f *failingFiles) Unwrap() error { return f.first }

// Error keeps the first file's line first: it is the failure's summary (FailureSummary) in every report and
// in the kill matrix; the lines added follow it, before the requirement's clause and the transcript.
func (f *failingFiles) Error() string {
	var b strings.Builder
	b.WriteString(f.first.Error())
	fmt.Fprintf(&b, "\n%d of %d output files checked failed this step; the next, in the manifest's order:", f.failed, f.checked)
	for _, n := range f.next {
		b.WriteString("\n  " + n)
	}
	if more := f.failed - 1 - len(f.next); more > 0 {
		fmt.Fprintf(&b, "\n  and %d more", more)
	}
	return b.String()
}

// fileFault is a failing file's one line: its URL and its own fault's first line, each clipped; a fault
// that names the URL (as the checks' subjects do) is not preceded by it a second time.
func fileFault(url string, err error) string {
	fault, _, _ := strings.Cut(err.Error(), "\n")
	shownURL := check.Clip(url, maxURLShown)
	if !strings.Contains(fault, url) {
		return shownURL + ": " + check.Clip(fault, faultShown)
	}
	return check.Clip(strings.Replace(fault, url, shownURL, 1), utf8.RuneCountInString(shownURL)+faultShown)
}

// judgeEachFile judges every downloaded file in the manifest's order with judge, which returns a file's
// failure of the step or nil and changes nothing of the World (it may write to the log). The step fails on
// the first failing file, which show puts in the failure's transcript (by default its answer, w.last); with
// more failing files the failure counts them and names the next few (failingFiles). With none, w.last is the
// last file's answer, as the steps left it before.
func (w *World) judgeEachFile(judge func(download) error, show func(download)) error {
	var f failingFiles
	for _, d := range w.export.downloads {
		if f.first == nil {
			w.last = d.x
		}
		err := judge(d)
		if err == nil {
			continue
		}
		f.failed++
		switch {
		case f.first == nil:
			f.first = err
			if show != nil {
				show(d)
			}
		case len(f.next) < filesNamed:
			f.next = append(f.next, fileFault(d.item.URL, err))
		}
	}
	switch f.failed {
	case 0:
		return nil
	case 1:
		return f.first
	}
	f.checked = len(w.export.downloads)
	return &f
}

// showBinaryRead shows the Binary read after an empty file (readEmptyFileAsBinary) when its answer is what
// failed the file: the failure's transcript then holds that answer.
func (w *World) showBinaryRead(d download) {
	if d.verdict != nil && d.asBinary != nil {
		w.last = d.asBinary
	}
}
