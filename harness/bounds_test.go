package harness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/internal/proccpu"
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
	// cucumber.json's attachments are base64: the pass over the written report cannot see into them.
	attached, err := cucumberAttachments([]byte(written["cucumber.json"]))
	if err != nil || len(attached) == 0 {
		t.Fatalf("cucumber.json: expected the transcripts as attachments, got %d, %v", len(attached), err)
	}
	for _, text := range attached {
		for _, secret := range []string{tokenA, tokenB, "tok+en", "second-user-token"} {
			if strings.Contains(text, secret) {
				t.Errorf("a cucumber.json attachment holds the secret %q", secret)
			}
		}
	}
	if !strings.Contains(written["stdout"], "Bearer [redacted]") || !strings.Contains(written["cucumber.json"], "[redacted]") {
		t.Errorf("the echo is not shown redacted:\n%s", tailOf(written["stdout"]))
	}
}

// A server that echoes the token where a transcript cuts what it shows: at the end of a long header's first
// 512 bytes and of a body's first 2,000. The cut must not leave the token's start in the reports: a part of a
// secret is not known to be one once the rest is gone.
func TestAnEchoedTokenCutByATranscriptLimitIsNotShownInPart(t *testing.T) {
	const token = "cut-secret-0123456789abcdefghijklmnop"
	echo := every(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization") // "Bearer " + token
		w.Header().Set("X-Echo", strings.Repeat("h", 512-len("Bearer ")-16)+auth)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, strings.Repeat("b", 2000-len("Bearer ")-16)+auth+" was refused\n")
	})
	res, written := boundedRun(t, echo, Config{Token: token, Tags: "@EXP-KICKOFF", MaxWait: 2 * time.Second, RequestTimeout: 2 * time.Second})
	if res.Passed || !strings.Contains(written["stdout"], "hhhh") || !strings.Contains(written["stdout"], "bbbb") {
		t.Fatalf("expected a failure showing the echoing answer:\n%s", tailOf(written["stdout"]))
	}
	attached, _ := cucumberAttachments([]byte(written["cucumber.json"]))
	for name, text := range written {
		attached = append(attached, name+"\n"+text)
	}
	for _, text := range attached {
		if i := strings.Index(text, token[:8]); i >= 0 {
			name, _, _ := strings.Cut(text, "\n")
			t.Errorf("%s holds the token's start: …%s…", name, text[max(0, i-40):min(len(text), i+60)])
		}
	}
}

// A static token given with white space around it (a newline or CRLF from a file or a secret store, a
// space or tab from an env file) passes the token's check, which ignores it: it is sent without it, and the
// token the server echoes, which has none, is redacted as well.
func TestAStaticTokenWithWhiteSpaceAroundItIsSentBareAndRedacted(t *testing.T) {
	const token = "padded-token-abcdef0123"
	for _, given := range []string{token + "\n", token + "\r\n", token + " ", token + "\t", " " + token} {
		t.Run(fmt.Sprintf("%q", given), func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			echo := every(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				sent = append(sent, r.Header.Get("Authorization"))
				mu.Unlock()
				w.Header().Set("Content-Type", "text/plain")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, "unknown token %s, you sent %q", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), r.Header.Get("Authorization"))
			})
			res, written := boundedRun(t, echo, Config{Token: given, Tags: "@EXP-KICKOFF", MaxWait: 2 * time.Second, RequestTimeout: 2 * time.Second})
			if res.Passed || !strings.Contains(written["stdout"], "unknown token "+check.Redacted) {
				t.Fatalf("expected a failure showing the echo redacted:\n%s", tailOf(written["stdout"]))
			}
			mu.Lock()
			for _, v := range sent {
				if v != "Bearer "+token {
					t.Errorf("sent Authorization %q, expected the token alone", v)
				}
			}
			mu.Unlock()
			for name, text := range written {
				if strings.Contains(text, token[:12]) {
					t.Errorf("%s holds the token", name)
				}
			}
		})
	}
}

// exportServer is a hostile export service: kick-off → 202 with a Content-Location at pollBase, the poll →
// 200 with a manifest of files output URLs (each at fileBase, requiring the token), the files → NDJSON of
// one Patient per line. Every request's Authorization is recorded per host.
type exportServer struct {
	pollBase, fileBase func() string // where the server says the polling location and the files are
	files              int
	fileQuery          string                                       // each output URL's query: a pre-signed one, which needs no token
	file               func(w http.ResponseWriter, r *http.Request) // nil: one small Patient file
	poll               func(w http.ResponseWriter, r *http.Request) bool
	polls              atomic.Int64
	mu                 sync.Mutex
	tokensSeen         map[string][]string // host → Authorization values received
	manifest           []byte              // manifestBody's after its transactionTime, built for the files at manifestBase
	manifestBase       string
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
			s.polls.Add(1)
			if s.poll != nil && s.poll(w, r) {
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Expires", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
			_, _ = w.Write(s.manifestBody())
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

// manifestBody is the completed export's manifest, built at its first poll (the file URLs are known by then)
// and kept: a manifest of 100,000 outputs takes seconds of CPU to write under -race, which on a loaded
// machine pushed the answer past the run's REQUEST_TIMEOUT.
func (s *exportServer) manifestBody() []byte {
	base := s.fileBase()
	s.mu.Lock()
	defer s.mu.Unlock()
	// transactionTime is the answer's time, the one part not cached: it may not be before the kick-off (EXP-POLL-200)
	now := fmt.Appendf(nil, `{"transactionTime":%q`, time.Now().UTC().Format(time.RFC3339))
	if s.manifest != nil && s.manifestBase == base {
		return append(now, s.manifest...)
	}
	var out strings.Builder
	for i := range s.files {
		if i > 0 {
			out.WriteString(",")
		}
		url := fmt.Sprintf("%s/files/%d.ndjson", base, i)
		if s.fileQuery != "" {
			url += "?" + s.fileQuery
		}
		fmt.Fprintf(&out, `{"type":"Patient","url":%q}`, url)
	}
	s.manifestBase = base
	s.manifest = fmt.Appendf(nil, `,"request":"%s/fhir/$export","requiresAccessToken":%t,"output":[%s],"error":[]}`, base, s.fileQuery == "", out.String())
	return append(now, s.manifest...)
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

// runCost is what one run cost: its peak heap (peakHeap) and the CPU time the process used meanwhile (zero
// where proccpu cannot tell).
type runCost struct {
	heap uint64
	cpu  time.Duration
}

// costOf runs f and measures its cost. The time bound of a hostile run is on CPU time, the work done, not on
// wall-clock time: on a shared machine the wall-clock time of the same work grows with the other processes'
// load (the 100,000-output manifest run, 10 s of CPU, took 1m44s beside busy loops, past its former 60 s
// wall-clock bound).
func costOf(f func()) runCost {
	before, _ := proccpu.Used()
	heap := peakHeap(f)
	after, ok := proccpu.Used()
	if !ok {
		return runCost{heap: heap}
	}
	return runCost{heap: heap, cpu: after - before}
}

// peakHeap runs f while sampling the heap every millisecond, and returns the highest heap seen (live and
// not yet collected objects), in bytes above the heap before f.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	base := read()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if v := read(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(done)
	<-stopped
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// keepFirstPolls and keepLastPolls: what a transcript and a poll history keep at least (steps, check).
const keepFirstPolls, keepLastPolls = 5, 5

// The bounds of one hostile run: heap, reports and console size, CPU time.
const (
	heapBound   = 192 << 20
	reportBound = 2 << 20 // all reports and the console together; issue 11 asks under 10 MB
)

func checkBounds(t *testing.T, written map[string]string, cost runCost, cpuBound time.Duration) {
	t.Helper()
	total := 0
	for name, text := range written {
		total += len(text)
		t.Logf("%s: %d bytes", name, len(text))
	}
	if total > reportBound {
		t.Errorf("the run wrote %d bytes of console and reports, more than %d", total, reportBound)
	}
	t.Logf("peak heap %d MiB, %s of CPU", cost.heap>>20, cost.cpu.Round(time.Millisecond))
	if cost.heap > heapBound {
		t.Errorf("peak heap %d MiB, more than %d MiB", cost.heap>>20, heapBound>>20)
	}
	if cost.cpu > cpuBound {
		t.Errorf("the run used %s of CPU, more than %s", cost.cpu, cpuBound)
	}
}

// Finding 1 of issue 11: a server answering every poll 202 with an 8 MB body and Retry-After in the past
// (the 100 ms floor): the harness kept every body, and every poll in the transcript.
func TestHostileHugeInProgressBodiesKeepMemoryAndReportsBounded(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4<<20)
	srv := &exportServer{files: 1, poll: func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("X-Progress", "busy")
		w.Header().Set("Retry-After", time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(big)
		return true
	}}
	var res Result
	var written map[string]string
	const maxWait = 8 * time.Second
	cost := costOf(func() {
		res, written = boundedRunAt(t, srv, Config{Tags: "@EXP-POLL-200,@EXP-OUTPUT", MaxWait: maxWait, RequestTimeout: 10 * time.Second})
	})
	checkBounds(t, written, cost, 2*maxWait+20*time.Second)
	// Bodies kept whole until the scenario ends measured 134 MiB here; cut to their heads, about 40.
	if cost.heap > 96<<20 {
		t.Errorf("peak heap %d MiB: the poll bodies are kept", cost.heap>>20)
	}
	// MAX_WAIT ended the polling: the run gave up waiting, as it says.
	if res.Passed || !strings.Contains(written["stdout"], "[cut: 4.0 MiB more]") || !strings.Contains(written["stdout"], check.ErrGaveUp.Error()) {
		t.Errorf("want a failed run that gave up waiting, whose transcripts cut the bodies:\n%s", tailOf(written["stdout"]))
	}
	// How many polls fit in MAX_WAIT depends on the machine's load; past the kept ones, the middle is omitted.
	polls := srv.polls.Load()
	t.Logf("%d polls", polls)
	if polls > 2*(keepFirstPolls+keepLastPolls) && (!strings.Contains(written["stdout"], "polls omitted") || !strings.Contains(written["stdout"], "exchanges omitted")) {
		t.Errorf("%d polls, but the transcript and the poll history omit none:\n%s", polls, tailOf(written["stdout"]))
	}
}

// boundedRunAt runs cfg against srv, whose URLs point at itself.
func boundedRunAt(t *testing.T, srv *exportServer, cfg Config) (Result, map[string]string) {
	t.Helper()
	ts := httptest.NewServer(srv.handler())
	t.Cleanup(ts.Close)
	self := func() string { return ts.URL + "/fhir" }
	if srv.pollBase == nil {
		srv.pollBase = self
	}
	if srv.fileBase == nil {
		srv.fileBase = self
	}
	if cfg.Token == "" {
		cfg.Token = "token-a-secret"
	}
	cfg.Target = self()
	return boundedRun(t, http.NotFoundHandler(), cfg)
}

// Finding 1: many large output files; each is checked as it arrives and its body dropped.
func TestHostileManyLargeOutputFilesKeepMemoryBounded(t *testing.T) {
	line := []byte(`{"resourceType":"Patient","id":"p1","name":[{"family":"` + strings.Repeat("y", 1000) + `"}]}` + "\n") // valid R4: its first lines are decoded strictly
	file := bytes.Repeat(line, (8<<20)/len(line))
	srv := &exportServer{files: 16, file: func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		_, _ = w.Write(file)
	}}
	var res Result
	var written map[string]string
	cost := costOf(func() {
		res, written = boundedRunAt(t, srv, Config{Tags: "@EXP-OUTPUT", MaxWait: 120 * time.Second, RequestTimeout: 30 * time.Second})
	})
	checkBounds(t, written, cost, 150*time.Second)
	// Kept whole, the 16 files alone would hold 128 MiB.
	if cost.heap > 100<<20 {
		t.Errorf("peak heap %d MiB for files checked one at a time", cost.heap>>20)
	}
	if !res.Passed || strings.Count(written["stderr"], "output file ") != 16 {
		t.Errorf("want the 16 files checked and the run passed:\n%s\n%s", tailOf(written["stdout"]), tailOf(written["stderr"]))
	}
}

// Finding 1 and 2: a manifest of 100,000 outputs: MAX_FILES are checked, the rest reported as not checked.
func TestHostileHugeManifestChecksMaxFilesAndReportsTheRest(t *testing.T) {
	srv := &exportServer{files: 100_000}
	var res Result
	var written map[string]string
	cost := costOf(func() {
		// MAX_WAIT and REQUEST_TIMEOUT only stop a hang here: the 7 MB manifest is read and checked under -race.
		res, written = boundedRunAt(t, srv, Config{Tags: "@EXP-OUTPUT", MaxFiles: 20, MaxWait: time.Minute, RequestTimeout: time.Minute})
	})
	checkBounds(t, written, cost, 60*time.Second)
	want := "99980 of the manifest's 100000 output files not checked: MAX_FILES=20"
	if !res.Passed || !strings.Contains(written["stdout"], want) || !strings.Contains(written["index.html"], "99980 of the manifest") {
		t.Errorf("want a pass with %q in the summary and the HTML report:\n%s", want, tailOf(written["stdout"]))
	}
	if n := srv.requestsAt(strings.TrimPrefix(strings.TrimSuffix(srv.fileBase(), "/fhir"), "http://")); n > 30 {
		t.Errorf("%d requests for a run that checks 20 files", n)
	}
}

// Finding 2: 40 output files each answering in 1 s share DOWNLOAD_WAIT: the run ends after about
// DOWNLOAD_WAIT, not 40 s, and the files left are reported as not checked, never asked for.
func TestHostileSlowOutputFilesShareTheDownloadDeadline(t *testing.T) {
	var asked atomic.Int64
	srv := &exportServer{files: 40, file: func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
		}
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		fmt.Fprintln(w, `{"resourceType":"Patient","id":"p1"}`)
	}}
	var res Result
	var written map[string]string
	cost := costOf(func() {
		res, written = boundedRunAt(t, srv, Config{Tags: "@EXP-OUTPUT", DownloadWait: 3 * time.Second, MaxWait: 10 * time.Second, RequestTimeout: 5 * time.Second})
	})
	checkBounds(t, written, cost, 25*time.Second)
	if !strings.Contains(written["stdout"], "output files not checked: the downloads took DOWNLOAD_WAIT (3s)") || !res.Passed {
		t.Errorf("want the files left reported as not checked:\n%s", tailOf(written["stdout"]))
	}
	// The deadline, not the 40 s the files would take, ended the downloads: the files left were never asked for.
	t.Logf("%d of the %d files asked for", asked.Load(), srv.files)
	if n := asked.Load(); n >= int64(srv.files) {
		t.Errorf("all %d files were asked for: the downloads went on past DOWNLOAD_WAIT", n)
	}
}

// Finding 6 of issue 11: invalid UTF-8 from the server reached index.html raw. Every output is valid UTF-8.
func TestHostileInvalidUTF8IsMadeValidInEveryOutput(t *testing.T) {
	broken := every(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.Header().Set("X-Progress", "half\xffway")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"invalid\",\"diagnostics\":\"bad \xc3\x28 \xfe\"}]} \xff"))
	})
	res, written := boundedRun(t, broken, Config{Tags: "@EXP-KICKOFF,@RJS-BUNDLE", Token: "token-a-secret", RequestTimeout: 2 * time.Second})
	if res.Passed {
		t.Fatal("the server passed")
	}
	for name, text := range written {
		if !utf8.ValidString(text) {
			i := 0
			for i < len(text) {
				r, size := utf8.DecodeRuneInString(text[i:])
				if r == utf8.RuneError && size == 1 {
					break
				}
				i += size
			}
			t.Errorf("%s is not valid UTF-8 near %q", name, text[max(0, i-60):min(len(text), i+20)])
		}
	}
	if !strings.Contains(written["stdout"], "\uFFFD") {
		t.Error("the replaced bytes are not shown as U+FFFD")
	}
}

// cucumberAttachments is every attachment of a Cucumber JSON report, decoded from base64.
func cucumberAttachments(raw []byte) ([]string, error) {
	var features []struct {
		Elements []struct {
			Steps []struct {
				Embeddings []struct {
					Data string `json:"data"`
				} `json:"embeddings"`
			} `json:"steps"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(raw, &features); err != nil {
		return nil, err
	}
	var out []string
	for _, f := range features {
		for _, e := range f.Elements {
			for _, s := range e.Steps {
				for _, a := range s.Embeddings {
					b, err := base64.StdEncoding.DecodeString(a.Data)
					if err != nil {
						return nil, err
					}
					out = append(out, string(b))
				}
			}
		}
	}
	return out, nil
}

// A manifest of pre-signed output URLs (BDA2's requiresAccessToken false): each URL's signature lets anyone
// download the file, so it is in no output, though the manifest, the files' URLs and a failing file's
// transcript are all written; the URLs stay readable around it. The same when the signed URL is nested,
// percent-encoded, in another's query (a server's redirect parameter).
func TestPresignedOutputURLsKeepTheirSignaturesOutOfEveryReport(t *testing.T) {
	const signature, sas = "5f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6", "Zm9vYmFyYmF6cXV4"
	for _, c := range []struct{ name, query, shown string }{
		{"query", "X-Amz-Credential=AKIAEXAMPLE%2F20261203%2Fs3&X-Amz-Signature=" + signature + "&sig=" + sas, "X-Amz-Signature=" + check.Redacted},
		{"nested", "redirect=https%3A%2F%2Fs3.example%2Fb%2FP.ndjson%3FX-Amz-Credential%3DAKIAEXAMPLE%252F20261203%252Fs3%26X-Amz-Signature%3D" + signature + "%26X-Amz-Expires%3D3600&next=https%253A%252F%252Fblob%252Fc%253Fsp%253Dr%2526sig%253D" + sas,
			"X-Amz-Signature%3D" + check.Redacted + "%26X-Amz-Expires%3D3600"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := &exportServer{files: 2, fileQuery: c.query,
				file: func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/fhir+ndjson")
					fmt.Fprintln(w, `{"resourceType":"Patient","id":"p1"}`)
					fmt.Fprintln(w, `{"resourceType":"Patient","id":`) // the file fails, and its transcript is shown
				}}
			res, written := boundedRunAt(t, srv, Config{Tags: "@EXP-OUTPUT", MaxWait: 5 * time.Second, RequestTimeout: 2 * time.Second})
			if res.Passed || !strings.Contains(written["stdout"], c.shown) {
				t.Fatalf("want EXP-OUTPUT failed on the broken line, the signed URL shown redacted (%s):\n%s", c.shown, tailOf(written["stdout"]))
			}
			for name, text := range written {
				for _, secret := range []string{signature, sas, "AKIAEXAMPLE"} {
					if strings.Contains(text, secret) {
						t.Errorf("%s holds the credential %q", name, secret)
					}
				}
			}
			attached, err := cucumberAttachments([]byte(written["cucumber.json"]))
			if err != nil || len(attached) == 0 {
				t.Fatalf("cucumber.json: expected the transcripts as attachments, got %d, %v", len(attached), err)
			}
			for _, text := range attached {
				if strings.Contains(text, signature) || strings.Contains(text, sas) {
					t.Errorf("a cucumber.json attachment holds a credential:\n%s", text)
				}
			}
		})
	}
}
