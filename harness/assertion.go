package harness

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/ehealth-dk/fut-conformance/check"
)

// SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html): the client authenticates to
// the token endpoint with a JWT signed by its private key (private_key_jwt, RFC 7523) instead of a secret.
// The HL7 Bulk Data IG recommends it, and the independent Bulk Data servers accept nothing else.

// clientAssertionType is the client_assertion_type of a JWT client assertion (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionLifetime is the exp of each assertion, from its signing: SMART allows at most five minutes; a
// minute less leaves room for a server whose clock runs ahead of this machine's.
const assertionLifetime = 4 * time.Minute

// signingKey is a client's private key with the algorithm SMART pairs with it.
type signingKey struct {
	key    crypto.Signer
	method jwt.SigningMethod // RS384 or ES384
	kid    string
}

// loadSigningKey reads the PEM private key at path, the value of the variable name. Its errors name the
// variable and the path, never the key: the PEM's bytes are not quoted, nor are x509's messages about them
// (they describe the structure, not the content).
func loadSigningKey(name, path, kid string) (signingKey, error) {
	// A PEM pasted into the variable instead of a path would be printed as "the path" by any error below.
	if strings.Contains(path, "-----BEGIN") || strings.ContainsAny(path, "\r\n") {
		return signingKey{}, fmt.Errorf("%s holds what looks like a PEM key itself: expected the path of a PEM file holding the private key", name)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		return signingKey{}, fmt.Errorf("%s=%q: %v", name, path, err)
	}
	block, _ := pem.Decode(raw)
	switch {
	case block == nil:
		return signingKey{}, fmt.Errorf("%s=%q: no PEM block found; expected a PEM private key: PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC1)", name, path)
	case block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "":
		return signingKey{}, fmt.Errorf("%s=%q: the key is encrypted; give an unencrypted PEM key (openssl pkcs8 -topk8 -nocrypt) in a file only the harness's user can read", name, path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return signingKey{}, fmt.Errorf("%s=%q: PEM block %q; expected PRIVATE KEY (PKCS#8), RSA PRIVATE KEY (PKCS#1) or EC PRIVATE KEY (SEC1)", name, path, block.Type)
	}
	if err != nil {
		return signingKey{}, fmt.Errorf("%s=%q: the %s block does not parse: %v", name, path, block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return signingKey{key: k, method: jwt.SigningMethodRS384, kid: kid}, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P384() {
			return signingKey{}, fmt.Errorf("%s=%q: an EC key on %s; SMART Backend Services signs ES384, which needs P-384 (or use an RSA key, RS384)", name, path, k.Curve.Params().Name)
		}
		return signingKey{key: k, method: jwt.SigningMethodES384, kid: kid}, nil
	}
	return signingKey{}, fmt.Errorf("%s=%q: the key is %s; SMART Backend Services signs with RSA (RS384) or EC P-384 (ES384)", name, path, keyKind(key))
}

// keyKind names a key type SMART does not sign with, for a message.
func keyKind(k any) string {
	switch k.(type) {
	case ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PrivateKey:
		return "X25519 (ECDH)"
	}
	return fmt.Sprintf("%T", k)
}

// assertionSource fetches a token with a fresh client assertion each time: an assertion is good for one
// token request (the server refuses a replayed jti), so it cannot sit in a clientcredentials.Config built
// once. It is wrapped in a renewingSource, which calls it only when the token is about to expire.
type assertionSource struct {
	ctx      context.Context // carries the token requests' HTTP client (oauth2.HTTPClient)
	tokenURL string
	clientID string
	scopes   []string
	key      signingKey
	red      *check.Redactor  // each assertion is a secret: a token endpoint may echo it in its error
	now      func() time.Time // the run's clock, which the assertion's exp counts from; nil: time.Now
}

func (s assertionSource) Token() (*oauth2.Token, error) {
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	assertion, err := s.assertion(now())
	if err != nil {
		return nil, err
	}
	s.red.Add(assertion)
	cc := clientcredentials.Config{
		ClientID: s.clientID, // sent as client_id in the body: SMART does not need it, RFC 7521 §4.2 allows it
		TokenURL: s.tokenURL,
		Scopes:   s.scopes,
		// In the body, not HTTP Basic: there is no secret, and x/oauth2 then sends no client_secret at all.
		AuthStyle: oauth2.AuthStyleInParams,
		EndpointParams: url.Values{
			"client_assertion_type": {clientAssertionType},
			"client_assertion":      {assertion},
		},
	}
	return cc.Token(s.ctx)
}

// assertion signs the JWT of one token request: iss and sub the client, aud the token endpoint, a unique
// jti and an exp at most five minutes ahead, with the key's id in the header.
func (s assertionSource) assertion(now time.Time) (string, error) {
	tok := jwt.NewWithClaims(s.key.method, jwt.MapClaims{
		"iss": s.clientID,
		"sub": s.clientID,
		"aud": s.tokenURL, // a string, as SMART shows it, not the one-element array jwt's RegisteredClaims writes
		"exp": now.Add(assertionLifetime).Unix(),
		"jti": rand.Text(),
	})
	tok.Header["kid"] = s.key.kid
	signed, err := tok.SignedString(s.key.key)
	if err != nil {
		return "", fmt.Errorf("signing the client assertion of %s: %w", s.clientID, err)
	}
	return signed, nil
}
