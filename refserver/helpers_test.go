package refserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock the test advances.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2025, 12, 5, 11, 33, 54, 465_000_000, time.UTC)}
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

const (
	tokenA = DemoTokenA
	tokenB = DemoTokenB
)

// env is one running test server.
type env struct {
	t     *testing.T
	clock *manualClock
	base  string // FHIR base URL
	root  string // server root URL
	// client is the test server's own: httptest.Server.Close closes http.DefaultTransport's idle connections,
	// which broke a request of a parallel test that was about to reuse one ("CloseIdleConnections called").
	client *http.Client
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	e, _ := newServerEnv(t, cfg)
	return e
}

// newServerEnv is newEnv that also hands back the Server, for tests that look at its state.
func newServerEnv(t *testing.T, cfg Config) (*env, *Server) {
	t.Helper()
	clk := newManualClock()
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	bp := cfg.BasePath
	if bp == "" {
		bp = "/fhir"
	}
	return &env{t: t, clock: clk, base: ts.URL + bp, root: ts.URL, client: ts.Client()}, srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// req is one request; url may be relative to the FHIR base ("/$export").
type req struct {
	method  string
	url     string
	token   string
	headers map[string]string
	body    string
}

func (e *env) do(r req) response {
	e.t.Helper()
	u := r.url
	if !strings.HasPrefix(u, "http") {
		u = e.base + u
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, u, body)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	resp, err := e.client.Do(hr)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(url, token string) response {
	e.t.Helper()
	return e.do(req{method: http.MethodGet, url: url, token: token})
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status: expected %d, got %d; body: %s", want, r.status, r.body)
	}
}

type testOO struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string `json:"severity"`
		Code        string `json:"code"`
		Diagnostics string `json:"diagnostics"`
	} `json:"issue"`
}

// wantOO checks r is an OperationOutcome answer with the status and issue code,
// and returns its diagnostics.
func wantOO(t *testing.T, r response, status int, severity, code string) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Fatalf("content-type: expected application/fhir+json, got %q", ct)
	}
	return wantOOBody(t, r, status, severity, code)
}

// wantOOBody is wantOO whatever the Content-Type, for an answer that emulates HAPI's (none on a DELETE).
func wantOOBody(t *testing.T, r response, status int, severity, code string) string {
	t.Helper()
	wantStatus(t, r, status)
	var oo testOO
	if err := json.Unmarshal(r.body, &oo); err != nil {
		t.Fatalf("decode OperationOutcome: %v; body: %s", err, r.body)
	}
	if oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 {
		t.Fatalf("expected one-issue OperationOutcome, got %s", r.body)
	}
	if oo.Issue[0].Severity != severity || oo.Issue[0].Code != code || oo.Issue[0].Diagnostics == "" {
		t.Fatalf("issue: expected %s/%s with diagnostics, got %s", severity, code, r.body)
	}
	return oo.Issue[0].Diagnostics
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// wantNDJSON holds an output file's answer to NDJSON: its Content-Type, count lines, each a typ resource.
func wantNDJSON(t *testing.T, what string, r response, typ string, count int) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/fhir+ndjson" {
		t.Fatalf("%s: expected Content-Type application/fhir+ndjson, got %q", what, ct)
	}
	lines := bytes.Split(bytes.TrimSuffix(r.body, []byte("\n")), []byte("\n"))
	if len(lines) != count {
		t.Fatalf("%s: expected %d NDJSON lines of %s, got %d", what, count, typ, len(lines))
	}
	for _, l := range lines {
		var res struct{ ResourceType string }
		decodeJSON(t, l, &res)
		if res.ResourceType != typ {
			t.Fatalf("%s: expected %s lines, got %q", what, typ, res.ResourceType)
		}
	}
}
