package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
)

// fileServer serves n NDJSON files of lines Patients each at /f/<i>, the file bad with its last line cut
// short; it counts the downloads in flight at once, each held until releaseAt downloads are in flight or
// all have begun.
type fileServer struct {
	lines, bad int
	inFlight   atomic.Int32
	peak       atomic.Int32
}

func (s *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		p := s.peak.Load()
		if now <= p || s.peak.CompareAndSwap(p, now) {
			break
		}
	}
	var i int
	fmt.Sscanf(r.URL.Path, "/f/%d", &i)
	w.Header().Set("Content-Type", check.NDJSON)
	for l := 1; l <= s.lines; l++ {
		line := fmt.Sprintf(`{"resourceType":"Patient","id":"%d-%d","birthDate":"1970-01-01"}`, i, l)
		if i == s.bad && l == s.lines {
			line = line[:len(line)-1]
		}
		fmt.Fprintln(w, line)
	}
}

func downloadWorld(t *testing.T, parallel int) *World {
	t.Helper()
	target, err := Target{ExportBaseURL: "http://x/fhir", ReportBaseURL: "http://x/fhir", ParallelDownloads: parallel, FHIRLines: 10, FHIRSample: 0.001, Findings: &Findings{}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return &World{target: &target, scenario: "unit"}
}

func manifestOf(base string, n, lines int) *check.Manifest {
	m := &check.Manifest{}
	for i := range n {
		count := int64(lines)
		m.Output = append(m.Output, check.ManifestItem{Type: "Patient", URL: fmt.Sprintf("%s/f/%d", base, i), Count: &count})
	}
	return m
}

// Files download on several connections at once, never more than PARALLEL_DOWNLOADS, and each is judged on
// its own: the one bad file fails naming its URL and line, in the manifest's order.
func TestOutputFilesDownloadInParallelEachJudgedOnItsOwn(t *testing.T) {
	fs := &fileServer{lines: 2000, bad: 17}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	w := downloadWorld(t, 3)
	m := manifestOf(srv.URL, 24, fs.lines)
	w.export.manifest = m
	if err := w.downloadsOutputFiles(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	if got := fs.peak.Load(); got > 3 {
		t.Errorf("%d downloads at once, PARALLEL_DOWNLOADS is 3", got)
	}
	// the step's transcript keeps its first and last exchanges, as every step's; the downloads are all judged
	if len(w.exchanges) != keepFirstExchanges+keepLastExchanges || w.omitted != 24-len(w.exchanges) || len(w.export.downloads) != 24 {
		t.Fatalf("%d exchanges (%d omitted), %d downloads recorded for 24 files", len(w.exchanges), w.omitted, len(w.export.downloads))
	}
	for i, d := range w.export.downloads {
		if d.x.URL != m.Output[i].URL {
			t.Fatalf("download %d is %s, not the manifest's %s", i, d.x.URL, m.Output[i].URL)
		}
		if i != 17 && (d.verdict != nil || d.file.Resources != 2000 || d.file.Strict < 10) {
			t.Errorf("file %d: %+v %v", i, d.file, d.verdict)
		}
		if len(d.x.Body) > fileHeadBytes || d.x.BodyOmitted == 0 {
			t.Errorf("file %d: kept %d bytes and omitted %d: the transcript keeps the start of a file only", i, len(d.x.Body), d.x.BodyOmitted)
		}
	}
	err := w.outputFilesHoldTheirType(context.Background())
	want := fmt.Sprintf("output file %s/f/17 line 2000", srv.URL)
	if !errors.Is(err, check.ErrNonConformant) || !strings.Contains(err.Error(), want) {
		t.Fatalf("want a violation naming %q, got %v", want, err)
	}
	if w.last.URL != srv.URL+"/f/17" {
		t.Errorf("the failure shows %s, not the bad file", w.last.URL)
	}
	if !strings.Contains(w.last.Transcript(), "more bytes read and judged, not kept") {
		t.Errorf("the transcript does not say the file was cut:\n%s", w.last.Transcript())
	}
}

// The peak above proves the bound; this proves the downloads do overlap: with 4 connections the 4 handlers
// all run at once (each waits for the others), which one connection at a time could never do.
func TestOutputFilesDownloadOnSeveralConnectionsAtOnce(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		arrived.Wait()
		w.Header().Set("Content-Type", check.NDJSON)
		fmt.Fprintln(w, `{"resourceType":"Patient","id":"1"}`)
	}))
	defer srv.Close()
	w := downloadWorld(t, 4)
	w.export.manifest = manifestOf(srv.URL, 4, 1)
	if err := w.downloadsOutputFiles(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	if err := w.outputFilesHoldTheirType(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A file whose connection breaks halfway fails the download step (not the server's verdict), naming it.
func TestAnOutputFileCutByTheTransportFailsTheDownload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", check.NDJSON)
		w.Header().Set("Content-Length", "100000")
		fmt.Fprintln(w, `{"resourceType":"Patient","id":"1"}`)
	}))
	defer srv.Close()
	w := downloadWorld(t, 2)
	w.export.manifest = manifestOf(srv.URL, 2, 1)
	err := w.downloadsOutputFiles(context.Background(), "A")
	if err == nil || errors.Is(err, check.ErrNonConformant) || !strings.Contains(err.Error(), srv.URL+"/f/0") {
		t.Fatalf("want a transport failure naming the first file, got %v", err)
	}
}

// The random sample goes with any number of first lines (FHIR_LINES=N), not only with the default; none
// and all take no sample.
func TestFirstLinesKeepTheRandomSample(t *testing.T) {
	for _, c := range []struct {
		lines, wantLines int
		wantSample       float64
	}{
		{0, DefaultFHIRLines, DefaultFHIRSample},
		{5, 5, DefaultFHIRSample},
		{NoFHIRLines, NoFHIRLines, 0},
	} {
		got, err := Target{ExportBaseURL: "http://x/fhir", ReportBaseURL: "http://x/fhir", FHIRLines: c.lines}.withDefaults()
		if err != nil || got.FHIRLines != c.wantLines || got.FHIRSample != c.wantSample {
			t.Errorf("FHIRLines %d: got %d lines and a sample of %v (%v), want %d and %v", c.lines, got.FHIRLines, got.FHIRSample, err, c.wantLines, c.wantSample)
		}
	}
}

// With the default sample, each type has TypeLines lines decoded strictly, shared by its files: an export
// of up to TypeLines lines per type is decoded whole however the server splits it into files, and a larger
// one pays for TypeLines lines per type, whatever its number of files.
func TestEachTypeHasItsBudgetOfLinesDecoded(t *testing.T) {
	const bad = `{"resourceType":"Patient","id":"x","birthDate":"1970-13-45"}` // valid JSON, invalid FHIR
	type export struct {
		lines   int    // of each file: files 0 to 2 are Patients, 3 and 4 Observations
		badFile string // the file whose last line is bad, if any
	}
	var serving atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := serving.Load().(export)
		n := 0
		fmt.Sscanf(r.URL.Path, "/f/%d", &n)
		w.Header().Set("Content-Type", check.NDJSON)
		for l := 1; l <= e.lines; l++ {
			switch {
			case r.URL.Path == e.badFile && l == e.lines:
				fmt.Fprintln(w, bad)
			case n < 3:
				fmt.Fprintf(w, `{"resourceType":"Patient","id":"%d-%d"}`+"\n", n, l)
			default:
				fmt.Fprintf(w, `{"resourceType":"Observation","id":"%d-%d","status":"final","code":{"text":"x"}}`+"\n", n, l)
			}
		}
	}))
	defer srv.Close()
	run := func(e export) *World {
		t.Helper()
		serving.Store(e)
		target, err := Target{ExportBaseURL: "http://x/fhir", ReportBaseURL: "http://x/fhir", FHIRSample: 1e-300, Findings: &Findings{}}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		w := &World{target: &target, scenario: "unit"}
		w.export.manifest = &check.Manifest{}
		for i := range 5 {
			typ := map[bool]string{true: "Patient", false: "Observation"}[i < 3]
			w.export.manifest.Output = append(w.export.manifest.Output, check.ManifestItem{Type: typ, URL: fmt.Sprintf("%s/f/%d", srv.URL, i)})
		}
		if err := w.downloadsOutputFiles(context.Background(), "A"); err != nil {
			t.Fatal(err)
		}
		return w
	}
	strict := func(w *World) map[string]int {
		by := map[string]int{}
		for _, d := range w.export.downloads {
			if d.verdict != nil {
				t.Errorf("%s: %v", d.item.URL, d.verdict)
			}
			by[d.item.Type] += d.file.Strict
		}
		return by
	}

	// A small export split into files: every line decoded, the last file's last line among them.
	if got, want := strict(run(export{lines: 3})), map[string]int{"Patient": 9, "Observation": 6}; !maps.Equal(got, want) {
		t.Errorf("small export: lines decoded strictly %v, want %v", got, want)
	}
	last := srv.URL + "/f/2 line 3"
	if err := run(export{lines: 3, badFile: "/f/2"}).outputFilesHoldTheirType(context.Background()); !errors.Is(err, check.ErrNonConformant) || !strings.Contains(err.Error(), last) {
		t.Errorf("want %s refused, got %v", last, err)
	}
	// A larger one: the budget, and no more, for each type.
	big := TypeLines*2/3 + 1 // two files of a type are more than its budget
	if got, want := strict(run(export{lines: big})), map[string]int{"Patient": TypeLines, "Observation": TypeLines}; !maps.Equal(got, want) {
		t.Errorf("%d lines a file: lines decoded strictly %v, want %v", big, got, want)
	}
}

// The files a manifest lists under error are downloaded and judged too, as OperationOutcomes: BDA2 has
// them hold OperationOutcome resources at URLs that SHALL be accessible. They were never fetched. An error
// item of another type fails the manifest check already (check.TestManifestURLsAreAbsoluteAndErrorFilesOperationOutcomes).
// The manifest's deleted files likewise, each line judged as BDA2 has it: a transaction Bundle of DELETE
// entries; a Bundle of another kind fails naming its line.
func TestErrorAndDeletedFilesAreDownloadedAndJudged(t *testing.T) {
	const (
		outcome = `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Patient/7 could not be read"}]}`
		deletes = `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/3"}}]}`
	)
	files := map[string]string{
		"/out":        `{"resourceType":"Patient","id":"1"}` + "\n",
		"/errors":     outcome + "\n" + outcome + "\n",
		"/patient":    `{"resourceType":"Patient","id":"2"}` + "\n",
		"/deleted":    deletes + "\n" + deletes + "\n",
		"/collection": deletes + "\n" + strings.Replace(deletes, "transaction", "collection", 1) + "\n",
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", check.NDJSON)
		_, _ = io.WriteString(w, body)
	}))
	defer ts.Close()
	outcomes := func(path string) check.Manifest {
		return check.Manifest{Error: []check.ManifestItem{{Type: "OperationOutcome", URL: ts.URL + path}}}
	}
	deleted := func(path string) check.Manifest {
		return check.Manifest{Deleted: []check.ManifestItem{{Type: "Bundle", URL: ts.URL + path}}}
	}
	for name, c := range map[string]struct {
		m     check.Manifest
		fails string // what the extra file's verdict names; "" passes
	}{
		"OperationOutcomes":                 {outcomes("/errors"), ""},
		"Patients under error":              {outcomes("/patient"), "line 1"},
		"an error URL that does not work":   {outcomes("/gone"), "404"},
		"transactions of DELETEs":           {deleted("/deleted"), ""},
		"a collection on line 2 of deleted": {deleted("/collection"), "line 2: expected a transaction Bundle"},
		"a deleted URL that does not work":  {deleted("/gone"), "404"},
	} {
		w := downloadWorld(t, 2)
		m := &c.m
		m.Output = []check.ManifestItem{{Type: "Patient", URL: ts.URL + "/out"}}
		got, err := w.downloadOutputFiles(context.Background(), m, "", "", "")
		if err != nil || len(got) != 2 {
			t.Fatalf("%s: %d downloads, %v", name, len(got), err)
		}
		w.export.manifest, w.export.downloads = m, got
		err = w.outputFilesHoldTheirType(context.Background())
		switch {
		case c.fails == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.fails != "" && (err == nil || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: want a failure naming %q, got %v", name, c.fails, err)
		}
	}
}

// An export of thousands of files whose download fails on one: the step's transcript keeps its first and
// last exchanges, as every step does, and ends on the file that failed, which the reproducer requests; it
// never holds every file of the manifest (20,000 files wrote 48 MB to the console and 119 MB of
// cucumber.json).
func TestADownloadStepOfManyFilesKeepsItsTranscriptBoundedAndEndsOnTheFailedFile(t *testing.T) {
	const files, cut = 300, 200
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", check.NDJSON)
		if r.URL.Path == fmt.Sprintf("/f/%d", cut) {
			w.Header().Set("Content-Length", "100000") // then fewer bytes: a transfer cut short
		}
		fmt.Fprintln(w, `{"resourceType":"Patient","id":"1"}`)
	}))
	defer srv.Close()
	w := downloadWorld(t, 4)
	w.target.MaxFiles = files
	w.export.manifest = manifestOf(srv.URL, files, 1)
	err := w.downloadsOutputFiles(context.Background(), "A")
	failedURL := fmt.Sprintf("%s/f/%d", srv.URL, cut)
	if err == nil || !strings.Contains(err.Error(), failedURL) {
		t.Fatalf("want the download to fail naming %s, got %v", failedURL, err)
	}
	if n := len(w.exchanges); n > keepFirstExchanges+keepLastExchanges {
		t.Errorf("the step keeps %d exchanges, more than its first %d and last %d", n, keepFirstExchanges, keepLastExchanges)
	}
	msg := w.failure(err).Error()
	if n := strings.Count(msg, "> GET "); n > keepFirstExchanges+keepLastExchanges {
		t.Errorf("the failure's transcript shows %d requests of %d files", n, files)
	}
	if !strings.Contains(msg, "exchanges omitted") {
		t.Errorf("the transcript does not say that exchanges were omitted:\n%s", msg)
	}
	if !strings.Contains(msg, "reproduce the last request:\n  curl") || !strings.HasSuffix(strings.TrimSpace(msg), "'"+failedURL+"'") {
		t.Errorf("the reproducer does not request the failed file %s:\n%s", failedURL, msg)
	}
	if w.last.URL != failedURL {
		t.Errorf("the response under test is %s, not the failed file", w.last.URL)
	}
}

// Every file is judged whole, but once judged, a file that answered as an earlier one did (the same status,
// NDJSON or not, a verdict or none) keeps no head: the Then steps fail on the first file of an outcome in the
// manifest's order, whose head stays for the transcript. Kept for every file, the heads of an export of
// 20,000 files held about 80 MiB.
func TestOutputFilesKeepTheHeadOfTheFirstFileOfEachOutcomeOnly(t *testing.T) {
	fs := &fileServer{lines: 200, bad: 17}
	srv := httptest.NewServer(fs)
	defer srv.Close()
	w := downloadWorld(t, 4)
	w.export.manifest = manifestOf(srv.URL, 40, fs.lines)
	if err := w.downloadsOutputFiles(context.Background(), "A"); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for i, d := range w.export.downloads {
		if d.x.BodyOmitted == 0 {
			t.Errorf("file %d: no byte counted as read and judged", i)
		}
		switch {
		case i == 0 || i == 17:
			if len(d.x.Body) != fileHeadBytes {
				t.Errorf("file %d, the first of its outcome, kept %d bytes of its head, want %d", i, len(d.x.Body), fileHeadBytes)
			}
		case len(d.x.Body) > 0:
			t.Errorf("file %d answered as file 0 did, but kept %d bytes", i, len(d.x.Body))
		}
		kept += len(d.x.Body)
	}
	if kept > 2*fileHeadBytes {
		t.Errorf("%d bytes of heads kept for 40 files of two outcomes", kept)
	}
	err := w.outputFilesHoldTheirType(context.Background())
	if !errors.Is(err, check.ErrNonConformant) || w.last.URL != srv.URL+"/f/17" || !strings.Contains(w.last.Transcript(), `"id":"17-1"`) {
		t.Fatalf("want the bad file's failure with its head in the transcript, got %v\n%s", err, w.last.Transcript())
	}
}

// A manifest of requiresAccessToken false over files refused without a token: on an origin trusted with the
// token, each refused file (401, 403, or a store's hiding 404) is asked once more with the owner's token, and
// judged on that answer if it reads the file; refused again, it is not checked, naming both answers. On an
// origin not trusted, the token never goes there: the file is not checked, naming TRUSTED_ORIGINS.
func TestAFileRefusedWithoutATokenUnderRequiresAccessTokenFalse(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]string{} // path → Authorization of each request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Get("Authorization"))
		mu.Unlock()
		bearer := r.Header.Get("Authorization") == "Bearer tok-a"
		switch {
		case r.URL.Path == "/bearer" && bearer: // needs the $export's token after all
			w.Header().Set("Content-Type", check.NDJSON)
			fmt.Fprintln(w, `{"resourceType":"Patient","id":"p1"}`)
		case r.URL.Path == "/bearer":
			w.WriteHeader(http.StatusUnauthorized)
		case r.URL.Path == "/hidden": // a store that hides what it will not show, with or without the token
			w.WriteHeader(http.StatusNotFound)
		default: // another scheme: refused either way
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer srv.Close()
	count := int64(1)
	m := &check.Manifest{RequiresAccessToken: false}
	for _, p := range []string{"/bearer", "/hidden", "/scheme"} {
		m.Output = append(m.Output, check.ManifestItem{Type: "Patient", URL: srv.URL + p, Count: &count})
	}
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			mu.Lock()
			clear(seen)
			mu.Unlock()
			w := downloadWorld(t, 2)
			w.target.Credentials = StaticTokens(map[string]string{"A": "tok-a"})
			if trusted {
				w.target.TrustedOrigins = []string{Origin(srv.URL)}
			}
			w.export.manifest, w.export.owner = m, "A"
			if err := w.requestsOutputFilesWithoutToken(context.Background()); err != nil {
				t.Fatal(err)
			}
			var left []string
			for _, f := range w.target.Findings.NotChecked() {
				left = append(left, f.Message)
			}
			err := w.outputFilesAnswerAsTokenRequires(context.Background())
			if !trusted {
				for p, auth := range seen {
					if len(auth) != 1 || auth[0] != "" {
						t.Errorf("%s on an origin not trusted: requests %q, want one without a token", p, auth)
					}
				}
				if len(left) != 3 || !strings.Contains(left[0], "not asked again with user A's token: token not sent: origin "+Origin(srv.URL)+" is not trusted") {
					t.Errorf("want the three files not checked, naming TRUSTED_ORIGINS; got %q", left)
				}
				if !errors.Is(err, godog.ErrSkip) {
					t.Errorf("no file checked: want a skip, got %v", err)
				}
				return
			}
			if got := seen["/bearer"]; len(got) != 2 || got[0] != "" || got[1] != "Bearer tok-a" {
				t.Errorf("/bearer: requests %q, want one without a token then one with it", got)
			}
			if len(left) != 2 || !strings.Contains(left[0], "/hidden not checked: refused without a token (404 Not Found) and with user A's bearer token (404 Not Found)") ||
				!strings.Contains(left[1], "/scheme not checked: refused without a token (403 Forbidden) and with user A's bearer token (403 Forbidden)") {
				t.Errorf("want /hidden and /scheme not checked, naming both answers; got %q", left)
			}
			var v *check.Violation
			if !errors.As(err, &v) || !strings.Contains(v.Error(), "/bearer requested without a token, then with user A's") || !strings.Contains(v.Got, "401 Unauthorized without a token and 200 OK with user A's bearer token") {
				t.Fatalf("want EXP-OUTPUT-TOKEN failed on /bearer, got %v", err)
			}
			// the step's transcript is both requests of the file, without the token first
			if got := w.exchanges[w.stepStart:]; len(got) < 2 || got[len(got)-2].Status != http.StatusUnauthorized || got[len(got)-1].Status != http.StatusOK {
				t.Errorf("want the verdict's transcript to end on the refusal and the answer with the token")
			}
			// the files read with the token are judged as any file by EXP-OUTPUT
			w.export.downloads = nil
			if err := w.downloadsOutputFiles(context.Background(), "A"); err != nil {
				t.Fatal(err)
			}
			if err := w.outputFilesHoldTheirType(context.Background()); err != nil {
				t.Errorf("EXP-OUTPUT judges the file read with the token: %v", err)
			}
		})
	}
}

// Azure Blob Storage refuses a request without a credential, on a storage account that allows no anonymous
// access, with 409 Conflict and the error code PublicAccessNotPermitted (x-ms-error-code and the XML body):
// under requiresAccessToken false (Microsoft's FHIR server's blobs) the file is not checked, as for a 403.
// Another 409 is no refusal of a credential: it is judged, and fails.
func TestAzureStoragesRefusalOfAnonymousAccessIsNotCheckedAnyOther409Fails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		switch r.URL.Path {
		case "/header":
			w.Header().Set("x-ms-error-code", "PublicAccessNotPermitted")
			w.WriteHeader(http.StatusConflict)
		case "/body": // an anonymous request is served at the account's default service version, which may predate x-ms-error-code
			w.WriteHeader(http.StatusConflict)
			fmt.Fprint(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>PublicAccessNotPermitted</Code><Message>Public access is not permitted on this storage account.</Message></Error>`)
		default:
			w.Header().Set("x-ms-error-code", "BlobBeingRehydrated")
			w.WriteHeader(http.StatusConflict)
		}
	}))
	defer srv.Close()
	count := int64(1)
	m := &check.Manifest{RequiresAccessToken: false}
	for _, p := range []string{"/header", "/body", "/other"} {
		m.Output = append(m.Output, check.ManifestItem{Type: "Patient", URL: srv.URL + p, Count: &count})
	}
	w := downloadWorld(t, 2)
	w.target.Credentials = StaticTokens(map[string]string{"A": "tok-a"})
	w.export.manifest, w.export.owner = m, "A"
	if err := w.requestsOutputFilesWithoutToken(context.Background()); err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, f := range w.target.Findings.NotChecked() {
		left = append(left, f.Message)
	}
	if len(left) != 2 || !strings.Contains(left[0], "/header not checked: refused without a token (409 Conflict)") ||
		!strings.Contains(left[1], "/body not checked: refused without a token (409 Conflict)") {
		t.Errorf("want Azure's two refusals not checked; got %q", left)
	}
	var v *check.Violation
	if err := w.outputFilesAnswerAsTokenRequires(context.Background()); !errors.As(err, &v) || !strings.Contains(v.Error(), "/other") {
		t.Fatalf("want EXP-OUTPUT-TOKEN failed on /other, a 409 that refuses no credential; got %v", err)
	}
}
