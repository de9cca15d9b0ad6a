package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Exchange is one HTTP request and its response, as the transcript of a failure shows it.
type Exchange struct {
	Method         string
	URL            string
	RequestHeader  http.Header
	RequestBody    []byte
	Status         int // 0 when no response came back
	Header         http.Header
	Body           []byte
	Err            error // transport error, timeout or oversized body
	Duration       time.Duration
	Received       time.Time
	requestTimeout time.Duration
}

// MediaType is the response's Content-Type without parameters, lower-cased; "" when absent or unparsable.
func (x *Exchange) MediaType() string {
	mt, _, err := mime.ParseMediaType(x.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// request sends one request as user and records the exchange in the world's transcript. A transport error,
// a timeout or an oversized body comes back as an error that names the request; the exchange is recorded
// either way.
func (w *World) request(ctx context.Context, user, method, target string, header http.Header, body []byte) (*Exchange, error) {
	token, err := w.token(user)
	if err != nil {
		return nil, err
	}
	if header == nil {
		header = http.Header{}
	}
	if token != "" {
		header.Set("Authorization", "Bearer "+token)
	}
	x := &Exchange{Method: method, URL: target, RequestHeader: header, RequestBody: body, requestTimeout: w.target.RequestTimeout}
	w.exchanges = append(w.exchanges, x)

	ctx, cancel := context.WithTimeout(ctx, w.target.RequestTimeout)
	defer cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		x.Err = err
		return x, fmt.Errorf("build request %s %s: %w", method, target, err)
	}
	req.Header = header.Clone()
	start := time.Now()
	resp, err := w.target.HTTPClient.Do(req)
	if err != nil {
		x.Duration = time.Since(start)
		x.Err = describeTransportError(err, ctx, w.target.RequestTimeout)
		return x, fmt.Errorf("%s %s: %w", method, target, x.Err)
	}
	defer resp.Body.Close()
	x.Status, x.Header = resp.StatusCode, resp.Header
	x.Body, err = io.ReadAll(io.LimitReader(resp.Body, w.target.MaxBodyBytes+1))
	x.Duration = time.Since(start)
	x.Received = start.Add(x.Duration)
	switch {
	case err != nil:
		x.Err = describeTransportError(err, ctx, w.target.RequestTimeout)
		return x, fmt.Errorf("%s %s: reading the response body: %w", method, target, x.Err)
	case int64(len(x.Body)) > w.target.MaxBodyBytes:
		x.Body = x.Body[:w.target.MaxBodyBytes]
		x.Err = fmt.Errorf("response body exceeds MAX_BODY (%d bytes); the rest was not read", w.target.MaxBodyBytes)
		return x, fmt.Errorf("%s %s: %w", method, target, x.Err)
	}
	return x, nil
}

var errRequestTimeout = errors.New("no complete response within REQUEST_TIMEOUT")

func describeTransportError(err error, ctx context.Context, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s): %v", errRequestTimeout, timeout, err)
	}
	return err
}

// exportEndpoint is [base]/path of the service that exports; reportEndpoint of the reporting service. On FUT
// they are separate services, elsewhere both are BaseURL.
func (w *World) exportEndpoint(path string) string { return join(w.target.ExportBaseURL, path) }
func (w *World) reportEndpoint(path string) string { return join(w.target.ReportBaseURL, path) }

func join(base, path string) string { return base + "/" + strings.TrimLeft(path, "/") }

func fhirJSONHeader() http.Header {
	return http.Header{"Accept": {"application/fhir+json"}, "Content-Type": {"application/fhir+json"}}
}

// sensitiveHeaders never appear in a transcript with their values.
var sensitiveHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Set-Cookie": true, "X-Api-Key": true}

const transcriptBodyLimit = 2000

// Transcript renders the exchange for a failure message: method, URL, status, headers with secrets
// redacted, bodies cut to a readable length.
func (x *Exchange) Transcript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "> %s %s\n", x.Method, x.URL)
	writeHeaders(&b, "> ", x.RequestHeader)
	writeBody(&b, "> ", x.RequestBody)
	switch {
	case x.Status == 0:
		fmt.Fprintf(&b, "< (no response after %s: %v)\n", x.Duration.Round(time.Millisecond), x.Err)
	default:
		fmt.Fprintf(&b, "< %d %s (%s)\n", x.Status, http.StatusText(x.Status), x.Duration.Round(time.Millisecond))
		writeHeaders(&b, "< ", x.Header)
		writeBody(&b, "< ", x.Body)
		if x.Err != nil {
			fmt.Fprintf(&b, "< (%v)\n", x.Err)
		}
	}
	return b.String()
}

func writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	for _, k := range sortedKeys(h) {
		for _, v := range h[k] {
			if sensitiveHeaders[http.CanonicalHeaderKey(k)] {
				v = redact(v)
			}
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, v)
		}
	}
}

func redact(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return scheme + " [redacted]"
	}
	return "[redacted]"
}

func writeBody(b *strings.Builder, prefix string, body []byte) {
	if len(body) == 0 {
		return
	}
	shown := body
	if len(shown) > transcriptBodyLimit {
		shown = shown[:transcriptBodyLimit]
		for len(shown) > 0 && !utf8.Valid(shown) {
			shown = shown[:len(shown)-1]
		}
	}
	b.WriteString(prefix + "\n")
	for _, line := range strings.Split(strings.TrimRight(string(shown), "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	if len(shown) < len(body) {
		fmt.Fprintf(b, "%s[... %d more bytes]\n", prefix, len(body)-len(shown))
	}
}

// Curl is a command that reproduces the request, with the token left as $TOKEN.
func (x *Exchange) Curl() string {
	parts := []string{"curl", "-i", "-X", x.Method}
	for _, k := range sortedKeys(x.RequestHeader) {
		for _, v := range x.RequestHeader[k] {
			if http.CanonicalHeaderKey(k) == "Authorization" {
				parts = append(parts, `-H "Authorization: Bearer $TOKEN"`)
				continue
			}
			if sensitiveHeaders[http.CanonicalHeaderKey(k)] {
				v = redact(v)
			}
			parts = append(parts, "-H "+shellQuote(k+": "+v))
		}
	}
	if len(x.RequestBody) > 0 {
		parts = append(parts, "--data-binary "+shellQuote(string(x.RequestBody)))
	}
	return strings.Join(append(parts, shellQuote(x.URL)), " ")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func statusPhrase(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}
