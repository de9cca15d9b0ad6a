package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/internal/testpki"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// tokenRecorder wraps a reference server: it keeps every token the token endpoint issues (to grep the
// run's output for them), counts the tokens per client and the 401 answers.
type tokenRecorder struct {
	mu           sync.Mutex
	tokens       []string
	perClient    map[string]int
	unauthorized int
}

type captureWriter struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (c *captureWriter) WriteHeader(code int) { c.status = code; c.ResponseWriter.WriteHeader(code) }
func (c *captureWriter) Write(p []byte) (int, error) {
	c.body.Write(p)
	return c.ResponseWriter.Write(p)
}

func (rec *tokenRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &captureWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(cw, r)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		// A request sent without a token on purpose (EXP-OUTPUT-TOKEN) is refused by design: only a refused
		// token counts.
		if cw.status == http.StatusUnauthorized && r.URL.Path != refserver.TokenPath && r.Header.Get("Authorization") != "" {
			rec.unauthorized++
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if r.URL.Path == refserver.TokenPath && cw.status == http.StatusOK && json.Unmarshal(cw.body.Bytes(), &tok) == nil {
			id, _, _ := r.BasicAuth()
			if id == "" {
				id = r.PostFormValue("client_id")
			}
			rec.tokens = append(rec.tokens, tok.AccessToken)
			if rec.perClient == nil {
				rec.perClient = map[string]int{}
			}
			rec.perClient[id]++
		}
	})
}

func oauthConfig(root string) Config {
	return Config{AuthConfig: AuthConfig{
		TokenURL: root + refserver.TokenPath,
		ClientID: refserver.DemoClientIDA, ClientSecret: refserver.DemoClientSecretA,
		ClientIDB: refserver.DemoClientIDB, ClientSecretB: refserver.DemoClientSecretB,
		Scope: "system/*.read",
	}}
}

// runTarget runs cfg against ts and returns the result, the console and poll log, and the reports directory.
func runTarget(t *testing.T, root string, cfg Config) (Result, string, string) {
	t.Helper()
	var out bytes.Buffer
	cfg.Target, cfg.Out, cfg.Log, cfg.ReportsDir = root+"/fhir", &out, &out, t.TempDir()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	return res, out.String(), cfg.ReportsDir
}

func wantCrossUserPass(t *testing.T, res Result, out string) {
	t.Helper()
	if want := scenarioCount(t, "cross-user"); !res.Passed || res.Scenarios != want || len(res.Findings.Skips()) != 0 {
		t.Fatalf("cross-user scenarios: expected %d passed without skips, got passed=%v scenarios=%d skips=%+v\n%s", want, res.Passed, res.Scenarios, res.Findings.Skips(), out)
	}
}

func TestCrossUserScenariosPassWithStaticTokens(t *testing.T) {
	ts := httptest.NewServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	res, out, _ := runTarget(t, ts.URL, Config{Tags: "@cross-user", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
	wantCrossUserPass(t, res, out)
}

func TestCrossUserScenariosPassWithOAuth2ClientCredentials(t *testing.T) {
	rec := &tokenRecorder{}
	ts := httptest.NewServer(rec.wrap(refserverHandler(t, refserver.Config{})))
	t.Cleanup(ts.Close)
	cfg := oauthConfig(ts.URL)
	cfg.Tags = "@cross-user"
	res, out, _ := runTarget(t, ts.URL, cfg)
	wantCrossUserPass(t, res, out)
	if rec.perClient[refserver.DemoClientIDA] == 0 || rec.perClient[refserver.DemoClientIDB] == 0 || rec.unauthorized != 0 {
		t.Fatalf("expected tokens for both clients and no 401, got %v and %d 401s", rec.perClient, rec.unauthorized)
	}
}

// Over HTTPS with a private CA and a required client certificate: the FHIR requests and the token requests
// both go through CA_CERT and CLIENT_CERT/CLIENT_KEY.
func TestCrossUserScenariosPassWithOAuth2OverMutualTLS(t *testing.T) {
	ts, pki := mutualTLSServer(t, refserverHandler(t, refserver.Config{}))

	cfg := oauthConfig(ts.URL)
	cfg.Tags, cfg.CACert, cfg.ClientCert, cfg.ClientKey = "@cross-user", pki.CACert, pki.ClientCert, pki.ClientKey
	res, out, _ := runTarget(t, ts.URL, cfg)
	wantCrossUserPass(t, res, out)

	// Without the client certificate the handshake fails: the run reports it instead of passing.
	cfg.ClientCert, cfg.ClientKey = "", ""
	var buf bytes.Buffer
	cfg.Target, cfg.Out, cfg.Log, cfg.ReportsDir = ts.URL+"/fhir", &buf, &buf, t.TempDir()
	if res, err := Run(context.Background(), cfg); err == nil && res.Passed {
		t.Fatalf("without a client certificate: expected the run to fail\n%s", buf.String())
	}
}

// A run longer than the tokens' lifetime passes: the client-credentials source fetches new tokens, and the
// server never answers 401. Longer by the clock the run and the server share (movingClock), which every
// request moves on, not by waiting: the tokens are renewed because they run out by that clock.
func TestOAuth2TokensAreRenewedOnALongRun(t *testing.T) {
	// A token is renewed 2 s (by the clock) after its issue; the server refuses it 12 s after: a few dozen
	// requests of a run that did not renew it.
	const lifetime, step = renewAhead + 2*time.Second, 300 * time.Millisecond
	clock, moving := movingClock(step)
	rec := &tokenRecorder{}
	// Jobs of 10 s by that clock: its steps would finish jobs of the default 2 s between a kick-off and its
	// DELETE under load, and the cancel scenario could not see its export running.
	ts := httptest.NewServer(rec.wrap(moving(refserverHandler(t, refserver.Config{Clock: clock, ExportDuration: 10 * time.Second, ReportDuration: 5 * time.Second, Clients: []refserver.Client{
		{ID: refserver.DemoClientIDA, Secret: refserver.DemoClientSecretA, UserID: refserver.DemoUserIDA, TokenLifetime: lifetime},
		{ID: refserver.DemoClientIDB, Secret: refserver.DemoClientSecretB, UserID: refserver.DemoUserIDB, TokenLifetime: lifetime},
	}}))))
	t.Cleanup(ts.Close)
	cfg := oauthConfig(ts.URL)
	cfg.clock = clock.Now
	res, out, _ := runTarget(t, ts.URL, cfg) // every scenario: the export ones wait for jobs to finish
	if !res.Passed || len(res.Findings.Skips()) != 0 {
		t.Fatalf("run with %s tokens: expected a pass without skips\n%s", lifetime, out)
	}
	moved := time.Duration(clock.offset.Load())
	if moved <= lifetime {
		t.Fatalf("the requests moved the clock on %s, not past the token lifetime %s: the test proves nothing", moved, lifetime)
	}
	if rec.unauthorized != 0 || rec.perClient[refserver.DemoClientIDA] < 2 {
		t.Fatalf("expected renewed tokens for client A and no 401 in %s, got %v and %d 401s", moved, rec.perClient, rec.unauthorized)
	}
}

// No secret reaches the console, the poll log or a report, also when scenarios fail and print their
// transcripts.
func TestSecretsNeverAppearInOutputOrReports(t *testing.T) {
	rec := &tokenRecorder{}
	inner := rec.wrap(refserverHandler(t, refserver.Config{}))
	// Break the report status so that the report scenarios fail and print their requests, with an answer that
	// echoes the token: only the redaction of every issued token keeps it out of the output.
	broken := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/$get-report-job-status") {
			w.Header().Set("Content-Type", "application/fhir+json")
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":%q}]}`, "you sent "+r.Header.Get("Authorization"))
			return
		}
		inner.ServeHTTP(w, r)
	})
	ts := httptest.NewServer(broken)
	t.Cleanup(ts.Close)

	var outputs []string
	var dirs []string
	cfg := oauthConfig(ts.URL)
	cfg.Tags, cfg.MaxWait = "@report,@cross-user", 3*time.Second
	res, out, dir := runTarget(t, ts.URL, cfg)
	if res.Passed || !strings.Contains(out, "Authorization: Bearer [redacted]") {
		t.Fatalf("expected failing report scenarios whose transcripts show the redacted Authorization header\n%s", out)
	}
	outputs, dirs = append(outputs, out), append(dirs, dir)
	res, out, dir = runTarget(t, ts.URL, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: cfg.Tags, MaxWait: cfg.MaxWait})
	if res.Passed {
		t.Fatalf("static run: expected failing report scenarios\n%s", out)
	}
	outputs, dirs = append(outputs, out), append(dirs, dir)
	// SMART Backend Services: the demo keys sign the assertions; the tokens they get are recorded too.
	smart := smartConfig(ts.URL)
	smart.Tags, smart.MaxWait = cfg.Tags, cfg.MaxWait
	issued := len(rec.tokens)
	res, out, dir = runTarget(t, ts.URL, smart)
	if res.Passed || !strings.Contains(out, "Authorization: Bearer [redacted]") || len(rec.tokens) < issued+2 {
		t.Fatalf("SMART run: expected failing report scenarios and tokens issued to both clients, got %d tokens\n%s", len(rec.tokens)-issued, out)
	}
	outputs, dirs = append(outputs, out), append(dirs, dir)

	secrets := append([]string{refserver.DemoClientSecretA, refserver.DemoClientSecretB, refserver.DemoTokenA, refserver.DemoTokenB}, rec.tokens...)
	if len(rec.tokens) < 2 {
		t.Fatalf("expected issued tokens to look for, got %d", len(rec.tokens))
	}
	for _, dir := range dirs {
		files := 0
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			files++
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			outputs = append(outputs, "file "+path+":\n"+string(b))
			return nil
		})
		if err != nil || files < 2 {
			t.Fatalf("reports in %s: %d files, %v", dir, files, err)
		}
	}
	for _, text := range outputs {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				name, _, _ := strings.Cut(text, "\n")
				t.Errorf("secret %.6s... found in %s", s, name)
			}
		}
		wantNoKeyMaterial(t, text, demoKeyA, demoKeyB)
	}
}

func TestAuthenticationModesAreExclusive(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"static and oauth2", Config{Target: "https://x.example/fhir", Token: "t", AuthConfig: AuthConfig{TokenURL: "https://a.example/token", ClientID: "c", ClientSecret: "s"}}, "not both"},
		{"client without token url", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{ClientID: "c", ClientSecret: "s"}}, "TOKEN_URL is required"},
		{"relative token url", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{TokenURL: "/token", ClientID: "c", ClientSecret: "s"}}, "TOKEN_URL: expected an absolute"},
		{"client without secret", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{TokenURL: "https://a.example/token", ClientID: "c"}}, "CLIENT_SECRET are required"},
		{"second client without secret", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{TokenURL: "https://a.example/token", ClientID: "c", ClientSecret: "s", ClientIDB: "d"}}, "CLIENT_SECRET_B"},
		{"same client twice", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{TokenURL: "https://a.example/token", ClientID: "c", ClientSecret: "s", ClientIDB: "c", ClientSecretB: "s"}}, "another client"},
		{"scope alone", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{Scope: "x"}}, "SCOPE"},
		{"certificate without key", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{ClientCert: "c.pem"}}, "CLIENT_CERT and CLIENT_KEY"},
		{"missing CA file", Config{Target: "https://x.example/fhir", AuthConfig: AuthConfig{CACert: "/nonexistent/ca.pem"}}, "CA_CERT"},
		{"token pasted with its scheme", Config{Target: "https://x.example/fhir", Token: "Bearer s"}, `TOKEN starts with "Bearer "`},
		{"second token pasted with its scheme", Config{Target: "https://x.example/fhir", Token: "t", TokenB: "bearer s"}, `TOKEN_B starts with "Bearer "`},
		{"token with white space", Config{Target: "https://x.example/fhir", Token: "ab s"}, "TOKEN holds white space"},
		{"client id without target", Config{AuthConfig: AuthConfig{TokenURL: "https://a.example/token", ClientID: "c", ClientSecret: "s"}}, "without TARGET"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.ReportsDir, c.cfg.Out = t.TempDir(), &bytes.Buffer{}
			_, err := Run(context.Background(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("expected an error containing %q, got %v", c.want, err)
			}
			if strings.Contains(err.Error(), "s\"") {
				t.Fatalf("the error must not quote a secret: %v", err)
			}
		})
	}
}

func TestConfigFromEnvReadsAuthVariables(t *testing.T) {
	env := map[string]string{"TOKEN_URL": " https://a.example/token ", "CLIENT_ID": "c", "CLIENT_SECRET": "s", "SCOPE": "system/*.read", "CLIENT_ID_B": "d", "CLIENT_SECRET_B": "t", "CA_CERT": "ca.pem", "CLIENT_CERT": "c.pem", "CLIENT_KEY": "k.pem",
		"PRIVATE_KEY": "a.pem ", "KEY_ID": "kid-a", "PRIVATE_KEY_B": "b.pem", "KEY_ID_B": "kid-b"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	want := AuthConfig{TokenURL: "https://a.example/token", ClientID: "c", ClientSecret: "s", Scope: "system/*.read", ClientIDB: "d", ClientSecretB: "t", CACert: "ca.pem", ClientCert: "c.pem", ClientKey: "k.pem",
		PrivateKey: "a.pem", KeyID: "kid-a", PrivateKeyB: "b.pem", KeyIDB: "kid-b"}
	if err != nil || cfg.AuthConfig != want {
		t.Fatalf("got %+v, %v", cfg.AuthConfig, err)
	}
	listed := map[string]bool{}
	for _, v := range Variables {
		listed[v.Name] = true
	}
	for name := range env {
		if !listed[name] {
			t.Errorf("%s is not in Variables", name)
		}
	}
}

// Authorization never follows a redirect to another origin, including another port of the same host, where
// Go's own client would still send it.
func TestAuthorizationIsNotForwardedOnRedirectToAnotherHost(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	record := authorizationRecorder(&mu, got)
	other := httptest.NewServer(record("other"))
	t.Cleanup(other.Close)
	otherByName := strings.Replace(other.URL, "127.0.0.1", "localhost", 1)
	mux := http.NewServeMux()
	mux.Handle("/same", record("origin"))
	mux.HandleFunc("/to-other-port", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/port", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/to-other-name", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, otherByName+"/name", http.StatusFound)
	})
	mux.HandleFunc("/to-same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/same", http.StatusFound)
	})
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)

	client, err := newHTTPClient(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/to-other-port", "/to-other-name", "/to-same"} {
		req, _ := http.NewRequest(http.MethodGet, origin.URL+path, nil)
		req.Header.Set("Authorization", "Bearer secret-token")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if got["other /port"] != "" || got["other /name"] != "" {
		t.Fatalf("Authorization reached another host: %q", got)
	}
	if got["origin /same"] != "Bearer secret-token" {
		t.Fatalf("a same-origin redirect must keep Authorization, got %q", got)
	}
	if _, ok := got["other /port"]; !ok {
		t.Fatalf("the redirect to another port was not followed: %q", got)
	}
}

// A password in TARGET's user info (https://user:password@host/fhir) is a secret as much as a token: the
// target's URL is in the console, in every report and in every curl reproducer, and none of them shows it.
func TestATargetURLsPasswordNeverAppears(t *testing.T) {
	ts := httptest.NewServer(refserverHandler(t, refserver.Config{Faults: []string{"unknown-job-400"}}))
	t.Cleanup(ts.Close)
	const password, written = "pa/ss@w0rd", "pa%2Fss%40w0rd"
	root := strings.Replace(ts.URL, "http://", "http://fut-user:"+written+"@", 1)
	res, out, dir := runTarget(t, root, Config{Tags: "@EXP-UNKNOWN-JOB", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB})
	if res.Passed || !strings.Contains(out, "curl") {
		t.Fatalf("expected the unknown-job scenario to fail with a reproducer\n%s", out)
	}
	texts := map[string]string{"console": out}
	for _, name := range []string{"junit.xml", "cucumber.json", "index.html"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		texts[name] = string(raw)
	}
	for name, text := range texts {
		for _, form := range []string{password, written, url.QueryEscape(password), "w0rd"} {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the target's password as %q", name, form)
			}
		}
	}
}

// A TARGET that does not parse as a URL is quoted by the message that refuses it, but not its password: a
// typo (a missing colon, a / in the password) leaves the password where the URL's user info would be, and the
// run's redaction knows only the passwords of URLs that parse.
func TestAMalformedTargetIsQuotedWithoutItsPassword(t *testing.T) {
	for _, target := range []string{"https//user:pass-word-1@fhir.example/fhir", "https://user:pass/word-1@fhir.example/fhir", "user:pass-word-1@fhir.example/fhir"} {
		for _, get := range []func() error{
			func() error { return Config{Target: target}.Validate() },
			func() error {
				_, err := Run(context.Background(), Config{Target: target, ReportsDir: t.TempDir(), Out: &bytes.Buffer{}})
				return err
			},
		} {
			err := get()
			if err == nil || !strings.Contains(err.Error(), "TARGET=") || !strings.Contains(err.Error(), "fhir.example") {
				t.Fatalf("%s: expected TARGET refused, quoted, got %v", target, err)
			}
			if strings.Contains(err.Error(), "word-1") {
				t.Errorf("the password is in %v", err)
			}
		}
	}
}

// A redirect to another origin listed in TRUSTED_ORIGINS (or another target's) keeps the token: Go's client
// drops Authorization on a redirect to another domain, and a server redirecting to its trusted file server was
// answered 401. A redirect to an untrusted origin still drops it, and so does a trusted hop reached through an
// untrusted one, which chose where it leads.
func TestARedirectToATrustedOriginKeepsTheToken(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	record := authorizationRecorder(&mu, got)
	trusted := httptest.NewServer(record("trusted"))
	t.Cleanup(trusted.Close)
	// by name, another domain than the target's 127.0.0.1: Go's client itself drops the token there
	trustedByName := strings.Replace(trusted.URL, "127.0.0.1", "localhost", 1)
	untrustedMux := http.NewServeMux()
	untrustedMux.Handle("/file", record("untrusted"))
	untrustedMux.HandleFunc("/to-trusted", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trustedByName+"/via-untrusted", http.StatusFound)
	})
	untrusted := httptest.NewServer(untrustedMux)
	t.Cleanup(untrusted.Close)
	untrustedByName := strings.Replace(untrusted.URL, "127.0.0.1", "localhost", 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/to-trusted", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, trustedByName+"/file", http.StatusFound)
	})
	mux.HandleFunc("/to-untrusted", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, untrustedByName+"/file", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/through-untrusted", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, untrustedByName+"/to-trusted", http.StatusFound)
	})
	origin := httptest.NewServer(mux)
	t.Cleanup(origin.Close)

	client, err := newHTTPClient(Config{Target: origin.URL + "/fhir", TrustedOrigins: []string{trustedByName}})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/to-trusted", "/to-untrusted", "/through-untrusted"} {
		req, _ := http.NewRequest(http.MethodGet, origin.URL+path, nil)
		req.Header.Set("Authorization", "Bearer secret-token")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]string{"trusted /file": "Bearer secret-token", "untrusted /file": "", "trusted /via-untrusted": ""}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s: Authorization %q (reached: %v), want %q", k, g, ok, v)
		}
	}
}

// End to end: output files redirected (302) to a file server on another origin that requires the user's token
// pass with the file server in TRUSTED_ORIGINS; they failed EXP-OUTPUT on its 401, the token dropped on the way.
func TestOutputFilesRedirectedToATrustedFileServerPass(t *testing.T) {
	var mu sync.Mutex
	stored := map[string][]byte{}
	var served, refused atomic.Int64
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+refserver.DemoTokenA {
			refused.Add(1)
			http.Error(w, "token required", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		body, ok := stored[r.URL.Path]
		mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		_, _ = w.Write(body)
	}))
	t.Cleanup(files.Close)
	filesByName := strings.Replace(files.URL, "127.0.0.1", "localhost", 1)
	h := servingFiles(refserverHandler(t, refserver.Config{}), func(w http.ResponseWriter, r *http.Request, file *httptest.ResponseRecorder) {
		key := "/files" + r.URL.Path
		mu.Lock()
		stored[key] = file.Body.Bytes()
		mu.Unlock()
		http.Redirect(w, r, filesByName+key, http.StatusFound)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT", TrustedOrigins: []string{filesByName}})
	if err != nil || !res.Passed || len(res.Findings.NotChecked()) > 0 {
		t.Fatalf("passed %v, failures %v, not checked %v, err %v\n%s", res.Passed, failedRequirements(res), res.Findings.NotChecked(), err, tailOf(out))
	}
	if served.Load() == 0 || refused.Load() > 0 {
		t.Fatalf("the file server served %d files and refused %d requests: want files served with the token, none refused", served.Load(), refused.Load())
	}
}

// authorizationRecorder returns handlers that answer 200 and record, under got["name path"], the
// Authorization header each request carried (empty: none).
func authorizationRecorder(mu *sync.Mutex, got map[string]string) func(name string) http.Handler {
	return func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got[name+" "+r.URL.Path] = r.Header.Get("Authorization")
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		})
	}
}

// mutualTLSServer serves h over HTTPS with a private CA's certificate (testpki), requiring and verifying a
// client certificate of that CA; pki holds the files a run's CA_CERT, CLIENT_CERT and CLIENT_KEY name.
func mutualTLSServer(t *testing.T, h http.Handler) (*httptest.Server, testpki.Files) {
	t.Helper()
	pki, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(pki.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, pki
}
