package refserver

import (
	"crypto"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The OAuth2 token endpoint (RFC 6749 §4.4, client credentials), so that the harness's OAuth2 mode can be
// tested end to end:
//
//	POST /oauth2/token   (at the server root, beside the FHIR base: http://host:port/oauth2/token)
//	Content-Type: application/x-www-form-urlencoded
//	grant_type=client_credentials[&scope=...]
//
// The client authenticates with HTTP Basic (client_secret_basic), with client_id and client_secret in the
// body (client_secret_post) or with a JWT signed by its private key (private_key_jwt, SMART Backend
// Services: assertion.go), one of them only. The answer is an opaque random bearer token that acts as the client's
// user until it expires (then 401 like any unknown token). Errors follow RFC 6749 §5.2: a JSON object with
// error and error_description, 400, or 401 for invalid_client.

// TokenPath is the token endpoint's path at the server root.
const TokenPath = "/oauth2/token"

// DefaultTokenLifetime is the lifetime of an issued token when a Client sets none.
const DefaultTokenLifetime = time.Hour

// maxIssuedTokensPerClient bounds the live tokens the server keeps for one client; beyond it the endpoint
// answers that client 503 until one expires. Each client has its own budget, so one client's flood does not
// lock the others out.
const maxIssuedTokensPerClient = 10_000

// Client is an OAuth2 client of the token endpoint; its tokens act as the configured user with UserID.
// A client has a secret, a public key or both; with both it may authenticate either way.
type Client struct {
	ID            string        // client_id
	Secret        string        // client_secret; empty: the client authenticates by its key only
	UserID        string        // the User.ID its tokens act as
	TokenLifetime time.Duration // lifetime of issued tokens; default DefaultTokenLifetime
	// PublicKey verifies the client's assertions (private_key_jwt): an *rsa.PublicKey (RS384) or an
	// *ecdsa.PublicKey on P-384 (ES384); nil: the client authenticates by its secret only.
	PublicKey crypto.PublicKey
	KeyID     string // the kid its assertions name; required with PublicKey, as SMART requires it
}

// Demo OAuth2 clients returned by DefaultClients.
const (
	DemoClientIDA     = "client-a"
	DemoClientSecretA = "demo-secret-a"
	DemoClientIDB     = "client-b"
	DemoClientSecretB = "demo-secret-b"
)

// DefaultClients returns the demo clients: client-a acts as demo user A, client-b as demo user B. Each
// authenticates by its demo secret or by its demo key (RSA for client-a, EC P-384 for client-b).
func DefaultClients() []Client {
	return []Client{
		{ID: DemoClientIDA, Secret: DemoClientSecretA, UserID: DemoUserIDA, PublicKey: mustDemoKey(demoPublicKeyA), KeyID: DemoKeyIDA},
		{ID: DemoClientIDB, Secret: DemoClientSecretB, UserID: DemoUserIDB, PublicKey: mustDemoKey(demoPublicKeyB), KeyID: DemoKeyIDB},
	}
}

// normalizeClients applies the client defaults and validates them against the configured users. It runs
// after the users are normalized.
func (cfg *Config) normalizeClients() []error {
	users := make(map[string]bool, len(cfg.Users))
	for _, u := range cfg.Users {
		users[u.ID] = true
	}
	if cfg.Clients == nil {
		for _, c := range DefaultClients() {
			if users[c.UserID] {
				cfg.Clients = append(cfg.Clients, c)
			}
		}
	}
	var errs []error
	seen := make(map[string]int, len(cfg.Clients))
	clients := make([]Client, len(cfg.Clients))
	for i, c := range cfg.Clients {
		switch {
		case c.ID == "" || strings.ContainsAny(c.ID, ":, \t\r\n"):
			errs = append(errs, fmt.Errorf("client %d: id must be non-empty without ':', ',' or whitespace", i))
		case c.Secret == "" && c.PublicKey == nil:
			errs = append(errs, fmt.Errorf("client %q: secret must be non-empty (or the client needs a public key)", c.ID))
		case strings.ContainsAny(c.Secret, ", \t\r\n"):
			errs = append(errs, fmt.Errorf("client %q: secret must be without ',' or whitespace", c.ID))
		case c.PublicKey != nil && checkClientKey(c.PublicKey) != nil:
			errs = append(errs, fmt.Errorf("client %q: public key: %v", c.ID, checkClientKey(c.PublicKey)))
		case (c.PublicKey == nil) != (c.KeyID == ""):
			errs = append(errs, fmt.Errorf("client %q: a public key and its key id (kid) go together: give both or neither", c.ID))
		case strings.ContainsAny(c.KeyID, " \t\r\n"):
			errs = append(errs, fmt.Errorf("client %q: key id must be without whitespace", c.ID))
		case !users[c.UserID]:
			errs = append(errs, fmt.Errorf("client %q: user id %q is not a configured user", c.ID, c.UserID))
		case c.TokenLifetime < 0:
			errs = append(errs, fmt.Errorf("client %q: token lifetime must not be negative, got %s", c.ID, c.TokenLifetime))
		}
		if j, dup := seen[c.ID]; dup {
			errs = append(errs, fmt.Errorf("client %d: duplicate id (same as client %d)", i, j))
		}
		seen[c.ID] = i
		if c.TokenLifetime == 0 {
			c.TokenLifetime = DefaultTokenLifetime
		}
		clients[i] = c
	}
	cfg.Clients = clients
	return errs
}

// tokenStore holds the clients and the tokens issued to them. It has its own lock so that token checks
// never wait on job state; everything done under it is a map access or pops tokens that have expired.
type tokenStore struct {
	clock        Clock
	clients      map[string]Client // by client id
	users        map[string]User   // by user id
	maxPerClient int

	mu       sync.Mutex
	issued   map[string]issuedToken   // by access token
	byClient map[string]*clientTokens // by client id
}

type issuedToken struct {
	userID   string
	clientID string
	expires  time.Time
}

// clientTokens is one client's tokens in issue order, which is expiry order: a client's tokens all live
// equally long. Tokens forgotten on use stay queued until they reach the front.
type clientTokens struct {
	queue []string
	live  int
}

func newTokenStore(cfg Config) *tokenStore {
	ts := &tokenStore{
		clock:        cfg.Clock,
		clients:      make(map[string]Client, len(cfg.Clients)),
		users:        make(map[string]User, len(cfg.Users)),
		maxPerClient: maxIssuedTokensPerClient,
		issued:       make(map[string]issuedToken),
		byClient:     make(map[string]*clientTokens, len(cfg.Clients)),
	}
	for _, c := range cfg.Clients {
		ts.clients[c.ID] = c
		ts.byClient[c.ID] = &clientTokens{}
	}
	for _, u := range cfg.Users {
		ts.users[u.ID] = u
	}
	return ts
}

// user returns the user an issued, unexpired token acts as.
func (ts *tokenStore) user(token string) (User, bool) {
	ts.mu.Lock()
	now := ts.clock.Now()
	it, ok := ts.issued[token]
	if ok && !now.Before(it.expires) {
		ts.forgetLocked(token, it)
		ok = false
	}
	ts.mu.Unlock()
	if !ok {
		return User{}, false
	}
	u, ok := ts.users[it.userID]
	return u, ok
}

func (ts *tokenStore) forgetLocked(token string, it issuedToken) {
	delete(ts.issued, token)
	ts.byClient[it.clientID].live--
}

// sweepLocked forgets every client's expired tokens; its cost is the number of clients plus the tokens it
// forgets. ts.mu must be held.
func (ts *tokenStore) sweepLocked(now time.Time) {
	for _, ct := range ts.byClient {
		n := 0
		for ; n < len(ct.queue); n++ {
			it, ok := ts.issued[ct.queue[n]]
			if ok && now.Before(it.expires) {
				break
			}
			if ok {
				ts.forgetLocked(ct.queue[n], it)
			}
		}
		if n > 0 {
			clear(ct.queue[:n])
			ct.queue = ct.queue[n:]
		}
	}
}

// issue creates a token for c, after forgetting the expired ones; it fails when c holds as many live tokens
// as a client may.
func (ts *tokenStore) issue(c Client) (string, time.Time, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	now := ts.clock.Now()
	ts.sweepLocked(now)
	ct := ts.byClient[c.ID]
	if ct.live >= ts.maxPerClient {
		return "", time.Time{}, fmt.Errorf("client %s holds %d live tokens, the most this server keeps per client", c.ID, ts.maxPerClient)
	}
	token := rand.Text() // 26 base32 characters, 128 bits from crypto/rand
	for ts.issued[token].userID != "" {
		token = rand.Text()
	}
	exp := now.Add(c.TokenLifetime)
	ts.issued[token] = issuedToken{userID: c.UserID, clientID: c.ID, expires: exp}
	ct.queue = append(ct.queue, token)
	ct.live++
	return token, exp, nil
}

// count is the number of tokens held, expired ones included until the next issue sweeps them.
func (ts *tokenStore) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.issued)
}

// userForIssuedToken is the authentication hook of auth.go for tokens from the token endpoint.
func (s *Server) userForIssuedToken(token string) (User, bool) { return s.tokens.user(token) }

// tokenResponse is the RFC 6749 §5.1 success body.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

// tokenError is the RFC 6749 §5.2 error body.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// maxTokenRequestBytes bounds the token request body.
const maxTokenRequestBytes = 16 << 10

// oauthToken handles POST /oauth2/token.
func (s *Server) oauthToken(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "the request body must be application/x-www-form-urlencoded")
		return
	}
	tooLarge := func() {
		writeTokenError(w, http.StatusRequestEntityTooLarge, "invalid_request", fmt.Sprintf("the request body exceeds %d bytes", maxTokenRequestBytes))
	}
	if r.ContentLength > maxTokenRequestBytes { // refused unread: under Expect: 100-continue, never asked for
		tooLarge()
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequestBytes)
	if err := r.ParseForm(); err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			tooLarge()
			return
		}
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "the request body is not a valid form: "+err.Error())
		return
	}
	form := r.PostForm
	if _, inQuery := r.URL.Query()["client_secret"]; inQuery {
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "client_secret must not be sent in the URL")
		return
	}
	for name, vs := range form {
		if len(vs) > 1 {
			writeTokenError(w, http.StatusBadRequest, "invalid_request", "parameter "+truncate(name, 40)+" is given more than once")
			return
		}
	}

	if len(r.Header.Values("Authorization")) > 1 { // r.BasicAuth would take the first of two clients
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "the request has more than one Authorization header; send one")
		return
	}
	c, cerr := s.authenticateClient(r, form)
	if cerr != nil {
		if cerr.code == "invalid_client" {
			// A Basic challenge only to a client that tried Basic, or sent no credentials at all.
			_, _, hasBasic := r.BasicAuth()
			_, assertion := form["client_assertion"]
			writeClientError(w, hasBasic || (!assertion && !form.Has("client_secret")), cerr.desc)
			return
		}
		if cerr.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "60")
		}
		writeTokenError(w, cerr.status, cerr.code, cerr.desc)
		return
	}

	switch gt := form.Get("grant_type"); gt {
	case "":
		writeTokenError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	case "client_credentials":
	default:
		writeTokenError(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+truncate(gt, 40)+" is not supported; use client_credentials")
		return
	}
	scope := form.Get("scope")
	for _, c := range scope {
		if c < 0x21 && c != ' ' || c == '"' || c == '\\' || c > 0x7e {
			writeTokenError(w, http.StatusBadRequest, "invalid_scope", "scope must be space-separated tokens of printable ASCII without '\"' or '\\'")
			return
		}
	}

	token, exp, err := s.tokens.issue(c)
	if err != nil {
		w.Header().Set("Retry-After", "60")
		writeTokenError(w, http.StatusServiceUnavailable, "temporarily_unavailable", err.Error())
		return
	}
	expiresIn := int64(exp.Sub(s.cfg.Clock.Now()) / time.Second)
	if expiresIn < 1 {
		expiresIn = 1
	}
	body, err := json.Marshal(tokenResponse{AccessToken: token, TokenType: "Bearer", ExpiresIn: expiresIn, Scope: scope})
	if err != nil {
		writeTokenError(w, http.StatusInternalServerError, "server_error", "encode response: "+err.Error())
		return
	}
	noStore(w)
	writeBody(w, http.StatusOK, "application/json;charset=UTF-8", body)
}

// authenticateClient is the client of a token request: exactly one of client_secret_basic,
// client_secret_post and private_key_jwt (client_assertion).
func (s *Server) authenticateClient(r *http.Request, form url.Values) (Client, *tokenEndpointError) {
	basicID, basicSecret, hasBasic := r.BasicAuth()
	_, postsSecret := form["client_secret"]
	_, asserts := form["client_assertion"]
	_, assertsType := form["client_assertion_type"]
	methods := 0
	for _, used := range []bool{hasBasic, postsSecret, asserts || assertsType} {
		if used {
			methods++
		}
	}
	var id, secret string
	switch {
	case methods > 1:
		return Client{}, &tokenEndpointError{http.StatusBadRequest, "invalid_request", "use one client authentication method: HTTP Basic, client_secret in the body or client_assertion, not several"}
	case asserts || assertsType:
		return s.clientByAssertion(r, form)
	case hasBasic:
		// RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil {
			return Client{}, invalidClient("the Basic credentials are not form-urlencoded")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return Client{}, &tokenEndpointError{http.StatusBadRequest, "invalid_request", "client_id in the body differs from the Basic credentials"}
		}
	case postsSecret:
		id, secret = form.Get("client_id"), form.Get("client_secret")
	default:
		return Client{}, invalidClient("client authentication is required (HTTP Basic, client_id and client_secret in the body, or client_assertion)")
	}
	c, known := s.tokens.clients[id]
	// Compare against a dummy secret for unknown clients, and for clients without a secret, so timing does
	// not tell which ids exist; an empty secret never matches.
	want := c.Secret
	if !known || want == "" {
		want = "\x00unknown-client"
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(want)) != 1 || !known {
		return Client{}, invalidClient("unknown client or wrong secret")
	}
	return c, nil
}

// writeClientError answers invalid_client: 401, with a Basic challenge (RFC 6749 §5.2).
func writeClientError(w http.ResponseWriter, challenge bool, desc string) {
	if challenge {
		w.Header().Set("WWW-Authenticate", `Basic realm="refserver", charset="UTF-8"`)
	}
	writeTokenError(w, http.StatusUnauthorized, "invalid_client", desc)
}

// writeTokenError writes an RFC 6749 §5.2 error.
func writeTokenError(w http.ResponseWriter, status int, code, desc string) {
	body, err := json.Marshal(tokenError{Error: code, Description: descriptionSafe(desc)})
	if err != nil { // cannot happen for two strings
		body = []byte(`{"error":"server_error"}`)
	}
	noStore(w)
	writeBody(w, status, "application/json;charset=UTF-8", body)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// descriptionSafe keeps the characters RFC 6749 allows in error_description (%x20-21 / %x23-5B / %x5D-7E),
// so echoed input can neither break the format nor smuggle control characters.
func descriptionSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
