package steps

import (
	"net/url"
	"slices"
	"strings"
)

// Origin is the origin of an absolute URL as the token policy compares it: scheme://host:port, lower-cased,
// the default port made explicit; "" when raw is not an absolute http(s) URL.
func Origin(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	switch {
	case port != "":
	case scheme == "https":
		port = "443"
	case scheme == "http":
		port = "80"
	default:
		return ""
	}
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host + ":" + port
}

// trusts tells whether a bearer token may go to target: only to the origins of the service bases (and the
// token endpoint, and TRUSTED_ORIGINS), never to an origin a server merely named in a Content-Location, a
// manifest or a redirect.
func (t *Target) Trusts(target string) bool {
	o := Origin(target)
	if o == "" {
		return false
	}
	return o == Origin(t.ExportBaseURL) || o == Origin(t.ReportBaseURL) || slices.Contains(t.TrustedOrigins, o)
}
