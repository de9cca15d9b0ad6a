package refserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func TestHealthzAndMetadataNeedNoAuth(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.get(e.root+"/healthz", "")
	wantStatus(t, r, http.StatusOK)
	if string(r.body) != "ok" {
		t.Fatalf("healthz: expected ok, got %q", r.body)
	}

	r = e.get("/metadata", "")
	wantStatus(t, r, http.StatusOK)
	var cs struct {
		ResourceType, Status, Kind, FHIRVersion string
		Rest                                    []struct {
			Mode     string
			Resource []struct {
				Type        string
				Interaction []struct{ Code string }
			}
			Operation []struct{ Name, Definition string }
		}
	}
	decodeJSON(t, r.body, &cs)
	if cs.ResourceType != "CapabilityStatement" || cs.Status != "active" || cs.Kind != "instance" || cs.FHIRVersion != "4.0.1" ||
		len(cs.Rest) != 1 || cs.Rest[0].Mode != "server" {
		t.Fatalf("capability statement: got %s", r.body)
	}
	ops := map[string]bool{}
	for _, op := range cs.Rest[0].Operation {
		ops[op.Name] = true
	}
	for _, want := range []string{"export", "export-poll-status", "get-report-job-status", "execute-patient-usage-stats", "schedule-ssl-orders"} {
		if !ops[want] {
			t.Fatalf("operation %s: missing from %s", want, r.body)
		}
	}
	if len(ops) != 3+2*len(reportTypes) {
		t.Fatalf("operations: expected %d, got %d", 3+2*len(reportTypes), len(ops))
	}
	if len(cs.Rest[0].Resource) != 1 || cs.Rest[0].Resource[0].Type != "Binary" || cs.Rest[0].Resource[0].Interaction[0].Code != "read" {
		t.Fatalf("resources: expected Binary read")
	}
}

// In bulkdata the statement declares the HL7 IG (instantiates, and the IG's $export); in fut and hapi-8.0 it is
// FUT's, which names no IG.
func TestCapabilityStatementPerProfile(t *testing.T) {
	for _, p := range Profiles {
		t.Run(string(p), func(t *testing.T) {
			e := newEnv(t, Config{Profile: p})
			r := e.get("/metadata", "")
			wantStatus(t, r, http.StatusOK)
			var cs struct {
				Instantiates []string
				Rest         []struct {
					Operation []struct{ Name, Definition string }
				}
			}
			decodeJSON(t, r.body, &cs)
			wantInstantiates, wantExport := []string(nil), operationDefinitionBase+"export"
			if p == ProfileBulkData {
				wantInstantiates, wantExport = []string{bulkDataCapabilityStatement}, bulkDataExportDefinition
			}
			if !slices.Equal(cs.Instantiates, wantInstantiates) {
				t.Errorf("instantiates: expected %q, got %q", wantInstantiates, cs.Instantiates)
			}
			for _, op := range cs.Rest[0].Operation {
				if op.Name == "export" && op.Definition != wantExport {
					t.Errorf("$export definition: expected %s, got %s", wantExport, op.Definition)
				}
				if op.Name == "export-poll-status" && op.Definition != operationDefinitionBase+"export-poll-status" {
					t.Errorf("$export-poll-status definition: expected FUT's, got %s", op.Definition)
				}
			}
		})
	}
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t, Config{})
	paths := []req{
		{method: http.MethodGet, url: "/$export", headers: asyncHdr},
		{method: http.MethodPost, url: "/$export", headers: asyncHdr},
		{method: http.MethodGet, url: "/$export-poll-status?_jobId=x"},
		{method: http.MethodDelete, url: "/$export-poll-status?_jobId=x"},
		{method: http.MethodGet, url: "/Binary/1"},
		{method: http.MethodGet, url: "/$get-report-job-status"},
		{method: http.MethodPost, url: "/$get-report-job-status"},
		{method: http.MethodPost, url: "/$execute-patient-total"},
		{method: http.MethodPost, url: "/$schedule-patient-total"},
	}
	for _, p := range paths {
		for _, auth := range []string{"", "Bearer", "Bearer wrong-token", "Basic " + tokenA, tokenA} {
			t.Run(p.method+" "+p.url+" "+auth, func(t *testing.T) {
				h := map[string]string{}
				for k, v := range p.headers {
					h[k] = v
				}
				if auth != "" {
					h["Authorization"] = auth
				}
				r := e.do(req{method: p.method, url: p.url, headers: h})
				wantOO(t, r, http.StatusUnauthorized, sevError, codeLogin)
				if got := r.header.Get("WWW-Authenticate"); got != "Bearer" {
					t.Fatalf("www-authenticate: expected Bearer, got %q", got)
				}
			})
		}
	}
	// The scheme is case-insensitive.
	wantStatus(t, e.do(req{method: http.MethodGet, url: "/$get-report-job-status", headers: map[string]string{"Authorization": "bearer " + tokenA}}), http.StatusOK)
}

func TestFallbacksAreOperationOutcomes(t *testing.T) {
	e := newEnv(t, Config{})
	for _, u := range []string{e.root + "/", e.root + "/nope", "/Patient", "/Patient/1", "/$unknown-op", "/Binary"} {
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			wantOO(t, e.do(req{method: m, url: u, token: tokenA, headers: fhirJSONHdr}), http.StatusNotFound, sevError, codeNotFound)
		}
	}
	cases := map[string]string{
		http.MethodPost + " " + "/metadata":               "GET, HEAD",
		http.MethodDelete + " " + "/metadata":             "GET, HEAD",
		http.MethodPut + " " + "/$export":                 "GET, POST", // HEAD would kick off: refused (TestHeadOfExportStartsNoJob)
		http.MethodDelete + " " + "/Binary/abc":           "GET, HEAD",
		http.MethodPost + " " + e.root + "/healthz":       "GET, HEAD",
		http.MethodPut + " " + "/$execute-careteam-stats": "POST",
	}
	for mu, allow := range cases {
		m, u, _ := strings.Cut(mu, " ")
		r := e.do(req{method: m, url: u})
		wantOO(t, r, http.StatusMethodNotAllowed, sevError, codeNotSupported)
		if got := r.header.Get("Allow"); got != allow {
			t.Fatalf("%s allow: expected %q, got %q", mu, allow, got)
		}
	}
}

func TestOversizedBody(t *testing.T) {
	e := newEnv(t, Config{MaxBodyBytes: 64})
	big := anonParams(strings.Repeat("x", 200))
	for _, u := range []string{"/$execute-patient-total", "/$get-report-job-status"} {
		r := e.do(req{method: http.MethodPost, url: u, token: tokenA, headers: fhirJSONHdr, body: big})
		wantOO(t, r, http.StatusRequestEntityTooLarge, sevError, codeTooCostly)
	}
	r := e.do(req{method: http.MethodPost, url: "/$export", token: tokenA,
		headers: map[string]string{"Prefer": "respond-async", "Content-Type": "application/fhir+json"}, body: big})
	wantOO(t, r, http.StatusRequestEntityTooLarge, sevError, codeTooCostly)
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := []string{tokenA, tokenB}[g%2]
			for i := range 5 {
				if err := concurrentRound(e, token, g, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			e.clock.Advance(500 * time.Millisecond)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	b, _ := e.jobStatus(tokenA)
	if len(b.Entry) != 15 {
		t.Fatalf("user A jobs: expected 15, got %d", len(b.Entry))
	}
}

// concurrentRound runs one kick-off/poll/report/status round without
// t.Fatal (it runs off the test goroutine).
func concurrentRound(e *env, token string, g, i int) error {
	do := func(method, url string, h map[string]string, body string) (*http.Response, error) {
		var rd *strings.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		var hr *http.Request
		var err error
		if rd != nil {
			hr, err = http.NewRequest(method, url, rd)
		} else {
			hr, err = http.NewRequest(method, url, nil)
		}
		if err != nil {
			return nil, err
		}
		hr.Header.Set("Authorization", "Bearer "+token)
		for k, v := range h {
			hr.Header.Set(k, v)
		}
		resp, err := e.client.Do(hr)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		return resp, nil
	}
	resp, err := do(http.MethodGet, e.base+"/$export", asyncHdr, "")
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("goroutine %d round %d kick-off: expected 202, got %d", g, i, resp.StatusCode)
	}
	poll := resp.Header.Get("Content-Location")
	if resp, err = do(http.MethodGet, poll, nil, ""); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("poll: expected 202 or 200, got %d", resp.StatusCode)
	}
	if i%2 == 0 {
		if _, err = do(http.MethodDelete, poll, nil, ""); err != nil {
			return err
		}
	}
	if resp, err = do(http.MethodPost, e.base+"/$execute-careteam-stats", fhirJSONHdr, anonParams("ANONYMIZED")); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("report: expected 200, got %d", resp.StatusCode)
	}
	if resp, err = do(http.MethodGet, e.base+"/$get-report-job-status", nil, ""); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: expected 200, got %d", resp.StatusCode)
	}
	if resp, err = do(http.MethodGet, e.base+"/Binary/1", nil, ""); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
		return fmt.Errorf("binary: expected 200 or 404, got %d", resp.StatusCode)
	}
	return nil
}

func TestNewServerValidatesConfig(t *testing.T) {
	cases := map[string]Config{
		"duplicate tokens":  {Users: []User{{Token: "t", ID: "1"}, {Token: "t", ID: "2"}}},
		"empty users":       {Users: []User{}},
		"empty token":       {Users: []User{{Token: "", ID: "1"}}},
		"empty id":          {Users: []User{{Token: "t"}}},
		"negative duration": {ExportDuration: -time.Second},
		"negative body cap": {MaxBodyBytes: -1},
		"relative base":     {BasePath: "fhir"},
		"base with brace":   {BasePath: "/{x}"},
		"bad public url":    {PublicBaseURL: "ftp://x/fhir"},
		"public url query":  {PublicBaseURL: "https://x/fhir?a=b"},
		"no data files":     {Data: fstest.MapFS{"readme.txt": {Data: []byte("x")}}},
		"bad file name":     {Data: fstest.MapFS{"patient.ndjson": {Data: []byte(`{"resourceType":"patient","id":"1"}`)}}},
		"bad json line":     {Data: fstest.MapFS{"Patient.ndjson": {Data: []byte("{\n")}}},
		"wrong type":        {Data: fstest.MapFS{"Patient.ndjson": {Data: []byte(`{"resourceType":"Observation","id":"1"}`)}}},
		"no id":             {Data: fstest.MapFS{"Patient.ndjson": {Data: []byte(`{"resourceType":"Patient"}`)}}},
		"bad lastUpdated":   {Data: fstest.MapFS{"Patient.ndjson": {Data: []byte(`{"resourceType":"Patient","id":"1","meta":{"lastUpdated":"2024"}}`)}}},
		"unreadable file":   {Data: errFS{}},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := NewServer(cfg); err == nil {
				t.Fatalf("NewServer: expected an error")
			}
		})
	}
}

// errFS lists one data file that cannot be read.
type errFS struct{}

func (errFS) Open(name string) (fs.File, error) {
	if name == "." {
		return fstest.MapFS{"Patient.ndjson": {}}.Open(".")
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("unreadable")}
}

func TestDataOverride(t *testing.T) {
	data := fstest.MapFS{
		"Device.ndjson": {Data: []byte("{\"resourceType\":\"Device\",\"id\":\"d1\"}\n\n{\"resourceType\":\"Device\",\"id\":\"d2\",\"meta\":{\"lastUpdated\":\"2020-01-01T00:00:00Z\"}}\n")},
		"Empty.ndjson":  {Data: []byte("\n")},
	}
	e := newEnv(t, Config{Data: data})
	poll := e.kickoff(tokenA, "")
	e.clock.Advance(DefaultExportDuration)
	m, r := e.manifest(poll, tokenA)
	if len(m.Output) != 1 || m.Output[0].Type != "Device" || e.resources(m.Output[0]) != 2 {
		t.Fatalf("output: expected Device(2), got %s", r.body)
	}
	// Resources without meta.lastUpdated are kept by _since.
	poll = e.kickoff(tokenA, "?_since=2021-01-01T00:00:00Z")
	e.clock.Advance(DefaultExportDuration)
	if m, r = e.manifest(poll, tokenA); len(m.Output) != 1 || e.resources(m.Output[0]) != 1 {
		t.Fatalf("output with _since: expected Device(1), got %s", r.body)
	}
}

func TestDefaultUsers(t *testing.T) {
	us := DefaultUsers()
	if len(us) != 2 || us[0].Token != "demo-token-a" || !us[0].MayReadNonAnonymized || us[1].Token != "demo-token-b" || us[1].MayReadNonAnonymized {
		t.Fatalf("default users: got %+v", us)
	}
	us[0].Token = "changed"
	if DefaultUsers()[0].Token != "demo-token-a" {
		t.Fatalf("DefaultUsers must return a fresh slice")
	}
}
