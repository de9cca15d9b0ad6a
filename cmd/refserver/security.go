package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// securityFlags are the flags of the security features: retention, OAuth2 clients and TLS.
type securityFlags struct {
	retention, clients, clientKeys, tokenLifetime *string
	tlsCert, tlsKey, clientCA                     *string
}

func addSecurityFlags(fs *flag.FlagSet, env func(name, def string) string) securityFlags {
	return securityFlags{
		retention:     fs.String("retention", env("RETENTION", refserver.DefaultRetention.String()), "how long finished export jobs, their files and report jobs are kept, Go duration (env RETENTION)"),
		clients:       fs.String("clients", env("REFSERVER_CLIENTS", ""), "OAuth2 clients as clientId:secret:userId[:lifetime],...; an empty secret (clientId::userId) for a client that authenticates by its key only (-client-keys); empty: the demo clients of the demo users (env REFSERVER_CLIENTS)"),
		clientKeys:    fs.String("client-keys", env("REFSERVER_CLIENT_KEYS", ""), "public keys of clients for SMART Backend Services (private_key_jwt) as clientId:kid:file.pem,...; each PEM an RSA or EC P-384 PUBLIC KEY or CERTIFICATE (env REFSERVER_CLIENT_KEYS)"),
		tokenLifetime: fs.String("token-lifetime", env("TOKEN_LIFETIME", refserver.DefaultTokenLifetime.String()), "lifetime of issued tokens for clients that set none, Go duration (env TOKEN_LIFETIME)"),
		tlsCert:       fs.String("tls-cert", env("TLS_CERT", ""), "PEM certificate (chain) to serve HTTPS; needs -tls-key (env TLS_CERT)"),
		tlsKey:        fs.String("tls-key", env("TLS_KEY", ""), "PEM private key of -tls-cert (env TLS_KEY)"),
		clientCA:      fs.String("client-ca", env("CLIENT_CA", ""), "PEM CA bundle: require client certificates it signed (mutual TLS; needs -tls-cert) (env CLIENT_CA)"),
	}
}

// apply puts the parsed security flags into o.
func (f securityFlags) apply(o *options) []error {
	var errs []error
	retention, err := time.ParseDuration(*f.retention)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("-retention: %q is not a Go duration (e.g. 2h, 90m)", *f.retention))
	case retention <= 0:
		errs = append(errs, fmt.Errorf("-retention: must be positive, got %s", *f.retention))
	}
	o.cfg.Retention = retention

	lifetime, err := time.ParseDuration(*f.tokenLifetime)
	if err != nil || lifetime < time.Second {
		errs = append(errs, fmt.Errorf("-token-lifetime: %q: expected a Go duration of at least 1s", *f.tokenLifetime))
	}
	if *f.clients == "" {
		if o.demoUsers {
			o.cfg.Clients = refserver.DefaultClients()
			o.demoClients = true
		}
	} else {
		clients, err := parseClients(*f.clients)
		if err != nil {
			errs = append(errs, fmt.Errorf("-clients: %w", err))
		}
		o.cfg.Clients = clients
	}
	if *f.clientKeys != "" {
		if err := attachClientKeys(o.cfg.Clients, *f.clientKeys); err != nil {
			errs = append(errs, fmt.Errorf("-client-keys: %w", err))
		}
	}
	for i := range o.cfg.Clients {
		if o.cfg.Clients[i].TokenLifetime == 0 {
			o.cfg.Clients[i].TokenLifetime = lifetime
		}
	}

	o.tls = tlsFiles{cert: *f.tlsCert, key: *f.tlsKey, clientCA: *f.clientCA}
	switch {
	case (o.tls.cert == "") != (o.tls.key == ""):
		errs = append(errs, errors.New("-tls-cert and -tls-key: give both or neither"))
	case o.tls.clientCA != "" && o.tls.cert == "":
		errs = append(errs, errors.New("-client-ca: mutual TLS needs -tls-cert and -tls-key"))
	}
	return errs
}

// parseClients parses "clientId:secret:userId[:lifetime],...".
func parseClients(s string) ([]refserver.Client, error) {
	var clients []refserver.Client
	for i, item := range strings.Split(s, ",") {
		fields := strings.Split(strings.TrimSpace(item), ":")
		// An empty secret is left to the server's check: a client with a key (-client-keys) needs none.
		if len(fields) < 3 || len(fields) > 4 || fields[0] == "" || fields[2] == "" {
			return nil, fmt.Errorf("entry %d: want clientId:secret:userId[:lifetime]", i+1)
		}
		c := refserver.Client{ID: fields[0], Secret: fields[1], UserID: fields[2]}
		if len(fields) == 4 {
			d, err := time.ParseDuration(fields[3])
			if err != nil || d < time.Second {
				return nil, fmt.Errorf("entry %d (client %s): lifetime %q: expected a Go duration of at least 1s", i+1, c.ID, fields[3])
			}
			c.TokenLifetime = d
		}
		clients = append(clients, c)
	}
	return clients, nil
}

// attachClientKeys reads "clientId:kid:file.pem,..." and gives each named client that public key, replacing a
// demo client's demo key.
func attachClientKeys(clients []refserver.Client, s string) error {
	for i, item := range strings.Split(s, ",") {
		fields := strings.SplitN(strings.TrimSpace(item), ":", 3)
		if len(fields) != 3 || fields[0] == "" || fields[1] == "" || fields[2] == "" {
			return fmt.Errorf("entry %d: want clientId:kid:file.pem", i+1)
		}
		j := slices.IndexFunc(clients, func(c refserver.Client) bool { return c.ID == fields[0] })
		if j < 0 {
			return fmt.Errorf("entry %d: client %q is not among the clients (-clients)", i+1, fields[0])
		}
		raw, err := os.ReadFile(fields[2])
		if err != nil {
			return fmt.Errorf("entry %d (client %s): %w", i+1, fields[0], err)
		}
		key, err := refserver.ParsePublicKeyPEM(raw)
		if err != nil {
			return fmt.Errorf("entry %d (client %s): %s: %w", i+1, fields[0], fields[2], err)
		}
		clients[j].PublicKey, clients[j].KeyID = key, fields[1]
	}
	return nil
}

// tlsFiles are the PEM files of optional TLS and mutual TLS.
type tlsFiles struct{ cert, key, clientCA string }

// listen wraps ln in TLS when a certificate is configured, and returns the scheme to print. On error it
// closes ln.
func (t tlsFiles) listen(ln net.Listener) (net.Listener, string, error) {
	if t.cert == "" {
		return ln, "http", nil
	}
	cfg, err := t.config()
	if err != nil {
		ln.Close()
		return nil, "", &usageError{err}
	}
	return tls.NewListener(ln, cfg), "https", nil
}

func (t tlsFiles) config() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.cert, t.key)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.clientCA != "" {
		pem, err := os.ReadFile(t.clientCA)
		if err != nil {
			return nil, fmt.Errorf("-client-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-client-ca: %s holds no PEM certificate", t.clientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// printClients prints the demo OAuth2 clients (their secrets are public demo values) and the token endpoint.
func printClients(w io.Writer, o options, scheme string, addr net.Addr) {
	fmt.Fprintf(w, "OAuth2 token endpoint: %s://%s%s (client credentials: client_secret_basic, client_secret_post or private_key_jwt)\n", scheme, addr, refserver.TokenPath)
	if !o.demoClients {
		return
	}
	demoKeys := map[string]string{refserver.DemoClientIDA: refserver.DemoPrivateKeyA, refserver.DemoClientIDB: refserver.DemoPrivateKeyB}
	demo := refserver.DefaultClients()
	for _, c := range o.cfg.Clients {
		fmt.Fprintf(w, "demo client: CLIENT_ID=%s CLIENT_SECRET=%s userId=%s tokenLifetime=%s", c.ID, c.Secret, c.UserID, c.TokenLifetime)
		// The path of a test key published in the repository, not key material; only while the client still
		// has that key (-client-keys may have replaced it).
		i := slices.IndexFunc(demo, func(d refserver.Client) bool { return d.ID == c.ID })
		if k, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && i >= 0 && k.Equal(demo[i].PublicKey) && c.KeyID == demo[i].KeyID {
			fmt.Fprintf(w, " (or PRIVATE_KEY=%s KEY_ID=%s)", demoKeys[c.ID], c.KeyID)
		}
		fmt.Fprintln(w)
	}
}
