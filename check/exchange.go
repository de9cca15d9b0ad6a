package check

import (
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Exchange is one HTTP request and its response, as the checks read it and a failure's transcript shows it.
type Exchange struct {
	Method        string
	URL           string
	RequestHeader http.Header
	RequestBody   []byte
	Status        int // 0 when no response came back
	Header        http.Header
	Body          []byte
	BodyOmitted   int64 // bytes of the body read but not kept in Body: an output file keeps its start only
	Err           error // transport error, timeout or oversized body
	Duration      time.Duration
	Received      time.Time
	// BodyCut is how many bytes of Body were dropped by Cut after the checks read it whole.
	BodyCut int64
	// TokenWithheld, when set, says why the request went without the user's token: its origin is not trusted.
	TokenWithheld string
	// Redirected is the URL that answered, when redirects led away from URL (a file store's pre-signed URL).
	Redirected string
}

// TranscriptHead is how much of a body an exchange keeps once its checks are done: a transcript shows no
// more, and a run's memory and reports stay bounded whatever the server sends.
const TranscriptHead = 4 << 10

// Cut drops the body but its first TranscriptHead bytes (cut on a UTF-8 boundary), remembering how much went.
// The checks read the whole body before; the transcript notes the cut.
func (x *Exchange) Cut() {
	if len(x.Body) <= TranscriptHead {
		return
	}
	head := x.Body[:TranscriptHead]
	for i := 0; i < utf8.UTFMax && len(head) > 0 && !utf8.Valid(head); i++ {
		head = head[:len(head)-1]
	}
	x.BodyCut += int64(len(x.Body) - len(head))
	x.Body = append([]byte(nil), head...) // a copy: the whole body's array is released
}

// MediaType is the response's Content-Type without parameters, lower-cased; "" when absent or unparsable.
func (x *Exchange) MediaType() string {
	mt, _, err := mime.ParseMediaType(x.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// ResponseTime is the server's Date when it sent one, else when the response arrived: the reference for an
// HTTP-date Retry-After.
func (x *Exchange) ResponseTime() time.Time {
	if d := x.Header.Get("Date"); d != "" {
		if parsed, err := http.ParseTime(d); err == nil {
			return parsed
		}
	}
	return x.Received
}

// sensitiveHeaders never appear in a transcript with their values.
var sensitiveHeaders = map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Set-Cookie": true, "X-Api-Key": true}

const transcriptBodyLimit = 2000

// transcriptHeaderLimit: a server may send header values of megabytes (Go's client accepts 10 MB of
// headers); a transcript shows the start of each.
const transcriptHeaderLimit = 512

// cutText is s cut to about limit bytes on a UTF-8 boundary, saying how much was cut.
func cutText(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	head := s[:limit]
	for i := 0; i < utf8.UTFMax && len(head) > 0 && !utf8.ValidString(head); i++ {
		head = head[:len(head)-1]
	}
	return fmt.Sprintf("%s… [cut: %s more]", head, byteSize(int64(len(s)-len(head))))
}

// Transcript renders the exchange for a failure message: method, URL, status, headers with secrets
// redacted, bodies cut to a readable length, and every invalid UTF-8 sequence a server sent replaced by
// U+FFFD, so that no report (index.html, junit.xml, cucumber.json) carries bytes its encoding forbids.
func (x *Exchange) Transcript() string {
	var b strings.Builder
	fmt.Fprintf(&b, "> %s %s\n", x.Method, x.URL)
	if x.TokenWithheld != "" {
		fmt.Fprintf(&b, "> (%s)\n", x.TokenWithheld)
	}
	writeHeaders(&b, "> ", x.RequestHeader)
	writeBody(&b, "> ", x.RequestBody, 0)
	switch {
	case x.Status == 0:
		fmt.Fprintf(&b, "< (no response after %s: %v)\n", x.Duration.Round(time.Millisecond), x.Err)
	default:
		if x.Redirected != "" {
			fmt.Fprintf(&b, "< (redirected: answered by %s; a redirect to another origin carries the token only to TRUSTED_ORIGINS)\n", cutText(withoutQuery(x.Redirected), transcriptHeaderLimit))
		}
		fmt.Fprintf(&b, "< %d %s (%s)\n", x.Status, http.StatusText(x.Status), x.Duration.Round(time.Millisecond))
		writeHeaders(&b, "< ", x.Header)
		writeBody(&b, "< ", x.Body, x.BodyCut)
		if x.BodyOmitted > 0 {
			fmt.Fprintf(&b, "< [... %d more bytes read and judged, not kept]\n", x.BodyOmitted)
		}
		if x.Err != nil {
			fmt.Fprintf(&b, "< (%v)\n", x.Err)
		}
	}
	return Printable(strings.ToValidUTF8(b.String(), "\uFFFD"))
}

func writeHeaders(b *strings.Builder, prefix string, h http.Header) {
	for _, k := range sortedKeys(h) {
		for _, v := range h[k] {
			if sensitiveHeaders[http.CanonicalHeaderKey(k)] {
				v = redact(v)
			}
			fmt.Fprintf(b, "%s%s: %s\n", prefix, k, cutText(v, transcriptHeaderLimit))
		}
	}
}

func redact(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok {
		return scheme + " [redacted]"
	}
	return "[redacted]"
}

func writeBody(b *strings.Builder, prefix string, body []byte, cut int64) {
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
	text := string(shown)
	if len(shown) < len(body) {
		// The ellipsis at the cut itself: a secret cut there leaves a part the Redactor finds by it.
		text += Ellipsis
	}
	b.WriteString(prefix + "\n")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	if more := int64(len(body)-len(shown)) + cut; more > 0 {
		fmt.Fprintf(b, "%s… [cut: %s more]\n", prefix, byteSize(more))
	}
}

// byteSize is n in the unit a reader grasps at once: 812 bytes, 4.0 KiB, 8.0 MiB.
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// Curl is a command that reproduces the request, with the token left as $TOKEN.
func (x *Exchange) Curl() string {
	parts := []string{"curl", "-i", "-X", x.Method}
	if x.RequestHeader.Get("Accept-Encoding") != "" {
		parts = append(parts, "--compressed") // curl then decodes what the header accepted, as the harness did
	}
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

// StatusPhrase is "404 Not Found", or the bare code when Go knows no text for it.
func StatusPhrase(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// withoutQuery is a URL a redirect led to, its query left out: a pre-signed URL's query (S3's
// X-Amz-Signature, Azure's sig) lets anyone who reads it download the file, the user's exported data, until it
// expires, and the reports go where the run's artifacts go. The store and the path name the file.
func withoutQuery(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		return fmt.Sprintf("%s (its query of %d bytes not shown: a pre-signed URL's signature is a credential)", raw[:i], len(raw)-i-1)
	}
	return raw
}
