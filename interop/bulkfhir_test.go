package interop

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/google/bulk_fhir_tools/bulkfhir"
	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
)

const exportDuration = 5 * time.Second

// manualClock drives the reference server's jobs: the test decides when the export completes, so the client is
// sure to see a running job first.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// seenRequest is what the client sent, for asserting on the client's own behaviour (e.g. no Accept on files).
type seenRequest struct {
	method, path, accept string
	authorized           bool
}

// interopServer is the reference server in-process, behind a recorder. The client only kicks off Patient- or
// Group-level exports ([base]/Patient/$export), while FUT's $export, which the reference server emulates, is
// system-level: the one mapping in this test sends the client's Patient/$export, query and headers unchanged,
// to [base]/$export. Everything after the kick-off (the polling location, the manifest, the file URLs) is
// what the server itself handed out.
type interopServer struct {
	*httptest.Server
	clock *manualClock
	base  string
	// contents is what the export holds, type by type: the counts each file is held to, the manifest
	// counting them in bulkdata only (as HAPI's, which fut and hapi-8.0 emulate, counts none)
	contents map[string]int

	mu   sync.Mutex
	seen []seenRequest
}

func newInteropServer(t *testing.T, profile refserver.Profile) *interopServer {
	t.Helper()
	clock := &manualClock{now: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	srv, err := refserver.NewServer(refserver.Config{Profile: profile, Clock: clock, ExportDuration: exportDuration, RetryAfter: time.Second})
	if err != nil {
		t.Fatalf("start refserver: %v", err)
	}
	contents, err := srv.ExportContents()
	if err != nil {
		t.Fatalf("export contents: %v", err)
	}
	is := &interopServer{clock: clock, contents: map[string]int{}}
	for _, c := range contents {
		if c.Files != 1 {
			t.Fatalf("%s: expected one file, the server's default, got %d", c.Type, c.Files)
		}
		is.contents[c.Type] = c.Resources
	}
	patientExport := refserver.DefaultBasePath + "/Patient/$export"
	is.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		is.seen = append(is.seen, seenRequest{method: r.Method, path: r.URL.Path, accept: r.Header.Get("Accept"), authorized: r.Header.Get("Authorization") != ""})
		is.mu.Unlock()
		if r.URL.Path == patientExport {
			r = r.Clone(r.Context())
			r.URL.Path, r.URL.RawPath = refserver.DefaultBasePath+"/$export", ""
		}
		srv.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(is.Close)
	is.base = is.URL + refserver.DefaultBasePath
	return is
}

func (is *interopServer) requests() []seenRequest {
	is.mu.Lock()
	defer is.mu.Unlock()
	return slices.Clone(is.seen)
}

// staticToken is a bulkfhir.Authenticator that presents one bearer token, as a client holding a token issued
// elsewhere does.
type staticToken string

func (staticToken) Authenticate(*http.Client) error            { return nil }
func (staticToken) AuthenticateIfNecessary(*http.Client) error { return nil }
func (s staticToken) AddAuthenticationToRequest(_ *http.Client, req *http.Request) error {
	req.Header.Set("Authorization", "Bearer "+string(s))
	return nil
}

// manifest is the part of the complete-status body the test checks against what the client downloaded; the
// client itself drops `count`, which the server sends in bulkdata only.
type manifest struct {
	TransactionTime string `json:"transactionTime"`
	Output          []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count *int   `json:"count"`
	} `json:"output"`
}

// TestBulkFHIRToolsClientEndToEnd runs Google's bulk_fhir_tools client through a whole export against the
// reference server, in every profile and with both ways the client authenticates: kick-off, monitoring until
// done, and the download of every output file, every line a JSON resource of the file's type, the counts those
// of the manifest.
func TestBulkFHIRToolsClientEndToEnd(t *testing.T) {
	auths := []struct {
		name string
		new  func(is *interopServer) (bulkfhir.Authenticator, error)
	}{
		{"oauth2 client credentials", func(is *interopServer) (bulkfhir.Authenticator, error) {
			return bulkfhir.NewHTTPBasicOAuthAuthenticator(refserver.DemoClientIDA, refserver.DemoClientSecretA,
				is.URL+refserver.TokenPath, &bulkfhir.HTTPBasicOAuthOptions{Scopes: []string{"system/*.read"}})
		}},
		{"static bearer token", func(*interopServer) (bulkfhir.Authenticator, error) {
			return staticToken(refserver.DemoTokenA), nil
		}},
	}
	for _, profile := range refserver.Profiles {
		for _, auth := range auths {
			t.Run(string(profile)+"/"+auth.name, func(t *testing.T) {
				is := newInteropServer(t, profile)
				authenticator, err := auth.new(is)
				if err != nil {
					t.Fatalf("bulkfhir authenticator: %v", err)
				}
				client, err := bulkfhir.NewClient(is.base, authenticator)
				if err != nil {
					t.Fatalf("bulkfhir client: %v", err)
				}
				defer client.Close()
				runExport(t, is, client)
			})
		}
	}
}

func runExport(t *testing.T, is *interopServer, client *bulkfhir.Client) {
	t.Helper()
	types := []cpb.ResourceTypeCode_Value{cpb.ResourceTypeCode_PATIENT, cpb.ResourceTypeCode_OBSERVATION, cpb.ResourceTypeCode_CARE_PLAN}
	jobURL, err := client.StartBulkDataExportAll(types, time.Time{})
	if err != nil {
		t.Fatalf("kick-off (StartBulkDataExportAll): %v", err)
	}
	if !strings.HasPrefix(jobURL, is.base+"/") {
		t.Fatalf("kick-off: expected a polling location under %s, got %q", is.base, jobURL)
	}

	// The client polls at once; the job runs until the test moves the clock, so the first status is a 202.
	results := client.MonitorJobStatus(jobURL, 50*time.Millisecond, 30*time.Second)
	first, ok := <-results
	if !ok {
		t.Fatal("monitor: the client closed the status channel before any status")
	}
	if first.Error != nil {
		t.Fatalf("monitor: first status: %v", first.Error)
	}
	if first.Status.IsComplete {
		t.Fatal("monitor: expected the first status to be in progress (202), got complete")
	}
	if first.Status.RetryAfter != time.Second {
		t.Fatalf("monitor: expected the client to read Retry-After as 1s, got %s", first.Status.RetryAfter)
	}
	is.clock.Advance(exportDuration)
	var final *bulkfhir.MonitorResult
	for r := range results {
		if r.Error != nil {
			t.Fatalf("monitor: %v", r.Error)
		}
		final = r
	}
	if final == nil || !final.Status.IsComplete {
		t.Fatalf("monitor: expected the job to complete, last status %+v", final)
	}

	m := readManifest(t, jobURL)
	if got, err := time.Parse(time.RFC3339Nano, m.TransactionTime); err != nil || !got.Equal(final.Status.TransactionTime) {
		t.Fatalf("transactionTime: the client read %s, the manifest says %q", final.Status.TransactionTime, m.TransactionTime)
	}
	wantURLs := map[string][]string{}
	wantCount := map[string]int{}
	for _, o := range m.Output {
		wantURLs[o.Type] = append(wantURLs[o.Type], o.URL)
		wantCount[o.URL] = is.contents[o.Type]
		if o.Count != nil && *o.Count != wantCount[o.URL] {
			t.Fatalf("%s: the manifest counts %d %s resources, the export holds %d", o.URL, *o.Count, o.Type, wantCount[o.URL])
		}
	}
	gotURLs := map[string][]string{}
	for code, urls := range final.Status.ResultURLs {
		name, err := bulkfhir.ResourceTypeCodeToName(code)
		if err != nil {
			t.Fatalf("result type %v: %v", code, err)
		}
		gotURLs[name] = slices.Clone(urls)
	}
	for _, urls := range []map[string][]string{wantURLs, gotURLs} {
		for _, u := range urls {
			sort.Strings(u)
		}
	}
	if fmt.Sprint(gotURLs) != fmt.Sprint(wantURLs) {
		t.Fatalf("output files: the client found %v, the manifest lists %v", gotURLs, wantURLs)
	}
	for _, typ := range []string{"CarePlan", "Observation", "Patient"} {
		if len(wantURLs[typ]) == 0 {
			t.Fatalf("manifest: expected a %s file for _type=Patient,Observation,CarePlan, got %v", typ, wantURLs)
		}
	}

	for typ, urls := range gotURLs {
		for _, u := range urls {
			if n := download(t, client, u, typ); n != wantCount[u] {
				t.Fatalf("%s: the client read %d %s resources, the export holds %d", u, n, typ, wantCount[u])
			}
		}
	}

	// What the client sent: the downloads are the IG's Output File Requests without Accept, with the token.
	files := 0
	for _, r := range is.requests() {
		if !strings.HasPrefix(r.path, refserver.DefaultBasePath+"/Binary/") {
			continue
		}
		files++
		if r.accept != "" || !r.authorized {
			t.Fatalf("file request %s: expected no Accept and an Authorization header, got Accept %q, authorized %t", r.path, r.accept, r.authorized)
		}
	}
	if files != len(m.Output) {
		t.Fatalf("file requests: expected %d, the server saw %d", len(m.Output), files)
	}
}

// readManifest reads the complete status the way the IG's client does (Accept: application/json), as user A.
func readManifest(t *testing.T, jobURL string) manifest {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, jobURL, nil)
	if err != nil {
		t.Fatalf("manifest request: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+refserver.DemoTokenA)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", jobURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", jobURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: expected 200 with the manifest, got %d %.200s", jobURL, resp.StatusCode, body)
	}
	var m manifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("GET %s: manifest: %v in %.200s", jobURL, err, body)
	}
	return m
}

// download fetches one output file with the client's GetData and returns how many resources it holds; every
// line must be a JSON object whose resourceType is typ.
func download(t *testing.T, client *bulkfhir.Client, fileURL, typ string) int {
	t.Helper()
	body, err := client.GetData(fileURL)
	if err != nil {
		t.Fatalf("download %s (GetData): %v", fileURL, err)
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		n++
		var res struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(line, &res); err != nil {
			t.Fatalf("%s line %d: expected a JSON resource, got %v in %.120s", fileURL, n, err, line)
		}
		if res.ResourceType != typ {
			t.Fatalf("%s line %d: expected resourceType %s, got %q (%.120s)", fileURL, n, typ, res.ResourceType, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("download %s: %v", fileURL, err)
	}
	return n
}
