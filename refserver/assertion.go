package refserver

import (
	"cmp"
	"container/heap"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SMART Backend Services client authentication (private_key_jwt, RFC 7523 §2.2 as profiled by
// hl7.org/fhir/smart-app-launch/backend-services.html): instead of a secret the client posts
//
//	client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
//	client_assertion=<a JWT signed with the client's private key>
//
// and the token endpoint verifies it with the public key registered for the client. This is what the
// independent Bulk Data servers accept (the SMART reference bulk-data-server, Inferno's), so the harness's
// support for it is tested end to end against this server.

// ClientAssertionType is the client_assertion_type of a JWT client assertion (RFC 7523 §2.2).
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// MaxAssertionLifetime is how far in the future an assertion's exp may lie: SMART Backend Services says no
// more than five minutes, which bounds how long a replay must be remembered.
const MaxAssertionLifetime = 5 * time.Minute

// AssertionExpLeeway is what an assertion's exp may lie beyond MaxAssertionLifetime and still be accepted:
// RFC 7519 §4.1.4 lets a server allow "some small leeway, usually no more than a few minutes, to account for
// clock skew". Without it, SMART's own bulk-data-client (exp = Math.round(Date.now()/1000) + 300, its default
// accessTokenLifetime) was refused whenever the rounding went up, about every other token request, and so was
// any client whose clock runs a little ahead of this server's: Inferno's Backend Services tests sign exactly
// five minutes ahead by their own clock.
const AssertionExpLeeway = time.Minute

// AssertionAlgs are the signature algorithms accepted: the two SMART requires servers to support. Neither
// "none" nor an HMAC is among them, so a public key can never serve as a shared secret.
var AssertionAlgs = []string{"RS384", "ES384"}

// maxRememberedAssertions bounds the jtis kept against replay for one client; beyond it the endpoint answers
// that client 503 until some of its assertions expire (an assertion lives five minutes at most, six with the
// leeway, so this is about 28 token requests a second). Each client has its own budget, as for issued tokens, so that one key holder's
// flood does not lock the other clients out; the clients are the configured ones, so the memory is bounded.
const maxRememberedAssertions = 10_000

// The demo key pairs of the demo clients. They are test keys, published in this repository: anyone can sign
// as the demo clients with them, exactly as anyone can use the demo secrets. Never register them anywhere
// real. The private halves, demokeys/client-a.pem (RSA, PKCS#8) and demokeys/client-b.pem (EC P-384, SEC1),
// are what the README's examples pass as PRIVATE_KEY; only the public halves are built into the server.
const (
	DemoKeyIDA = "demo-key-a"
	DemoKeyIDB = "demo-key-b"
	// DemoPrivateKeyA and DemoPrivateKeyB are the private keys' paths from the repository's root.
	DemoPrivateKeyA = "refserver/demokeys/client-a.pem"
	DemoPrivateKeyB = "refserver/demokeys/client-b.pem"
)

var (
	//go:embed demokeys/client-a.pub.pem
	demoPublicKeyA []byte
	//go:embed demokeys/client-b.pub.pem
	demoPublicKeyB []byte
)

// mustDemoKey parses an embedded demo public key; a failure is a broken build, caught by every test.
func mustDemoKey(pemBytes []byte) crypto.PublicKey {
	k, err := ParsePublicKeyPEM(pemBytes)
	if err != nil {
		panic("refserver: embedded demo key: " + err.Error())
	}
	return k
}

// ParsePublicKeyPEM reads a PEM "PUBLIC KEY" (PKIX) or "RSA PUBLIC KEY" (PKCS#1), or the key of a
// "CERTIFICATE", and checks it is one the token endpoint can verify with (checkClientKey).
func ParsePublicKeyPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found; expected -----BEGIN PUBLIC KEY-----")
	}
	var (
		key crypto.PublicKey
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q: expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE", block.Type)
	}
	if err != nil {
		return nil, err
	}
	return key, checkClientKey(key)
}

// checkClientKey accepts the keys of AssertionAlgs: RSA (RS384) and EC P-384 (ES384).
func checkClientKey(k crypto.PublicKey) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits: expected at least 2048", k.N.BitLen())
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P384() {
			return fmt.Errorf("EC key on %s: ES384 needs P-384", k.Curve.Params().Name)
		}
		return nil
	}
	return fmt.Errorf("%T: expected an RSA (RS384) or EC P-384 (ES384) public key", k)
}

// algFor is the one algorithm a client's key verifies: a signature in the other is refused even before
// the library would notice the key does not fit.
func algFor(k crypto.PublicKey) string {
	if _, ok := k.(*ecdsa.PublicKey); ok {
		return "ES384"
	}
	return "RS384"
}

// tokenEndpointError is an RFC 6749 §5.2 error for writeTokenError.
type tokenEndpointError struct {
	status int
	code   string
	desc   string
}

func invalidClient(format string, args ...any) *tokenEndpointError {
	return &tokenEndpointError{http.StatusUnauthorized, "invalid_client", fmt.Sprintf(format, args...)}
}

// clientByAssertion authenticates the client of a request carrying client_assertion. Every refusal of the
// assertion itself is invalid_client (RFC 7523 §3.2); the description says which check failed, which only
// the holder of the key can act on (an unknown client and a bad signature read alike only to the extent that
// the client id is the assertion's own claim).
func (s *Server) clientByAssertion(r *http.Request, form url.Values) (Client, *tokenEndpointError) {
	if t := form.Get("client_assertion_type"); t != ClientAssertionType {
		return Client{}, &tokenEndpointError{http.StatusBadRequest, "invalid_request",
			fmt.Sprintf("client_assertion_type must be %s, got '%s'", ClientAssertionType, truncate(t, 80))}
	}
	raw := form.Get("client_assertion")
	if raw == "" {
		return Client{}, &tokenEndpointError{http.StatusBadRequest, "invalid_request", "client_assertion is empty"}
	}
	now := s.cfg.Clock.Now()
	var client Client
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(
		jwt.WithValidMethods(AssertionAlgs),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	).ParseWithClaims(raw, claims, func(tok *jwt.Token) (any, error) {
		// The claims are not verified yet: they only choose the key that verifies them.
		iss, _ := claims["iss"].(string)
		c, ok := s.tokens.clients[iss]
		if !ok || c.PublicKey == nil {
			return nil, fmt.Errorf("iss '%s' is no client registered with a public key", truncate(iss, 60))
		}
		if kid, _ := tok.Header["kid"].(string); kid != c.KeyID {
			return nil, fmt.Errorf("kid '%s' is not the key of client %s", truncate(kid, 60), c.ID)
		}
		if alg := algFor(c.PublicKey); tok.Method.Alg() != alg {
			return nil, fmt.Errorf("alg %s: the key of client %s signs %s", tok.Method.Alg(), c.ID, alg)
		}
		client = c
		return c.PublicKey, nil
	})
	if err != nil {
		return Client{}, invalidClient("client_assertion refused: %v", err)
	}
	// Verified from here on.
	if sub, _ := claims["sub"].(string); sub != client.ID {
		return Client{}, invalidClient("client_assertion: sub '%s' must equal iss '%s'", truncate(sub, 60), client.ID)
	}
	if id := form.Get("client_id"); id != "" && id != client.ID {
		return Client{}, &tokenEndpointError{http.StatusBadRequest, "invalid_request", "client_id differs from the client_assertion's iss"}
	}
	aud, err := claims.GetAudience()
	if err != nil || len(aud) != 1 || !s.isTokenEndpoint(r, aud[0]) {
		return Client{}, invalidClient("client_assertion: aud '%s' must be this token endpoint's URL, %s", truncate(strings.Join(aud, " "), 120), s.tokenEndpointURL(r))
	}
	exp, _ := claims.GetExpirationTime() // required and in the future: checked by the parser
	if exp.Sub(now) > MaxAssertionLifetime+AssertionExpLeeway {
		return Client{}, invalidClient("client_assertion: exp is %s ahead; at most %s is allowed (and %s of leeway for clock skew)", exp.Sub(now).Round(time.Second), MaxAssertionLifetime, AssertionExpLeeway)
	}
	jti, _ := claims["jti"].(string)
	if jti == "" {
		return Client{}, invalidClient("client_assertion: jti is required")
	}
	switch err := s.assertions.remember(client.ID, jti, exp.Time, now); {
	case errors.Is(err, errReplayed):
		return Client{}, invalidClient("client_assertion: jti '%s' was used before; sign a new assertion for every token request", truncate(jti, 60))
	case err != nil:
		return Client{}, &tokenEndpointError{http.StatusServiceUnavailable, "temporarily_unavailable", err.Error()}
	}
	return client, nil
}

// tokenEndpointURL is the token endpoint's URL as a client on this machine reaches it: the host links are
// built with (baseURL), so that an arbitrary Host header is never taken for this server.
func (s *Server) tokenEndpointURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + linkHost(r) + TokenPath
}

// isTokenEndpoint reports whether aud names this token endpoint: as the request reached it (a loopback host,
// or the address the connection was accepted on) or at the public base URL's origin. An assertion made for
// another server's endpoint is refused, so that a server the client trusts cannot replay it here.
func (s *Server) isTokenEndpoint(r *http.Request, aud string) bool {
	u, err := url.Parse(aud)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Path != TokenPath {
		return false
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	here, _ := url.Parse(s.tokenEndpointURL(r))
	if origin == strings.ToLower(here.Scheme+"://"+here.Host) {
		return true
	}
	if pub := s.publicTokenEndpoint(); pub != "" && origin+TokenPath == strings.ToLower(pub) {
		return true
	}
	return false
}

// publicTokenEndpoint is the token endpoint at the public base URL's origin, where clients outside this
// machine reach it; "" without a public base URL (Config validated it is an absolute URL).
func (s *Server) publicTokenEndpoint() string {
	if s.cfg.PublicBaseURL == "" {
		return ""
	}
	pub, err := url.Parse(s.cfg.PublicBaseURL)
	if err != nil {
		return ""
	}
	return pub.Scheme + "://" + pub.Host + TokenPath
}

var errReplayed = errors.New("replayed jti")

// assertionLog remembers the jtis of accepted assertions until they expire: a replay within an assertion's
// lifetime is refused, and after it the assertion is refused as expired. Its memory is bounded by the
// number of assertions of each client that can be alive at once (maxRememberedAssertions).
type assertionLog struct {
	mu     sync.Mutex
	max    int             // per client
	seen   map[string]bool // client id + "\x00" + jti
	counts map[string]int  // client id → its jtis in seen
	exp    expiryHeap
}

type expiring struct {
	client, key string
	exp         time.Time
}

type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].exp.Before(h[j].exp) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func newAssertionLog() *assertionLog {
	return &assertionLog{max: maxRememberedAssertions, seen: map[string]bool{}, counts: map[string]int{}}
}

// remember records a client's jti, valid until exp; errReplayed if it is still remembered.
func (l *assertionLog) remember(clientID, jti string, exp, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.exp.Len() > 0 && !now.Before(l.exp[0].exp) {
		gone := heap.Pop(&l.exp).(expiring)
		delete(l.seen, gone.key)
		if l.counts[gone.client]--; l.counts[gone.client] == 0 {
			delete(l.counts, gone.client)
		}
	}
	key := clientID + "\x00" + jti
	if l.seen[key] {
		return errReplayed
	}
	if l.counts[clientID] >= l.max {
		return fmt.Errorf("this server remembers %d unexpired assertions of client %s, the most it keeps for one client; retry when some expire", l.max, clientID)
	}
	l.seen[key] = true
	l.counts[clientID]++
	heap.Push(&l.exp, expiring{clientID, key, exp})
	return nil
}

// smartConfiguration answers GET [base]/.well-known/smart-configuration, unauthenticated as SMART App Launch
// requires: where the token endpoint is and how a backend client authenticates to it.
func (s *Server) smartConfiguration(w http.ResponseWriter, r *http.Request) {
	tokenURL := cmp.Or(s.publicTokenEndpoint(), s.tokenEndpointURL(r))
	body, err := json.Marshal(map[string]any{
		"token_endpoint":                                   tokenURL,
		"token_endpoint_auth_methods_supported":            []string{"private_key_jwt", "client_secret_basic", "client_secret_post"},
		"token_endpoint_auth_signing_alg_values_supported": AssertionAlgs,
		"grant_types_supported":                            []string{"client_credentials"},
		"capabilities":                                     []string{"client-confidential-asymmetric"},
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeException, "encode smart-configuration: "+err.Error())
		return
	}
	writeBody(w, http.StatusOK, "application/json", body)
}
