package refserver

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// demoPrivateKey reads a committed demo private key (demokeys/).
func demoPrivateKey(t *testing.T, name string) crypto.Signer {
	t.Helper()
	raw, err := os.ReadFile("demokeys/" + name)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("demokeys/%s: no PEM block", name)
	}
	switch block.Type {
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k.(crypto.Signer)
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	t.Fatalf("demokeys/%s: unexpected PEM block %s", name, block.Type)
	return nil
}

// The committed private keys are the halves of the public keys built into the server: the README's
// PRIVATE_KEY examples authenticate the demo clients.
func TestDemoPrivateKeysMatchTheDemoClients(t *testing.T) {
	clients := DefaultClients()
	for i, name := range []string{"client-a.pem", "client-b.pem"} {
		pub := demoPrivateKey(t, name).Public()
		if !reflect.DeepEqual(pub, clients[i].PublicKey) {
			t.Errorf("demokeys/%s is not the key pair of demo client %s", name, clients[i].ID)
		}
	}
	if !strings.HasSuffix(DemoPrivateKeyA, "/client-a.pem") || !strings.HasSuffix(DemoPrivateKeyB, "/client-b.pem") {
		t.Errorf("DemoPrivateKeyA/B name other files: %s, %s", DemoPrivateKeyA, DemoPrivateKeyB)
	}
}

// assertion is a client assertion to sign: its header and claims, edited by each case.
type assertion struct {
	method jwt.SigningMethod
	key    any
	header map[string]any
	claims jwt.MapClaims
}

func (e *env) demoAssertion(t *testing.T, clientID, kid string, key crypto.Signer) assertion {
	method := jwt.SigningMethod(jwt.SigningMethodRS384)
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		method = jwt.SigningMethodES384
	}
	return assertion{method: method, key: key, header: map[string]any{"kid": kid}, claims: jwt.MapClaims{
		"iss": clientID, "sub": clientID, "aud": e.root + TokenPath,
		"exp": e.clock.Now().Add(4 * time.Minute).Unix(), "jti": rand.Text(),
	}}
}

func (a assertion) sign(t *testing.T) string {
	t.Helper()
	tok := jwt.NewWithClaims(a.method, a.claims)
	for k, v := range a.header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(a.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func assertionForm(jwt string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {jwt}}
}

func TestTokenEndpointAcceptsSMARTClientAssertions(t *testing.T) {
	e := newEnv(t, Config{})
	rsaKey, ecKey := demoPrivateKey(t, "client-a.pem"), demoPrivateKey(t, "client-b.pem")
	a := e.token(assertionForm(e.demoAssertion(t, DemoClientIDA, DemoKeyIDA, rsaKey).sign(t)), nil, formCT)
	if a.status != http.StatusOK || a.ok.AccessToken == "" || a.ok.TokenType != "Bearer" {
		t.Fatalf("RS384 assertion of client-a: expected 200 with a token, got %d %+v", a.status, a.ok)
	}
	form := assertionForm(e.demoAssertion(t, DemoClientIDB, DemoKeyIDB, ecKey).sign(t))
	form.Set("client_id", DemoClientIDB) // harmless when it names the same client
	form.Set("scope", "system/*.read")
	b := e.token(form, nil, formCT)
	if b.status != http.StatusOK || b.ok.AccessToken == "" || b.ok.Scope != "system/*.read" {
		t.Fatalf("ES384 assertion of client-b: expected 200 with a token, got %d %+v", b.status, b.ok)
	}
	// The tokens act as users A and B.
	poll := e.kickoff(a.ok.AccessToken, "")
	wantStatus(t, e.get(poll, a.ok.AccessToken), http.StatusAccepted)
	wantOO(t, e.get(poll, b.ok.AccessToken), http.StatusNotFound, sevError, codeNotFound)
}

// SMART's bulk-data-client signs exp = Math.round(Date.now()/1000) + accessTokenLifetime, 300 by default
// (smart-on-fhir/bulk-data-client src/lib/BulkDataClient.ts getAccessToken, config/defaults.js), so when the
// rounding goes up its exp lies up to half a second more than five minutes ahead; a client whose clock runs
// ahead of the server's does the same with a whole second or more. RFC 7519 §4.1.4 allows a small leeway for
// this; beyond it the assertion is still refused.
func TestTokenEndpointAcceptsSMARTClientExpWithinLeeway(t *testing.T) {
	e := newEnv(t, Config{})
	rsaKey := demoPrivateKey(t, "client-a.pem")
	e.clock.Advance(600*time.Millisecond - time.Duration(e.clock.Now().Nanosecond())) // now ends in .600 s
	now := e.clock.Now()
	smartExp := time.Unix(int64(math.Round(float64(now.UnixMilli())/1000)), 0).Add(300 * time.Second)
	if smartExp.Sub(now) <= MaxAssertionLifetime {
		t.Fatalf("test setup: the SMART client's exp is %s ahead, not beyond %s", smartExp.Sub(now), MaxAssertionLifetime)
	}
	for _, c := range []struct {
		name string
		exp  time.Time
		want int
	}{
		{"SMART bulk-data-client, rounded up", smartExp, http.StatusOK},
		{"a client clock 30 s ahead", now.Add(MaxAssertionLifetime + 30*time.Second), http.StatusOK},
		{"at the leeway's end", now.Add(MaxAssertionLifetime + AssertionExpLeeway), http.StatusOK},
		{"a second beyond the leeway", now.Add(MaxAssertionLifetime + AssertionExpLeeway + time.Second), http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := e.demoAssertion(t, DemoClientIDA, DemoKeyIDA, rsaKey)
			a.claims["exp"] = c.exp.Unix()
			got := e.token(assertionForm(a.sign(t)), nil, formCT)
			if got.status != c.want {
				t.Fatalf("exp %s ahead: expected %d, got %d %+v", c.exp.Sub(now), c.want, got.status, got)
			}
		})
	}
}

func TestTokenEndpointRefusesBadClientAssertions(t *testing.T) {
	secretOnly := Client{ID: "secret-only", Secret: "s3cret", UserID: DemoUserIDA}
	e := newEnv(t, Config{Clients: append(DefaultClients(), secretOnly)})
	rsaKey := demoPrivateKey(t, "client-a.pem")
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(rsaKey.Public()))})
	now := e.clock.Now()

	cases := []struct {
		name   string
		edit   func(*assertion)
		form   func(url.Values)
		status int
		code   string
		want   string // in error_description: the check that refused it
	}{
		{"signed by another key", func(a *assertion) { a.key = otherRSA }, nil, 401, "invalid_client", "signature is invalid"},
		{"alg none", func(a *assertion) { a.method, a.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType }, nil, 401, "invalid_client", "signing method none is invalid"},
		{"HS256 with the public key as its secret", func(a *assertion) { a.method, a.key = jwt.SigningMethodHS256, pubPEM }, nil, 401, "invalid_client", "signing method HS256 is invalid"},
		{"RS256, not a SMART algorithm", func(a *assertion) { a.method = jwt.SigningMethodRS256 }, nil, 401, "invalid_client", "signing method RS256 is invalid"},
		{"ES384 for an RSA client", func(a *assertion) { a.method, a.key = jwt.SigningMethodES384, otherEC }, nil, 401, "invalid_client", "signs RS384"},
		{"wrong aud", func(a *assertion) { a.claims["aud"] = "https://auth.example/oauth2/token" }, nil, 401, "invalid_client", "aud 'https://auth.example"},
		{"aud of the FHIR base", func(a *assertion) {
			a.claims["aud"] = strings.TrimSuffix(a.claims["aud"].(string), TokenPath) + "/fhir"
		}, nil, 401, "invalid_client", "must be this token endpoint's URL"},
		{"expired", func(a *assertion) { a.claims["exp"] = now.Add(-time.Second).Unix() }, nil, 401, "invalid_client", "token is expired"},
		{"exp more than five minutes ahead", func(a *assertion) { a.claims["exp"] = now.Add(7 * time.Minute).Unix() }, nil, 401, "invalid_client", "at most 5m0s"},
		{"no exp", func(a *assertion) { delete(a.claims, "exp") }, nil, 401, "invalid_client", "exp claim is required"},
		{"no jti", func(a *assertion) { delete(a.claims, "jti") }, nil, 401, "invalid_client", "jti is required"},
		{"unknown kid", func(a *assertion) { a.header["kid"] = "another-key" }, nil, 401, "invalid_client", "kid 'another-key'"},
		{"no kid", func(a *assertion) { delete(a.header, "kid") }, nil, 401, "invalid_client", "kid ''"},
		{"unknown iss", func(a *assertion) { a.claims["iss"], a.claims["sub"] = "nobody", "nobody" }, nil, 401, "invalid_client", "iss 'nobody'"},
		{"iss of a client without a key", func(a *assertion) { a.claims["iss"], a.claims["sub"] = secretOnly.ID, secretOnly.ID }, nil, 401, "invalid_client", "iss 'secret-only'"},
		{"sub is not iss", func(a *assertion) { a.claims["sub"] = DemoClientIDB }, nil, 401, "invalid_client", "sub 'client-b' must equal iss"},
		{"client_id of another client", nil, func(f url.Values) { f.Set("client_id", DemoClientIDB) }, 400, "invalid_request", "client_id differs"},
		{"and a client secret", nil, func(f url.Values) { f.Set("client_secret", DemoClientSecretA) }, 400, "invalid_request", "one client authentication method"},
		{"another assertion type", nil, func(f url.Values) {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		}, 400, "invalid_request", "client_assertion_type must be"},
		{"not a JWT", nil, func(f url.Values) { f.Set("client_assertion", "not.a.jwt") }, 401, "invalid_client", "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.demoAssertion(t, DemoClientIDA, DemoKeyIDA, rsaKey)
			if c.edit != nil {
				c.edit(&a)
			}
			form := assertionForm(a.sign(t))
			if c.form != nil {
				c.form(form)
			}
			r := e.token(form, nil, formCT)
			if r.status != c.status || r.ok.Error != c.code || !strings.Contains(r.ok.Description, c.want) || r.ok.AccessToken != "" {
				t.Fatalf("expected %d %s saying %q and no token, got %d %+v", c.status, c.code, c.want, r.status, r.ok)
			}
			if got := r.header.Get("WWW-Authenticate"); got != "" {
				t.Fatalf("a client that sent an assertion gets no Basic challenge, got %q", got)
			}
		})
	}

	// An assertion is good for one token: its replay is refused, whichever client replays it.
	signed := e.demoAssertion(t, DemoClientIDA, DemoKeyIDA, rsaKey).sign(t)
	if r := e.token(assertionForm(signed), nil, formCT); r.status != http.StatusOK {
		t.Fatalf("first use: expected 200, got %d %+v", r.status, r.ok)
	}
	r := e.token(assertionForm(signed), nil, formCT)
	if r.status != http.StatusUnauthorized || r.ok.Error != "invalid_client" || !strings.Contains(r.ok.Description, "jti") {
		t.Fatalf("replayed assertion: expected 401 invalid_client naming the jti, got %d %+v", r.status, r.ok)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The log of jtis forgets an assertion once it has expired (it is then refused as expired anyway) and
// refuses more than a client's bound of live ones; another client keeps its own room.
func TestAssertionLogIsBounded(t *testing.T) {
	l := newAssertionLog()
	l.max = 2
	now := time.Unix(1_700_000_000, 0)
	if l.remember("c", "1", now.Add(time.Minute), now) != nil || l.remember("c", "2", now.Add(2*time.Minute), now) != nil {
		t.Fatal("two assertions within the bound refused")
	}
	if err := l.remember("c", "1", now.Add(time.Minute), now); err != errReplayed {
		t.Fatalf("replay: expected errReplayed, got %v", err)
	}
	if err := l.remember("c", "3", now.Add(time.Minute), now); err == nil || err == errReplayed {
		t.Fatalf("beyond the bound: expected a refusal, got %v", err)
	}
	if err := l.remember("d", "1", now.Add(time.Minute), now); err != nil {
		t.Fatalf("another client, while c is at its bound: expected room, got %v", err)
	}
	later := now.Add(time.Minute)
	if err := l.remember("c", "3", later.Add(time.Minute), later); err != nil {
		t.Fatalf("after c's first expired: expected room, got %v", err)
	}
	if len(l.seen) != 2 || l.exp.Len() != 2 || l.counts["c"] != 2 || l.counts["d"] != 0 {
		t.Fatalf("expected the expired jtis forgotten, got %d remembered, %d queued, counts %v", len(l.seen), l.exp.Len(), l.counts)
	}
}

func TestParsePublicKeyPEM(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for _, c := range []struct {
		name string
		pem  []byte
		err  string
	}{
		{"demo RSA", demoPublicKeyA, ""},
		{"demo EC", demoPublicKeyB, ""},
		{"P-256", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&p256.PublicKey))}), "P-384"},
		{"RSA 1024", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&small.PublicKey)}), "2048"},
		{"a private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), "expected PUBLIC KEY"},
		{"not PEM", []byte("hello"), "no PEM block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParsePublicKeyPEM(c.pem)
			if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
				t.Fatalf("expected error %q, got %v", c.err, err)
			}
		})
	}
}

// The SMART configuration names the token endpoint a client reaches, and what it accepts, without a token.
func TestSMARTConfigurationNamesTheTokenEndpoint(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.get(e.base+"/.well-known/smart-configuration", "")
	var conf struct {
		TokenEndpoint string   `json:"token_endpoint"`
		Methods       []string `json:"token_endpoint_auth_methods_supported"`
		Algs          []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		Grants        []string `json:"grant_types_supported"`
		Capabilities  []string `json:"capabilities"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &conf) != nil {
		t.Fatalf("expected 200 JSON, got %d %s", r.status, r.body)
	}
	if conf.TokenEndpoint != e.root+TokenPath || !slices.Contains(conf.Methods, "private_key_jwt") || !slices.Equal(conf.Algs, AssertionAlgs) ||
		!slices.Equal(conf.Grants, []string{"client_credentials"}) || !slices.Contains(conf.Capabilities, "client-confidential-asymmetric") {
		t.Fatalf("unexpected smart-configuration: %+v", conf)
	}
	// The endpoint it names accepts an assertion whose aud is that URL.
	a := e.demoAssertion(t, DemoClientIDA, DemoKeyIDA, demoPrivateKey(t, "client-a.pem"))
	a.claims["aud"] = conf.TokenEndpoint
	if tok := e.token(assertionForm(a.sign(t)), nil, formCT); tok.status != http.StatusOK {
		t.Fatalf("assertion for the advertised endpoint: got %d %+v", tok.status, tok.ok)
	}
}

// Behind a public base URL the configuration names the token endpoint at that origin, and an assertion made
// for it is accepted; one for another origin is not.
func TestSMARTConfigurationNamesThePublicTokenEndpoint(t *testing.T) {
	e := newEnv(t, Config{PublicBaseURL: "https://fhir.example/fhir"})
	r := e.get(e.base+"/.well-known/smart-configuration", "")
	var conf struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &conf) != nil || conf.TokenEndpoint != "https://fhir.example"+TokenPath {
		t.Fatalf("expected the token endpoint at the public origin, got %d %s", r.status, r.body)
	}
	for aud, want := range map[string]int{conf.TokenEndpoint: http.StatusOK, "https://other.example" + TokenPath: http.StatusUnauthorized} {
		a := e.demoAssertion(t, DemoClientIDA, DemoKeyIDA, demoPrivateKey(t, "client-a.pem"))
		a.claims["aud"] = aud
		if tok := e.token(assertionForm(a.sign(t)), nil, formCT); tok.status != want {
			t.Errorf("aud %s: expected %d, got %d", aud, want, tok.status)
		}
	}
}
