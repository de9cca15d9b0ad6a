package refserver

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type tokenReply struct {
	status int
	header http.Header
	ok     struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope"`
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
}

// token posts form to the token endpoint, with Basic credentials when basic is non-nil.
func (e *env) token(form url.Values, basic []string, contentType string) tokenReply {
	e.t.Helper()
	hr, err := http.NewRequest(http.MethodPost, e.root+TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	hr.Header.Set("Content-Type", contentType)
	if basic != nil {
		hr.SetBasicAuth(basic[0], basic[1])
	}
	resp, err := e.client.Do(hr)
	if err != nil {
		e.t.Fatalf("token request: %v", err)
	}
	defer resp.Body.Close()
	var out tokenReply
	out.status, out.header = resp.StatusCode, resp.Header
	if err := json.NewDecoder(resp.Body).Decode(&out.ok); err != nil {
		e.t.Fatalf("token response: not JSON: %v", err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Fatalf("token response content-type: expected application/json, got %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		e.t.Fatalf("token response Cache-Control: expected no-store, got %q", cc)
	}
	return out
}

const formCT = "application/x-www-form-urlencoded"

func TestTokenEndpointIssuesTokensThatActAsTheClientsUser(t *testing.T) {
	e := newEnv(t, Config{})
	basic := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"system/*.read"}}, []string{DemoClientIDA, DemoClientSecretA}, formCT)
	if basic.status != http.StatusOK || basic.ok.TokenType != "Bearer" || basic.ok.AccessToken == "" || basic.ok.ExpiresIn != 3600 || basic.ok.Scope != "system/*.read" {
		t.Fatalf("client_secret_basic: expected 200 Bearer token for 3600s with the scope, got %d %+v", basic.status, basic.ok)
	}
	post := e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientIDB}, "client_secret": {DemoClientSecretB}}, nil, formCT+"; charset=utf-8")
	if post.status != http.StatusOK || post.ok.AccessToken == "" || post.ok.AccessToken == basic.ok.AccessToken {
		t.Fatalf("client_secret_post: expected 200 with a fresh token, got %d %+v", post.status, post.ok)
	}

	// The tokens act as users A and B: B cannot see A's export.
	poll := e.kickoff(basic.ok.AccessToken, "")
	wantStatus(t, e.get(poll, basic.ok.AccessToken), http.StatusAccepted)
	wantOO(t, e.get(poll, post.ok.AccessToken), http.StatusNotFound, sevError, codeNotFound)
}

func TestTokenEndpointExpiredTokenIs401(t *testing.T) {
	e, srv := newServerEnv(t, Config{Clients: []Client{{ID: "short", Secret: "s3cret", UserID: DemoUserIDA, TokenLifetime: 30 * time.Second}}})
	r := e.token(url.Values{"grant_type": {"client_credentials"}}, []string{"short", "s3cret"}, formCT)
	if r.status != http.StatusOK || r.ok.ExpiresIn != 30 {
		t.Fatalf("expected a 30s token, got %d %+v", r.status, r.ok)
	}
	wantStatus(t, e.get("/$get-report-job-status", r.ok.AccessToken), http.StatusOK)
	e.clock.Advance(29 * time.Second)
	wantStatus(t, e.get("/$get-report-job-status", r.ok.AccessToken), http.StatusOK)
	e.clock.Advance(time.Second)
	res := e.get("/$get-report-job-status", r.ok.AccessToken)
	wantOO(t, res, http.StatusUnauthorized, sevError, codeLogin)
	if res.header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("WWW-Authenticate: expected Bearer, got %q", res.header.Get("WWW-Authenticate"))
	}
	if n := srv.stateSize().tokens; n != 0 {
		t.Fatalf("expired token: expected it forgotten, %d tokens held", n)
	}
	// A renewed token works again.
	r = e.token(url.Values{"grant_type": {"client_credentials"}}, []string{"short", "s3cret"}, formCT)
	wantStatus(t, e.get("/$get-report-job-status", r.ok.AccessToken), http.StatusOK)
}

func TestTokenEndpointErrorsFollowRFC6749(t *testing.T) {
	e := newEnv(t, Config{})
	good := []string{DemoClientIDA, DemoClientSecretA}
	cc := url.Values{"grant_type": {"client_credentials"}}
	cases := []struct {
		name        string
		form        url.Values
		basic       []string
		contentType string
		status      int
		code        string
		challenge   bool
	}{
		{"no client authentication", cc, nil, formCT, 401, "invalid_client", true},
		{"wrong secret (basic)", cc, []string{DemoClientIDA, "nope"}, formCT, 401, "invalid_client", true},
		{"wrong secret (post)", url.Values{"grant_type": {"client_credentials"}, "client_id": {DemoClientIDA}, "client_secret": {"nope"}}, nil, formCT, 401, "invalid_client", false},
		{"unknown client", cc, []string{"nobody", DemoClientSecretA}, formCT, 401, "invalid_client", true},
		{"another client's secret", cc, []string{DemoClientIDA, DemoClientSecretB}, formCT, 401, "invalid_client", true},
		{"both authentication methods", url.Values{"grant_type": {"client_credentials"}, "client_secret": {DemoClientSecretA}}, good, formCT, 400, "invalid_request", false},
		{"missing grant_type", url.Values{}, good, formCT, 400, "invalid_request", false},
		{"password grant", url.Values{"grant_type": {"password"}}, good, formCT, 400, "unsupported_grant_type", false},
		{"repeated parameter", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, good, formCT, 400, "invalid_request", false},
		{"JSON body", cc, good, "application/json", 400, "invalid_request", false},
		{"scope with a quote", url.Values{"grant_type": {"client_credentials"}, "scope": {`a"b`}}, good, formCT, 400, "invalid_scope", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.token(c.form, c.basic, c.contentType)
			if r.status != c.status || r.ok.Error != c.code || r.ok.Description == "" || r.ok.AccessToken != "" {
				t.Fatalf("expected %d %s with a description and no token, got %d %+v", c.status, c.code, r.status, r.ok)
			}
			if got := r.header.Get("WWW-Authenticate"); c.challenge != strings.HasPrefix(got, "Basic ") {
				t.Fatalf("WWW-Authenticate: expected a Basic challenge %t, got %q", c.challenge, got)
			}
		})
	}

	// The secret never travels in the URL.
	hr, _ := http.NewRequest(http.MethodPost, e.root+TokenPath+"?client_secret="+DemoClientSecretA, strings.NewReader(cc.Encode()))
	hr.Header.Set("Content-Type", formCT)
	hr.SetBasicAuth(DemoClientIDA, DemoClientSecretA)
	resp, err := e.client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("client_secret in the URL: expected 400, got %d", resp.StatusCode)
	}
	// Two Basic credentials, of two clients: neither is taken.
	hr, _ = http.NewRequest(http.MethodPost, e.root+TokenPath, strings.NewReader(cc.Encode()))
	hr.Header.Set("Content-Type", formCT)
	hr.Header["Authorization"] = []string{
		"Basic " + base64.StdEncoding.EncodeToString([]byte(DemoClientIDA+":"+DemoClientSecretA)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(DemoClientIDB+":"+DemoClientSecretB)),
	}
	resp, err = e.client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	var two tokenError
	decodeErr := json.NewDecoder(resp.Body).Decode(&two)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || decodeErr != nil || two.Error != "invalid_request" {
		t.Fatalf("two Authorization headers: expected 400 invalid_request, got %d %+v (%v)", resp.StatusCode, two, decodeErr)
	}
	// GET is not a token request.
	wantOO(t, e.do(req{method: http.MethodGet, url: e.root + TokenPath}), http.StatusMethodNotAllowed, sevError, codeNotSupported)
}

func TestClientsConfig(t *testing.T) {
	custom := []User{{Token: "t1", ID: "u1", Name: "one"}}
	for _, c := range []struct {
		name    string
		cfg     Config
		clients int
		err     string
	}{
		{"defaults", Config{}, 2, ""},
		{"custom users drop the demo clients", Config{Users: custom}, 0, ""},
		{"client of a custom user", Config{Users: custom, Clients: []Client{{ID: "c", Secret: "s", UserID: "u1"}}}, 1, ""},
		{"unknown user", Config{Users: custom, Clients: []Client{{ID: "c", Secret: "s", UserID: "nobody"}}}, 0, "not a configured user"},
		{"empty secret", Config{Clients: []Client{{ID: "c", UserID: DemoUserIDA}}}, 0, "secret must be non-empty"},
		{"duplicate id", Config{Clients: []Client{{ID: "c", Secret: "s", UserID: DemoUserIDA}, {ID: "c", Secret: "t", UserID: DemoUserIDB}}}, 0, "duplicate id"},
		{"negative lifetime", Config{Clients: []Client{{ID: "c", Secret: "s", UserID: DemoUserIDA, TokenLifetime: -1}}}, 0, "must not be negative"},
		{"negative retention", Config{Retention: -time.Second}, 0, "retention"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.cfg.normalize()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("expected an error containing %q, got %v", c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("normalize: %v", err)
			}
			if len(got.Clients) != c.clients || got.Retention != DefaultRetention {
				t.Fatalf("expected %d clients and retention %s, got %d and %s", c.clients, DefaultRetention, len(got.Clients), got.Retention)
			}
			for _, cl := range got.Clients {
				if cl.TokenLifetime != DefaultTokenLifetime {
					t.Fatalf("client %s: expected the default lifetime, got %s", cl.ID, cl.TokenLifetime)
				}
			}
		})
	}
}
