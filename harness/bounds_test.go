package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests of the run's bounds against hostile servers (issue 11): secrets never written, tokens only to the
// trusted origins, memory, report size and time bounded whatever the server sends.

// boundedRun runs cfg against handler and returns everything the run wrote: the console and progress output,
// the error, and each report file's content.
func boundedRun(t *testing.T, handler http.Handler, cfg Config) (Result, map[string]string) {
	t.Helper()
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	if cfg.Target == "" {
		cfg.Target = ts.URL + "/fhir"
	}
	var out, log bytes.Buffer
	cfg.Out, cfg.Log, cfg.ReportsDir = &out, &log, t.TempDir()
	res, err := Run(context.Background(), cfg)
	written := map[string]string{"stdout": out.String(), "stderr": log.String()}
	if err != nil {
		written["error"] = err.Error()
	}
	for _, f := range []string{"junit.xml", "cucumber.json", "index.html"} {
		raw, readErr := os.ReadFile(filepath.Join(cfg.ReportsDir, f))
		if readErr != nil {
			t.Fatalf("report %s not written: %v (run error %v)\n%s", f, readErr, err, tailOf(out.String()))
		}
		written[f] = string(raw)
	}
	return res, written
}

// A server that echoes the Authorization header in every answer's headers and body: the token must appear
// in no output, in none of its escaped forms, while the echo itself stays visible (redacted).
func TestHostileEchoedTokenIsRedactedEverywhere(t *testing.T) {
	const tokenA, tokenB = "tok+en/<a>&secret==", "second-user-token-b"
	echo := every(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		w.Header().Set("X-Echo", auth)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":%q}],"raw":"%s"}`, "you sent "+auth, auth)
	})
	res, written := boundedRun(t, echo, Config{Token: tokenA, TokenB: tokenB, MaxWait: 2 * time.Second, RequestTimeout: 2 * time.Second})
	if res.Passed {
		t.Fatal("the echoing server passed")
	}
	for name, text := range written {
		for _, secret := range []string{tokenA, tokenB, "tok+en", "tok\\u002ben", "tok&#43;en", "second-user-token"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the secret %q", name, secret)
			}
		}
	}
	if !strings.Contains(written["stdout"], "Bearer [redacted]") || !strings.Contains(written["cucumber.json"], "[redacted]") {
		t.Errorf("the echo is not shown redacted:\n%s", tailOf(written["stdout"]))
	}
}

// exportServer is a hostile export service: kick-off → 202 with a Content-Location at pollBase, the poll →
// 200 with a manifest of files output URLs (each at fileBase, requiring the token), the files → NDJSON of
// one Patient per line. Every request's Authorization is recorded per host.
type exportServer struct {
	pollBase, fileBase func() string // where the server says the polling location and the files are
	files              int
	file               func(w http.ResponseWriter, r *http.Request) // nil: one small Patient file
	poll               func(w http.ResponseWriter, r *http.Request) bool
	mu                 sync.Mutex
	tokensSeen         map[string][]string // host → Authorization values received
}

func (s *exportServer) handler() http.Handler {
	return every(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.tokensSeen == nil {
			s.tokensSeen = map[string][]string{}
		}
		s.tokensSeen[r.Host] = append(s.tokensSeen[r.Host], r.Header.Get("Authorization"))
		s.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/$export"):
			w.Header().Set("Content-Location", s.pollBase()+"/$export-poll-status?_jobId=j1")
			w.WriteHeader(http.StatusAccepted)
		case strings.HasSuffix(r.URL.Path, "/$export-poll-status") && r.URL.Query().Get("_jobId") == "j1":
			if s.poll != nil && s.poll(w, r) {
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Expires", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			var out strings.Builder
			for i := range s.files {
				if i > 0 {
					out.WriteString(",")
				}
				fmt.Fprintf(&out, `{"type":"Patient","url":"%s/files/%d.ndjson"}`, s.fileBase(), i)
			}
			fmt.Fprintf(w, `{"transactionTime":"2026-01-01T00:00:00Z","request":"x","requiresAccessToken":true,"output":[%s],"error":[]}`, out.String())
		case strings.Contains(r.URL.Path, "/files/"):
			if s.file != nil {
				s.file(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/fhir+ndjson")
			fmt.Fprintln(w, `{"resourceType":"Patient","id":"p1"}`)
		default:
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
		}
	})
}

func (s *exportServer) requestsAt(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokensSeen[host])
}

func (s *exportServer) tokensAt(host string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, v := range s.tokensSeen[host] {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// The token goes only to the targets' origins: a Content-Location, output URLs, or a redirect (after which
// the manifest comes from the other origin) pointing elsewhere get requests without it, and a file that
// then cannot be read is reported as not checked, naming TRUSTED_ORIGINS. Listing the origin sends it.
func TestTokenGoesOnlyToTrustedOrigins(t *testing.T) {
	other := &exportServer{files: 2}
	otherTS := httptest.NewServer(other.handler())
	t.Cleanup(otherTS.Close)
	otherBase := func() string { return otherTS.URL + "/fhir" }
	deny := func(w http.ResponseWriter, r *http.Request) { // the other origin wants the token for its files
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		fmt.Fprintln(w, `{"resourceType":"Patient","id":"p1"}`)
	}
	other.file = deny
	var mainURL string
	cases := map[string]*exportServer{
		"Content-Location elsewhere": {files: 1, pollBase: otherBase, fileBase: otherBase},
		"output URLs elsewhere":      {files: 2, pollBase: func() string { return mainURL }, fileBase: otherBase},
		"redirect to a manifest elsewhere": {files: 1, pollBase: func() string { return mainURL }, fileBase: otherBase,
			poll: func(w http.ResponseWriter, r *http.Request) bool {
				http.Redirect(w, r, otherBase()+"/$export-poll-status?_jobId=j1", http.StatusTemporaryRedirect)
				return true
			}},
	}
	other.pollBase, other.fileBase = otherBase, otherBase
	for name, srv := range cases {
		t.Run(name, func(t *testing.T) {
			other.mu.Lock()
			other.tokensSeen = nil
			other.mu.Unlock()
			ts := httptest.NewServer(srv.handler())
			t.Cleanup(ts.Close)
			mainURL = ts.URL + "/fhir"
			res, written := boundedRun(t, srv.handler(), Config{Target: mainURL, Tags: "@EXP-OUTPUT", Token: "token-a-secret", MaxWait: 5 * time.Second, RequestTimeout: 2 * time.Second})
			otherHost := strings.TrimPrefix(otherTS.URL, "http://")
			if seen := other.tokensAt(otherHost); len(seen) > 0 {
				t.Errorf("the untrusted origin received the token %d times", len(seen))
			}
			if other.requestsAt(otherHost) == 0 {
				t.Fatalf("the run never reached the other origin: the test proves nothing\n%s", tailOf(written["stdout"]))
			}
			if nc := res.Findings.NotChecked(); len(nc) == 0 || !strings.Contains(nc[0].Message, "not checked: origin not trusted") {
				t.Errorf("the unreadable files are not reported as not checked: %+v", nc)
			}
			if !strings.Contains(written["stdout"]+written["stderr"], "TRUSTED_ORIGINS="+otherTS.URL) {
				t.Errorf("no message names TRUSTED_ORIGINS=%s:\n%s\n%s", otherTS.URL, tailOf(written["stdout"]), tailOf(written["stderr"]))
			}
		})
	}
	t.Run("listed in TRUSTED_ORIGINS", func(t *testing.T) {
		other.mu.Lock()
		other.tokensSeen = nil
		other.mu.Unlock()
		srv := cases["output URLs elsewhere"]
		ts := httptest.NewServer(srv.handler())
		t.Cleanup(ts.Close)
		mainURL = ts.URL + "/fhir"
		res, written := boundedRun(t, srv.handler(), Config{Target: mainURL, Tags: "@EXP-OUTPUT", Token: "token-a-secret", TrustedOrigins: []string{otherTS.URL}, MaxWait: 5 * time.Second, RequestTimeout: 2 * time.Second})
		if seen := other.tokensAt(strings.TrimPrefix(otherTS.URL, "http://")); len(seen) != 2 || !res.Passed {
			t.Errorf("a trusted origin got the token %d times (want 2, one per file), passed=%v\n%s", len(seen), res.Passed, tailOf(written["stdout"]))
		}
	})
}
