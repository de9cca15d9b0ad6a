package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// Authentication modes. Exactly one applies to a run; the harness refuses a mix.
//
//   - none: no TOKEN and no CLIENT_ID: requests carry no Authorization.
//   - static: TOKEN (user A) and TOKEN_B (user B) are sent as they are.
//   - OAuth2 client credentials: TOKEN_URL, CLIENT_ID, CLIENT_SECRET (user A) and CLIENT_ID_B,
//     CLIENT_SECRET_B (user B), with SCOPE for both; tokens are fetched on first use and fetched again before
//     they expire, so a run longer than a token's lifetime keeps working. With PRIVATE_KEY and KEY_ID
//     (PRIVATE_KEY_B, KEY_ID_B) instead of a secret, a client authenticates by a signed JWT: SMART Backend
//     Services (assertion.go).
//
// Independently, CA_CERT adds a CA to the system roots and CLIENT_CERT with CLIENT_KEY present a client
// certificate (mutual TLS); both apply to the server under test and to the token endpoint.

// auth is what the configuration's authentication builds for the steps.
type auth struct {
	mode        string // "none", "static" or "oauth2", for messages
	credentials map[string]oauth2.TokenSource
	client      *http.Client
}

// authMode is the run's authentication mode: "none", "static" or "oauth2"; Validate refuses a mix.
func (c Config) authMode() string {
	switch {
	case c.Token != "" || c.TokenB != "":
		return "static"
	case c.oauthSet():
		return "oauth2"
	}
	return "none"
}

// oauthSet reports whether any variable of the OAuth2 mode is set.
func (c Config) oauthSet() bool {
	return c.TokenURL != "" || c.ClientID != "" || c.ClientSecret != "" || c.ClientIDB != "" || c.ClientSecretB != "" ||
		c.PrivateKey != "" || c.KeyID != "" || c.PrivateKeyB != "" || c.KeyIDB != ""
}

// validateAuth returns every inconsistency of the authentication and TLS variables.
func (c Config) validateAuth() []error {
	static := c.Token != "" || c.TokenB != ""
	oauth := c.oauthSet()
	var errs []error
	if static && oauth {
		errs = append(errs, errors.New("TOKEN/TOKEN_B and TOKEN_URL/CLIENT_ID are two authentication modes: set static tokens or OAuth2 client credentials, not both"))
	}
	for name, tok := range map[string]string{"TOKEN": c.Token, "TOKEN_B": c.TokenB} {
		if err := tokenShape(name, tok); err != nil {
			errs = append(errs, err)
		}
	}
	if c.TokenB != "" && c.Token == "" {
		// User A would be anonymous: against a server that asks for no token the cross-user scenarios would
		// compare nobody with user B; against one that does, the preflight would say only "set TOKEN".
		errs = append(errs, errors.New("TOKEN_B given without TOKEN: TOKEN_B is the second user's token, for the cross-user scenarios; set TOKEN (or TOKEN_FILE) for the first user"))
	}
	if c.TokenB != "" && c.TokenB == c.Token {
		errs = append(errs, errors.New("TOKEN_B is the same token as TOKEN: the cross-user scenarios need a second user's token (or leave TOKEN_B unset to skip them, visibly)"))
	}
	if c.Scope != "" && !oauth {
		errs = append(errs, errors.New("SCOPE is for OAuth2 client credentials: set TOKEN_URL, CLIENT_ID and CLIENT_SECRET (or PRIVATE_KEY) too"))
	}
	if oauth {
		if c.TokenURL == "" && !c.discoversTokenURL() {
			errs = append(errs, errors.New("TOKEN_URL is required with CLIENT_ID: the OAuth2 token endpoint, e.g. https://auth.example/oauth2/token (with PRIVATE_KEY and a TARGET, it is read from the server's .well-known/smart-configuration)"))
		} else if c.TokenURL != "" && !validTokenURL(c.TokenURL) {
			errs = append(errs, errors.New("TOKEN_URL: expected an absolute http(s) URL without user info, such as https://auth.example/oauth2/token"))
		}
		if c.ClientID == "" || c.ClientSecret == "" && c.PrivateKey == "" {
			errs = append(errs, errors.New("CLIENT_ID and CLIENT_SECRET are required for OAuth2 client credentials (user A); or CLIENT_ID, PRIVATE_KEY and KEY_ID for SMART Backend Services (a signed JWT)"))
		}
		if (c.ClientIDB == "") != (c.ClientSecretB == "" && c.PrivateKeyB == "") {
			errs = append(errs, errors.New("CLIENT_ID_B and CLIENT_SECRET_B (or PRIVATE_KEY_B): give both for the second user, or neither"))
		}
		for _, u := range []struct{ suffix, secret, key, kid string }{{"", c.ClientSecret, c.PrivateKey, c.KeyID}, {"_B", c.ClientSecretB, c.PrivateKeyB, c.KeyIDB}} {
			errs = append(errs, validateKey(u.suffix, u.secret, u.key, u.kid)...)
		}
		if c.ClientIDB != "" && c.ClientIDB == c.ClientID {
			errs = append(errs, errors.New("CLIENT_ID_B must be another client than CLIENT_ID: the cross-user scenarios need two users"))
		}
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		errs = append(errs, errors.New("CLIENT_CERT and CLIENT_KEY: give both for mutual TLS, or neither"))
	}
	return errs
}

// validateKey checks one user's SMART Backend Services variables (suffix "" for user A, "_B" for user B),
// loading the key so that an unreadable or unusable one is refused before any request.
func validateKey(suffix, secret, key, kid string) []error {
	var errs []error
	switch {
	case secret != "" && key != "":
		errs = append(errs, fmt.Errorf("CLIENT_SECRET%s and PRIVATE_KEY%s are two ways for the client to authenticate: give one", suffix, suffix))
	case key != "" && kid == "":
		errs = append(errs, fmt.Errorf("KEY_ID%s is required with PRIVATE_KEY%s: the kid under which the server registered the client's public key (SMART Backend Services requires it in the JWT header)", suffix, suffix))
	case key == "" && kid != "":
		errs = append(errs, fmt.Errorf("KEY_ID%s is the id of PRIVATE_KEY%s: set PRIVATE_KEY%s too, or leave KEY_ID%s unset", suffix, suffix, suffix, suffix))
	}
	if key != "" {
		if _, err := loadSigningKey("PRIVATE_KEY"+suffix, key, kid); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// validTokenURL: a token endpoint is an absolute http(s) URL without user info (a password there would go
// into every log line that names the endpoint).
func validTokenURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// discoversTokenURL: with SMART Backend Services (PRIVATE_KEY) and a server's URL, an unset TOKEN_URL is read
// from the server's .well-known/smart-configuration, as SMART clients find it (discoverTokenURL). Only then:
// a client secret is not sent to an endpoint the server under test names.
func (c Config) discoversTokenURL() bool {
	return c.TokenURL == "" && c.PrivateKey != "" && c.ClientSecret == "" && c.ClientSecretB == "" && (c.Target != "" || c.ExportTarget != "")
}

// tokenShape refuses, before any request, a static token that cannot be one: an access token holds no white
// space (RFC 6750's b64token), so "Bearer <token>", the header's value pasted whole, would be sent as
// "Bearer Bearer <token>" and the server blamed for refusing it. The message never quotes the token.
func tokenShape(name, tok string) error {
	tok = strings.TrimSpace(tok)
	switch {
	case len(tok) > len("bearer ") && strings.EqualFold(tok[:len("bearer ")], "bearer "):
		return fmt.Errorf("%s starts with \"Bearer \": give the access token alone; the harness sends it as Authorization: Bearer <%s>", name, name)
	case strings.ContainsAny(tok, " \t\r\n"):
		return fmt.Errorf("%s holds white space: an access token has none (RFC 6750); check what was copied into it", name)
	}
	return nil
}

// newAuth builds the token sources and the HTTP client of a validated configuration.
func newAuth(cfg Config) (auth, error) {
	client, err := newHTTPClient(cfg)
	if err != nil {
		return auth{}, err
	}
	a := auth{mode: cfg.authMode(), client: client, credentials: steps.StaticTokens(map[string]string{"A": cfg.Token})}
	switch a.mode {
	case "static":
		if cfg.TokenB != "" {
			a.credentials["B"] = steps.StaticTokens(map[string]string{"B": cfg.TokenB})["B"]
		}
	case "oauth2":
		// The token requests go through the same TLS setup, with the request timeout and no redirects.
		tokenClient := &http.Client{
			Transport:     client.Transport,
			Timeout:       cfg.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tokenClient)
		source := func(suffix, id, secret, keyPath, kid string) (oauth2.TokenSource, error) {
			// A renewingSource: fetches a new token shortly before the old one expires, by the run's clock.
			// Every token it issues becomes a secret of the run before anything can print it.
			if keyPath == "" {
				// A token endpoint may echo the HTTP Basic credentials x/oauth2 sends in its error.
				for _, basic := range basicCredentials(id, secret) {
					cfg.redactor.Add(basic)
				}
				cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: cfg.TokenURL, Scopes: strings.Fields(cfg.Scope)}
				fetch := tokenFunc(func() (*oauth2.Token, error) { return cc.Token(ctx) })
				return redactIssued{&renewingSource{fetch: fetch, now: cfg.now}, cfg.redactor}, nil
			}
			key, err := loadSigningKey("PRIVATE_KEY"+suffix, keyPath, kid)
			if err != nil {
				return nil, err
			}
			as := assertionSource{ctx: ctx, tokenURL: cfg.TokenURL, clientID: id, scopes: strings.Fields(cfg.Scope), key: key, red: cfg.redactor, now: cfg.now}
			return redactIssued{&renewingSource{fetch: as, now: cfg.now}, cfg.redactor}, nil
		}
		srcA, err := source("", cfg.ClientID, cfg.ClientSecret, cfg.PrivateKey, cfg.KeyID)
		if err != nil {
			return auth{}, err
		}
		a.credentials = map[string]oauth2.TokenSource{"A": srcA}
		if cfg.ClientIDB != "" {
			if a.credentials["B"], err = source("_B", cfg.ClientIDB, cfg.ClientSecretB, cfg.PrivateKeyB, cfg.KeyIDB); err != nil {
				return auth{}, err
			}
		}
	}
	return a, nil
}

// renewAhead is how long before its expiry an issued token is renewed: x/oauth2's ReuseTokenSource's margin
// (its expiryDelta), for the request to reach the server while the token is good.
const renewAhead = 10 * time.Second

// renewingSource hands out the last token fetch issued until renewAhead before the token expires by now, the
// run's clock, then fetches a new one: oauth2.ReuseTokenSource, whose clock is x/oauth2's own, on a clock a
// test moves on instead of waiting for a token to expire.
type renewingSource struct {
	fetch oauth2.TokenSource // a new token on every call
	now   func() time.Time
	mu    sync.Mutex
	tok   *oauth2.Token
	exp   time.Time // when tok expires by now; zero: never (no expires_in)
}

func (r *renewingSource) Token() (*oauth2.Token, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tok == nil || !r.exp.IsZero() && !r.now().Add(renewAhead).Before(r.exp) {
		tok, err := r.fetch.Token()
		if err != nil {
			return nil, err
		}
		r.tok, r.exp = tok, time.Time{}
		if !tok.Expiry.IsZero() {
			// x/oauth2 dates expires_in from this machine's clock: the token lives as long by the run's.
			r.exp = r.now().Add(time.Until(tok.Expiry))
		}
	}
	tok := *r.tok // a copy: a caller's change is not the next caller's token
	return &tok, nil
}

// tokenFunc is a token source of a function.
type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

// basicCredentials are the ways a client's id and secret appear in an HTTP Basic Authorization header: as
// x/oauth2 sends them (each form-encoded first, RFC 6749 §2.3.1), and as they are.
func basicCredentials(id, secret string) []string {
	return []string{
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret))),
		base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)),
	}
}

// redactIssued adds every access token its source issues to the run's secrets.
type redactIssued struct {
	src oauth2.TokenSource
	red *check.Redactor
}

func (r redactIssued) Token() (*oauth2.Token, error) {
	tok, err := r.src.Token()
	if tok != nil {
		r.red.Add(tok.AccessToken)
		r.red.Add(tok.RefreshToken)
	}
	return tok, err
}

// newHTTPClient is the client of every request of the run: the system roots plus CA_CERT, the client
// certificate of CLIENT_CERT/CLIENT_KEY, and a redirect policy that keeps credentials on their origin.
func newHTTPClient(cfg Config) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = steps.IdleConnsFor(int(cfg.ParallelDownloads))
	if cfg.CACert != "" || cfg.ClientCert != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CACert != "" {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return nil, fmt.Errorf("CA_CERT: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil {
				pool = x509.NewCertPool() // no system roots on this platform: the CA alone
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA_CERT: %s holds no PEM certificate", cfg.CACert)
			}
			tc.RootCAs = pool
		}
		if cfg.ClientCert != "" {
			cert, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
			if err != nil {
				return nil, fmt.Errorf("CLIENT_CERT/CLIENT_KEY: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, CheckRedirect: followRedirect(redirectTrust(cfg))}, nil
}

// redirectTrust is the set of origins a redirect may take the token to: the targets' (TARGET, EXPORT_TARGET,
// REPORT_TARGET), TOKEN_URL's and TRUSTED_ORIGINS, as steps.Target.Trusts allows a request to.
func redirectTrust(cfg Config) map[string]bool {
	trust := map[string]bool{}
	for _, o := range append([]string{cfg.Target, cfg.ExportTarget, cfg.ReportTarget}, trustedOrigins(cfg)...) {
		if o := steps.Origin(o); o != "" {
			trust[o] = true
		}
	}
	return trust
}

// followRedirect is keepCredentialsOnOrigin, but a redirect to another origin that is trusted (redirectTrust)
// keeps the first request's Authorization: Go's client drops it on a redirect to another domain, so a server
// that redirects its polling location or its output files to a file server the user listed in
// TRUSTED_ORIGINS was answered 401 and failed. Only while every URL of the chain is trusted: an untrusted
// origin on the way chose where the next hop goes.
func followRedirect(trust map[string]bool) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if err := keepCredentialsOnOrigin(req, via); err != nil {
			return err
		}
		auth := via[0].Header.Values("Authorization")
		if len(auth) == 0 || sameOrigin(req.URL, via[0].URL) {
			return nil
		}
		trusted := func(u *url.URL) bool { return sameOrigin(u, via[0].URL) || trust[steps.Origin(u.String())] }
		for _, r := range append(via[1:], req) {
			if !trusted(r.URL) {
				return nil
			}
		}
		req.Header["Authorization"] = slices.Clone(auth)
		return nil
	}
}

// credentialHeaders never follow a redirect to another origin.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// keepCredentialsOnOrigin follows up to 10 redirects but drops the credentials when a redirect leaves the
// first request's origin (scheme, host and port). Go's client already drops them for another domain, but
// keeps them for another port of the same host and for a subdomain; a token must reach neither.
//
// It also keeps the method of a request other than POST redirected by a 301 or 302: RFC 9110 (§15.4.2,
// §15.4.3) lets a user agent change POST to GET there, no other method, and Go's client sends a GET for every
// method but HEAD. A DELETE of a polling location moved so (a gateway that normalises paths) stays a DELETE:
// the answer of a GET would be judged as the cancel's. A request whose body cannot be sent again is not
// followed; its redirect is the answer.
//
// A 303 See Other to a request other than GET, HEAD or POST is not followed either: its redirect is the
// answer judged. RFC 9110 §15.4.4 makes the user agent follow a 303 with a GET, so Go's client turned a
// DELETE answered 303 with the polling location into a poll, and the poll's 202 was judged as the cancel's
// (BDA2: a DELETE answers 202 Accepted), a false pass.
func keepCredentialsOnOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if prev := via[len(via)-1]; req.Response != nil && req.Response.StatusCode == http.StatusSeeOther &&
		prev.Method != http.MethodGet && prev.Method != http.MethodHead && prev.Method != http.MethodPost {
		return http.ErrUseLastResponse
	}
	if prev := via[len(via)-1]; req.Method != prev.Method && prev.Method != http.MethodPost && req.Response != nil &&
		(req.Response.StatusCode == http.StatusMovedPermanently || req.Response.StatusCode == http.StatusFound) {
		if prev.Body != nil && prev.Body != http.NoBody {
			if prev.GetBody == nil {
				return http.ErrUseLastResponse
			}
			body, err := prev.GetBody()
			if err != nil {
				return err
			}
			req.Body, req.GetBody, req.ContentLength = body, prev.GetBody, prev.ContentLength
		}
		req.Method = prev.Method
	}
	if !sameOrigin(req.URL, via[0].URL) {
		for _, h := range credentialHeaders {
			req.Header.Del(h)
		}
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// AuthConfig is the authentication and TLS part of Config, embedded in it. Token and TokenB (static mode)
// stay in Config.
type AuthConfig struct {
	TokenURL      string // TOKEN_URL: OAuth2 token endpoint
	ClientID      string // CLIENT_ID: OAuth2 client of user A
	ClientSecret  string // CLIENT_SECRET
	Scope         string // SCOPE: space-separated scopes requested for both clients
	ClientIDB     string // CLIENT_ID_B: OAuth2 client of user B; empty skips the cross-user scenarios, visibly
	ClientSecretB string // CLIENT_SECRET_B
	// PrivateKey (PRIVATE_KEY) is the path of user A's PEM private key for SMART Backend Services, instead of
	// ClientSecret; KeyID (KEY_ID) its kid. PrivateKeyB and KeyIDB are user B's.
	PrivateKey, KeyID   string
	PrivateKeyB, KeyIDB string
	CACert              string // CA_CERT: PEM file of a CA trusted besides the system roots
	ClientCert          string // CLIENT_CERT: PEM client certificate for mutual TLS
	ClientKey           string // CLIENT_KEY: PEM private key of CLIENT_CERT
}
