package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/internal/testpki"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

func TestParseSecurityOptions(t *testing.T) {
	o, err := parseOptions(nil, envMap(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.cfg.Retention != refserver.DefaultRetention || !o.demoClients || len(o.cfg.Clients) != 2 || o.cfg.Clients[0].TokenLifetime != time.Hour || o.tls != (tlsFiles{}) {
		t.Fatalf("defaults: got retention %s, clients %+v, tls %+v", o.cfg.Retention, o.cfg.Clients, o.tls)
	}
	o, err = parseOptions([]string{"-retention", "5m", "-token-lifetime", "30s", "-tls-cert", "c.pem", "-tls-key", "k.pem", "-client-ca", "ca.pem"},
		envMap(map[string]string{"REFSERVER_TOKENS": "t1=u1:one,t2=u2", "REFSERVER_CLIENTS": "c1:s1:u1,c2:s:2:u2:2m"}), io.Discard)
	if err == nil {
		t.Fatal("expected an error for the malformed client entry c2:s:2:u2:2m")
	}
	o, err = parseOptions([]string{"-retention", "5m", "-token-lifetime", "30s", "-tls-cert", "c.pem", "-tls-key", "k.pem", "-client-ca", "ca.pem"},
		envMap(map[string]string{"REFSERVER_TOKENS": "t1=u1:one,t2=u2", "REFSERVER_CLIENTS": "c1:s1:u1, c2:s2:u2:2m"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []refserver.Client{{ID: "c1", Secret: "s1", UserID: "u1", TokenLifetime: 30 * time.Second}, {ID: "c2", Secret: "s2", UserID: "u2", TokenLifetime: 2 * time.Minute}}
	if o.cfg.Retention != 5*time.Minute || o.demoClients || len(o.cfg.Clients) != 2 || o.cfg.Clients[0] != want[0] || o.cfg.Clients[1] != want[1] {
		t.Fatalf("flags and env: got retention %s, clients %+v", o.cfg.Retention, o.cfg.Clients)
	}
	if o.tls != (tlsFiles{cert: "c.pem", key: "k.pem", clientCA: "ca.pem"}) {
		t.Fatalf("tls: got %+v", o.tls)
	}

	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"-retention", "0s"}, nil, "-retention"},
		{[]string{"-retention", "soon"}, nil, "-retention"},
		{[]string{"-token-lifetime", "10ms"}, nil, "-token-lifetime"},
		{[]string{"-clients", "a:b"}, nil, "-clients"},
		{[]string{"-clients", "a:b:u:forever"}, nil, "lifetime"},
		{[]string{"-tls-cert", "c.pem"}, nil, "give both or neither"},
		{[]string{"-client-ca", "ca.pem"}, nil, "mutual TLS"},
	} {
		_, err := parseOptions(c.args, envMap(c.env), io.Discard)
		if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: expected a usage error naming %s, got %v", c.args, c.want, err)
		}
	}
	// A client of an unknown user is refused when the server is built.
	if err := run(context.Background(), []string{"-clients", "c:s:nobody"}, envMap(nil), io.Discard); !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "not a configured user") {
		t.Fatalf("run: expected an unknown-user usage error, got %v", err)
	}
}

// -client-keys gives clients a public key for private_key_jwt: a client of -clients without a secret, or a
// demo client, whose demo key it replaces.
func TestParseClientKeys(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "pub.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions([]string{"-clients", "c1::u1,c2:s2:u2", "-client-keys", "c1:kid-1:" + pub},
		envMap(map[string]string{"REFSERVER_TOKENS": "t1=u1,t2=u2"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c := o.cfg.Clients[0]; c.Secret != "" || c.KeyID != "kid-1" || !key.PublicKey.Equal(c.PublicKey) || o.cfg.Clients[1].PublicKey != nil {
		t.Fatalf("expected c1 with the key and no secret, c2 without a key, got %+v", o.cfg.Clients)
	}
	if _, err := refserver.NewServer(o.cfg); err != nil {
		t.Fatalf("a client with a key and no secret: %v", err)
	}
	o, err = parseOptions(nil, envMap(map[string]string{"REFSERVER_CLIENT_KEYS": refserver.DemoClientIDA + ":other:" + pub}), io.Discard)
	if err != nil || o.cfg.Clients[0].KeyID != "other" || o.cfg.Clients[1].KeyID != refserver.DemoKeyIDB {
		t.Fatalf("a demo client's key replaced: got %+v, %v", o.cfg.Clients, err)
	}
	var banner strings.Builder
	printClients(&banner, o, "http", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	if strings.Contains(banner.String(), refserver.DemoPrivateKeyA) || !strings.Contains(banner.String(), "PRIVATE_KEY="+refserver.DemoPrivateKeyB+" KEY_ID="+refserver.DemoKeyIDB) {
		t.Fatalf("the banner must offer the demo key of client-b only, whose key was kept:\n%s", banner.String())
	}

	for _, c := range []struct{ keys, want string }{
		{"c1:kid", "want clientId:kid:file.pem"},
		{"nobody:k:" + pub, "not among the clients"},
		{"c1:k:" + filepath.Join(dir, "none.pem"), "no such file"},
		{"c1:k:" + os.Args[0], "no PEM block"},
	} {
		_, err := parseOptions([]string{"-clients", "c1::u1", "-client-keys", c.keys}, envMap(map[string]string{"REFSERVER_TOKENS": "t1=u1"}), io.Discard)
		if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "-client-keys") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("-client-keys %s: expected a usage error saying %q, got %v", c.keys, c.want, err)
		}
	}
	// Without a key, a client without a secret is refused.
	if err := run(context.Background(), []string{"-clients", "c1::u1"}, envMap(map[string]string{"REFSERVER_TOKENS": "t1=u1"}), io.Discard); err == nil || !strings.Contains(err.Error(), "secret must be non-empty") {
		t.Fatalf("a client with neither secret nor key: expected a refusal, got %v", err)
	}
}

// TestRunServesMutualTLSAndTokens starts the command with TLS and required client certificates, gets a token
// from the token endpoint over HTTPS and uses it.
func TestRunServesMutualTLSAndTokens(t *testing.T) {
	pki, err := testpki.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{lines: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-tls-cert", pki.ServerCert, "-tls-key", pki.ServerKey, "-client-ca", pki.CACert}, envMap(nil), out)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	first := awaitFirstLine(t, out, done)
	base, ok := strings.CutPrefix(first, "refserver listening on ")
	if !ok || !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("listening line: expected https, got %q", first)
	}
	root := strings.TrimSuffix(base, "/fhir")
	var banner []string
	for range 5 { // two demo users, the token endpoint, two demo clients
		banner = append(banner, <-out.lines)
	}
	if !strings.Contains(banner[2], "OAuth2 token endpoint: "+root+refserver.TokenPath) || !strings.Contains(banner[3], "CLIENT_ID="+refserver.DemoClientIDA) {
		t.Fatalf("banner: got %q", banner)
	}

	caPEM, err := os.ReadFile(pki.CACert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if resp, err := noCert.Get(root + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("healthz without a client certificate: expected the TLS handshake to fail")
	}
	mtls := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}}}}
	resp, err := mtls.PostForm(root+refserver.TokenPath, url.Values{
		"grant_type": {"client_credentials"}, "client_id": {refserver.DemoClientIDA}, "client_secret": {refserver.DemoClientSecretA},
	})
	if err != nil {
		t.Fatalf("token over mutual TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"access_token"`) {
		t.Fatalf("token: expected 200 with an access token, got %d %s", resp.StatusCode, body)
	}
}
