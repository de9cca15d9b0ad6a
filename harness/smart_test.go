package harness

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The demo clients' committed test keys (refserver/demokeys), from the harness's directory.
var (
	demoKeyA = filepath.Join("..", refserver.DemoPrivateKeyA) // RSA, PKCS#8
	demoKeyB = filepath.Join("..", refserver.DemoPrivateKeyB) // EC P-384, SEC1
)

// smartConfig authenticates both demo clients by their keys: user A by RSA (RS384), user B by EC (ES384).
func smartConfig(root string) Config {
	return Config{AuthConfig: AuthConfig{
		TokenURL: root + refserver.TokenPath,
		ClientID: refserver.DemoClientIDA, PrivateKey: demoKeyA, KeyID: refserver.DemoKeyIDA,
		ClientIDB: refserver.DemoClientIDB, PrivateKeyB: demoKeyB, KeyIDB: refserver.DemoKeyIDB,
		Scope: "system/*.read",
	}}
}

// assertionRecorder counts the token requests that authenticated by a client assertion, and those that
// carried a client secret in any form.
type assertionRecorder struct {
	mu               sync.Mutex
	assertions, secr int
}

func (a *assertionRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r) // parses the form: r.PostForm is filled afterwards
		if r.URL.Path != refserver.TokenPath {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.PostForm.Get("client_assertion") != "" {
			a.assertions++
		}
		if _, _, basic := r.BasicAuth(); basic || r.PostForm.Has("client_secret") {
			a.secr++
		}
	})
}

func TestCrossUserScenariosPassWithSMARTBackendServices(t *testing.T) {
	rec, asr := &tokenRecorder{}, &assertionRecorder{}
	ts := httptest.NewServer(asr.wrap(rec.wrap(refserverHandler(t, refserver.Config{}))))
	t.Cleanup(ts.Close)
	cfg := smartConfig(ts.URL)
	cfg.Tags = "@cross-user,@EXP-POLL-202"
	res, out, _ := runTarget(t, ts.URL, cfg)
	if want := scenarioCount(t, "cross-user") + scenarioCount(t, "EXP-POLL-202"); !res.Passed || res.Scenarios != want || len(res.Findings.Skips()) != 0 {
		t.Fatalf("expected %d scenarios passed without skips, got passed=%v scenarios=%d skips=%+v\n%s", want, res.Passed, res.Scenarios, res.Findings.Skips(), out)
	}
	if rec.perClient[refserver.DemoClientIDA] == 0 || rec.perClient[refserver.DemoClientIDB] == 0 || rec.unauthorized != 0 {
		t.Fatalf("expected tokens for both clients and no 401, got %v and %d 401s", rec.perClient, rec.unauthorized)
	}
	if asr.assertions < 2 || asr.secr != 0 {
		t.Fatalf("expected every token request to authenticate by a client assertion, got %d assertions and %d with a secret", asr.assertions, asr.secr)
	}
}

// writeKey writes k as PEM of the given block type to a file of dir and returns its path.
func writeKey(t *testing.T, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// A run longer than the tokens' lifetime passes: the assertion source signs a new assertion for every new
// token, and the server, which refuses a replayed jti, never answers 401. Longer by the clock the run and the
// server share (movingClock), which every request moves on, not by waiting. The keys are generated here, in the
// formats the demo keys are not in: user A an EC key in PKCS#8, user B an RSA key in PKCS#1.
func TestSMARTTokensAreRenewedOnALongRun(t *testing.T) {
	// A token is renewed 2 s (by the clock) after its issue; the server refuses it 12 s after: a few dozen
	// requests of a run that did not renew it.
	const lifetime, step = renewAhead + 2*time.Second, 600 * time.Millisecond
	clock, moving := movingClock(step)
	dir := t.TempDir()
	ecKey := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	keyA := writeKey(t, dir, "a.pem", "PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey)))
	keyB := writeKey(t, dir, "b.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	rec, asr := &tokenRecorder{}, &assertionRecorder{}
	// Jobs of 10 s by that clock, so that its steps do not finish them before a poll sees them running.
	ts := httptest.NewServer(asr.wrap(rec.wrap(moving(refserverHandler(t, refserver.Config{Clock: clock, ExportDuration: 10 * time.Second, ReportDuration: 5 * time.Second, Clients: []refserver.Client{
		{ID: "smart-a", UserID: refserver.DemoUserIDA, TokenLifetime: lifetime, PublicKey: &ecKey.PublicKey, KeyID: "key-a"},
		{ID: "smart-b", UserID: refserver.DemoUserIDB, TokenLifetime: lifetime, PublicKey: &rsaKey.PublicKey, KeyID: "key-b"},
	}})))))
	t.Cleanup(ts.Close)
	cfg := Config{Tags: "@cross-user,@EXP-POLL-202", AuthConfig: AuthConfig{
		TokenURL: ts.URL + refserver.TokenPath,
		ClientID: "smart-a", PrivateKey: keyA, KeyID: "key-a",
		ClientIDB: "smart-b", PrivateKeyB: keyB, KeyIDB: "key-b",
	}}
	cfg.clock = clock.Now
	res, out, _ := runTarget(t, ts.URL, cfg)
	if !res.Passed || len(res.Findings.Skips()) != 0 {
		t.Fatalf("run with %s tokens: expected a pass without skips\n%s", lifetime, out)
	}
	moved := time.Duration(clock.offset.Load())
	if moved <= lifetime {
		t.Fatalf("the requests moved the clock on %s, not past the token lifetime %s: the test proves nothing", moved, lifetime)
	}
	if rec.unauthorized != 0 || rec.perClient["smart-a"] < 2 || rec.perClient["smart-b"] < 2 {
		t.Fatalf("expected renewed tokens for both clients and no 401 in %s, got %v and %d 401s", moved, rec.perClient, rec.unauthorized)
	}
	if asr.secr != 0 || asr.assertions != rec.perClient["smart-a"]+rec.perClient["smart-b"] {
		t.Fatalf("expected one assertion per token, got %d assertions for %v, %d requests with a secret", asr.assertions, rec.perClient, asr.secr)
	}
}

// A key the server does not know for the client stops the run at the preflight, saying that the token
// endpoint refused the client and which variables to check, and quoting nothing of the key.
func TestAWrongPrivateKeyIsAPreflightError(t *testing.T) {
	ts := httptest.NewServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	cfg := smartConfig(ts.URL)
	cfg.Target = ts.URL + "/fhir"
	// client-b's EC key under client-a's RSA kid.
	cfg.PrivateKey = demoKeyB
	wantPreflightError(t, cfg, "could not get an access token for CLIENT_ID from TOKEN_URL: the token endpoint refused the client", "check TOKEN_URL, CLIENT_ID, PRIVATE_KEY and KEY_ID: the server must hold")

	// client-a's own key under another kid.
	cfg.PrivateKey, cfg.KeyID = demoKeyA, "not-the-kid"
	var out bytes.Buffer
	cfg.Out, cfg.Log, cfg.ReportsDir = &out, &out, t.TempDir()
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "invalid_client") || !strings.Contains(err.Error(), "kid 'not-the-kid'") {
		t.Fatalf("expected the token endpoint's invalid_client about the kid, got %v", err)
	}
	for _, text := range []string{err.Error(), out.String()} {
		wantNoKeyMaterial(t, text, demoKeyA, demoKeyB)
	}
}

// wantNoKeyMaterial fails if text holds a piece of the PEM files at paths.
func wantNoKeyMaterial(t *testing.T, text string, paths ...string) {
	t.Helper()
	if strings.Contains(text, "-----BEGIN") {
		t.Errorf("a PEM block is printed: %.200s", text)
	}
	for _, path := range paths {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(text, line[:16]) {
				t.Errorf("a line of %s is printed", path)
			}
		}
	}
}

func TestSMARTVariablesAreValidated(t *testing.T) {
	dir := t.TempDir()
	p256 := writeKey(t, dir, "p256.pem", "EC PRIVATE KEY", must(x509.MarshalECPrivateKey(must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))))
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ed := writeKey(t, dir, "ed.pem", "PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(edKey)))
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pemText := string(must(os.ReadFile(demoKeyA)))
	encrypted := filepath.Join(dir, "enc.pem")
	if err := os.WriteFile(encrypted, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600); err != nil {
		t.Fatal(err)
	}
	garbled := writeKey(t, dir, "garbled.pem", "PRIVATE KEY", []byte("garbage that is no PKCS#8"))

	base := func(edit func(*AuthConfig)) Config {
		a := AuthConfig{TokenURL: "https://a.example/token", ClientID: "c", PrivateKey: demoKeyA, KeyID: "k"}
		edit(&a)
		return Config{Target: "https://x.example/fhir", AuthConfig: a}
	}
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"secret and key", base(func(a *AuthConfig) { a.ClientSecret = "s3cret" }), "CLIENT_SECRET and PRIVATE_KEY are two ways"},
		{"second secret and key", base(func(a *AuthConfig) {
			a.ClientIDB, a.ClientSecretB, a.PrivateKeyB, a.KeyIDB = "d", "s3cret", demoKeyB, "k"
		}), "CLIENT_SECRET_B and PRIVATE_KEY_B are two ways"},
		{"key without kid", base(func(a *AuthConfig) { a.KeyID = "" }), "KEY_ID is required with PRIVATE_KEY"},
		{"kid without key", base(func(a *AuthConfig) { a.PrivateKey, a.ClientSecret = "", "s3cret" }), "KEY_ID is the id of PRIVATE_KEY"},
		{"second key without a second client", base(func(a *AuthConfig) { a.PrivateKeyB, a.KeyIDB = demoKeyB, "k" }), "CLIENT_ID_B and CLIENT_SECRET_B (or PRIVATE_KEY_B)"},
		{"second key without kid", base(func(a *AuthConfig) { a.ClientIDB, a.PrivateKeyB = "d", demoKeyB }), "KEY_ID_B is required with PRIVATE_KEY_B"},
		{"key without client", base(func(a *AuthConfig) { a.ClientID = "" }), "CLIENT_ID, PRIVATE_KEY and KEY_ID"},
		{"missing file", base(func(a *AuthConfig) { a.PrivateKey = filepath.Join(dir, "none.pem") }), "PRIVATE_KEY=\"" + filepath.Join(dir, "none.pem") + "\": no such file"},
		{"not PEM", base(func(a *AuthConfig) { a.PrivateKey = notPEM }), "no PEM block found"},
		{"garbled", base(func(a *AuthConfig) { a.PrivateKey = garbled }), "the PRIVATE KEY block does not parse"},
		{"encrypted", base(func(a *AuthConfig) { a.PrivateKey = encrypted }), "the key is encrypted"},
		{"P-256", base(func(a *AuthConfig) { a.PrivateKey = p256 }), "needs P-384"},
		{"Ed25519", base(func(a *AuthConfig) { a.PrivateKey = ed }), "the key is Ed25519; SMART Backend Services signs with RSA"},
		{"the PEM itself", base(func(a *AuthConfig) { a.PrivateKey = pemText }), "PRIVATE_KEY holds what looks like a PEM key itself"},
		{"a second bad key", base(func(a *AuthConfig) { a.ClientIDB, a.PrivateKeyB, a.KeyIDB = "d", notPEM, "k" }), "PRIVATE_KEY_B=\"" + notPEM + "\": no PEM block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.ReportsDir, c.cfg.Out = t.TempDir(), &bytes.Buffer{}
			_, err := Run(context.Background(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("expected an error containing %q, got %v", c.want, err)
			}
			wantNoKeyMaterial(t, err.Error(), demoKeyA, demoKeyB, p256, ed)
		})
	}
}

// Every format and kind SMART signs with loads: RSA in PKCS#1 and PKCS#8, EC P-384 in SEC1 and PKCS#8.
func TestPrivateKeyFormats(t *testing.T) {
	dir := t.TempDir()
	rsaKey := must(rsa.GenerateKey(rand.Reader, 2048))
	ecKey := must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader))
	for _, c := range []struct {
		path string
		alg  string
	}{
		{writeKey(t, dir, "rsa1.pem", "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "RS384"},
		{writeKey(t, dir, "rsa8.pem", "PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(rsaKey))), "RS384"},
		{writeKey(t, dir, "ec1.pem", "EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ecKey))), "ES384"},
		{writeKey(t, dir, "ec8.pem", "PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ecKey))), "ES384"},
		{demoKeyA, "RS384"},
		{demoKeyB, "ES384"},
	} {
		k, err := loadSigningKey("PRIVATE_KEY", c.path, "kid")
		if err != nil || k.method.Alg() != c.alg {
			t.Errorf("%s: expected an %s key, got %v, %v", filepath.Base(c.path), c.alg, k.method, err)
		}
	}
}

// The token request is SMART's: client credentials with the scope and a client assertion, no secret in any
// form; the assertion is a JWT with alg, kid and typ in its header, iss and sub the client, aud the token
// URL, exp at most five minutes ahead and a jti of its own, signed by the client's key.
func TestTheClientAssertionFollowsSMART(t *testing.T) {
	for _, keyPath := range []string{demoKeyA, demoKeyB} {
		t.Run(filepath.Base(keyPath), func(t *testing.T) {
			key, err := loadSigningKey("PRIVATE_KEY", keyPath, "the-kid")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var forms []url.Values
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				mu.Lock()
				if r.Header.Get("Authorization") != "" {
					r.PostForm.Set("authorization-header", "yes")
				}
				forms = append(forms, r.PostForm)
				mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "issued-" + rand.Text(), "token_type": "Bearer", "expires_in": 3600})
			}))
			t.Cleanup(ts.Close)
			tokenURL := ts.URL + "/auth/token"
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, ts.Client())
			clock := &aheadClock{}
			src := &renewingSource{fetch: assertionSource{ctx: ctx, tokenURL: tokenURL, clientID: "the-client", scopes: []string{"system/*.read", "system/Patient.read"}, key: key, now: clock.Now}, now: clock.Now}
			before := clock.Now()
			for range 2 { // the token of an hour is renewed once the clock has moved on an hour
				if _, err := src.Token(); err != nil {
					t.Fatal(err)
				}
				clock.jump(time.Hour)
			}
			if len(forms) != 2 {
				t.Fatalf("expected two token requests, got %d", len(forms))
			}
			jtis := map[string]bool{}
			for i, f := range forms {
				signed := before.Add(time.Duration(i) * time.Hour) // by the clock, an hour after the last one
				for k, want := range map[string]string{"grant_type": "client_credentials", "scope": "system/*.read system/Patient.read", "client_assertion_type": clientAssertionType} {
					if f.Get(k) != want {
						t.Errorf("%s: expected %q, got %q", k, want, f.Get(k))
					}
				}
				if f.Has("client_secret") || f.Has("authorization-header") {
					t.Errorf("a secret was sent: client_secret %v, Authorization header %v", f.Has("client_secret"), f.Has("authorization-header"))
				}
				claims := jwt.MapClaims{}
				tok, err := jwt.NewParser(jwt.WithValidMethods([]string{key.method.Alg()}), jwt.WithExpirationRequired()).ParseWithClaims(f.Get("client_assertion"), claims,
					func(*jwt.Token) (any, error) { return key.key.Public(), nil })
				if err != nil {
					t.Fatalf("the assertion does not verify with the client's public key: %v", err)
				}
				if tok.Header["kid"] != "the-kid" || tok.Header["typ"] != "JWT" || tok.Header["alg"] != key.method.Alg() {
					t.Errorf("header: expected alg %s, kid the-kid, typ JWT, got %v", key.method.Alg(), tok.Header)
				}
				if claims["iss"] != "the-client" || claims["sub"] != "the-client" || claims["aud"] != tokenURL {
					t.Errorf("claims: expected iss and sub the-client, aud %s (a string), got %v", tokenURL, claims)
				}
				exp, _ := claims.GetExpirationTime()
				if d := exp.Sub(signed); d <= 0 || d > 5*time.Minute {
					t.Errorf("exp: expected within five minutes, got %s ahead", d)
				}
				jti, _ := claims["jti"].(string)
				if len(jti) < 16 || jtis[jti] {
					t.Errorf("jti %q: expected a unique random id", jti)
				}
				jtis[jti] = true
			}
		})
	}
}

// An independent HL7 Bulk Data server as the SMART reference server is: its own polling path, SMART Backend
// Services with tokens of seconds. In profile bulkdata every export scenario passes, with no 401 and no skip:
// the tokens are renewed by fresh assertions through the run, however long its jobs take.
func TestASMARTBulkDataServerPassesInProfileBulkdata(t *testing.T) {
	clients := refserver.DefaultClients()
	for i := range clients {
		clients[i].TokenLifetime = 2 * time.Second
	}
	rec, asr := &tokenRecorder{}, &assertionRecorder{}
	ts := httptest.NewServer(asr.wrap(rec.wrap(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus", Clients: clients}))))
	t.Cleanup(ts.Close)
	cfg := smartConfig(ts.URL)
	cfg.Profile = "bulkdata"
	res, out, _ := runTarget(t, ts.URL, cfg)
	if !res.Passed || len(res.Failures) != 0 || len(res.Findings.Skips()) != 0 {
		t.Fatalf("passed=%v failures=%+v skips=%+v\n%s", res.Passed, res.Failures, res.Findings.Skips(), out)
	}
	if rec.unauthorized != 0 || rec.perClient[refserver.DemoClientIDA] < 2 || asr.secr != 0 {
		t.Fatalf("want renewed tokens by assertion and no 401, got %v, %d 401s, %d requests with a secret\n%s", rec.perClient, rec.unauthorized, asr.secr, out)
	}
}
