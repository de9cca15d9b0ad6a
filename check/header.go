package check

import (
	"net/url"
	"strings"
)

// CheckAbsoluteURL requires an absolute http(s) URL, such as a Content-Location or a manifest's file URL.
func CheckAbsoluteURL(req, subject, value string) error {
	if value == "" {
		return Violationf(req, subject, "an absolute http(s) URL", "nothing")
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Violationf(req, subject, "an absolute http(s) URL", "%q", value)
	}
	return nil
}

// CheckMediaType compares media types only: parameters such as charset are tolerated.
func CheckMediaType(req string, x *Exchange, want string) error {
	if x.MediaType() != strings.ToLower(want) {
		got := x.Header.Get("Content-Type")
		if got == "" {
			got = "no Content-Type"
		}
		return Violationf(req, "Content-Type of "+x.Method+" "+x.URL, want+" (parameters such as charset allowed)", "%s", got)
	}
	return nil
}
