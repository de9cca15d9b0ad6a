package harness

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/ehealth-dk/fut-conformance/steps"
)

// discoverTokenURL reads the token endpoint of a run with PRIVATE_KEY and no TOKEN_URL where SMART clients
// find it: the server's [base]/.well-known/smart-configuration, its token_endpoint (SMART App Launch 2,
// "Conformance": the discovery document, served without authorization). Where the document lists the
// authentication methods and signing algorithms its token endpoint accepts, they must include private_key_jwt
// and the keys' algorithms: otherwise every token request would be refused, and the preflight says why now.
// The base is EXPORT_TARGET's, or TARGET's: the Bulk Data server's.
func discoverTokenURL(ctx context.Context, cfg Config, client *http.Client) (string, error) {
	base := strings.TrimRight(cmp.Or(cfg.ExportTarget, cfg.Target), "/")
	where := base + "/.well-known/smart-configuration"
	refuse := func(format string, args ...any) error {
		return &PreflightError{
			Cause: "TOKEN_URL is unset, and " + where + " " + fmt.Sprintf(format, args...),
			Fix:   "set TOKEN_URL to the token endpoint of the server's authorization server",
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(cfg.RequestTimeout, steps.DefaultRequestTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return "", refuse("is no URL: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", refuse("does not answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", refuse("answered %s, its body cut: %v", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", refuse("answered %s, not 200 with the SMART configuration", resp.Status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "" && mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return "", refuse("answered %s with Content-Type %q, not JSON", resp.Status, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		TokenEndpoint string   `json:"token_endpoint"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		SigningAlgs   []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", refuse("holds no JSON object of the SMART configuration: %v", err)
	}
	switch {
	case doc.TokenEndpoint == "":
		return "", refuse("names no token_endpoint")
	case !validTokenURL(doc.TokenEndpoint):
		return "", refuse("names the token_endpoint %q, not an absolute http(s) URL without user info", doc.TokenEndpoint)
	case len(doc.AuthMethods) > 0 && !slices.Contains(doc.AuthMethods, "private_key_jwt"):
		return "", &PreflightError{
			Cause: fmt.Sprintf("%s lists the token endpoint's authentication methods %s, without private_key_jwt: it accepts no signed JWT (PRIVATE_KEY)", where, strings.Join(doc.AuthMethods, ", ")),
			Fix:   "authenticate the way the server accepts: CLIENT_SECRET with TOKEN_URL, or a TOKEN",
		}
	}
	if len(doc.SigningAlgs) > 0 {
		for _, k := range []struct{ name, path, kid string }{{"PRIVATE_KEY", cfg.PrivateKey, cfg.KeyID}, {"PRIVATE_KEY_B", cfg.PrivateKeyB, cfg.KeyIDB}} {
			if k.path == "" {
				continue
			}
			key, err := loadSigningKey(k.name, k.path, k.kid)
			if err != nil {
				return "", err
			}
			if alg := key.method.Alg(); !slices.Contains(doc.SigningAlgs, alg) {
				return "", &PreflightError{
					Cause: fmt.Sprintf("%s signs %s, and %s lists the algorithms %s", k.name, alg, where, strings.Join(doc.SigningAlgs, ", ")),
					Fix:   fmt.Sprintf("give %s a key of an algorithm the server accepts (RS384: RSA; ES384: EC P-384)", k.name),
				}
			}
		}
	}
	return doc.TokenEndpoint, nil
}
