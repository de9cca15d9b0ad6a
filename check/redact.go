package check

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// Redactor replaces every secret the run knows (tokens, client secrets, access tokens issued during the run)
// in any text before it is written: a server may echo a token in a header or a body, and the harness prints
// headers and bodies. It also knows the escaped forms a report may hold a secret in (JSON, HTML, a URL
// query), so that it can clean text on its way into any file. A nil *Redactor redacts nothing.
type Redactor struct {
	mu       sync.RWMutex
	secrets  map[string]bool
	needles  []string // every form of every secret, to find a secret split across two writes
	replacer *strings.Replacer
	// heads and tails index the needles by their first and last minSecretLen bytes, to find a part of one
	// left by a cut (cutParts).
	heads, tails map[string][]string
}

// Redacted is what a secret is replaced with.
const Redacted = "[redacted]"

// minSecretLen: a shorter "secret" would redact ordinary words of every report; such a secret is refused by
// no one, but cannot be hidden either (the README says so).
const minSecretLen = 4

// NewRedactor returns a Redactor of the given secrets (empty ones ignored).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{secrets: map[string]bool{}}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add makes s a secret from now on: an access token issued during the run is added when it is issued. A
// secret with white space around it is a secret without it too: what receives it may trim it, and echo it so.
func (r *Redactor) Add(s string) {
	if trimmed := strings.TrimSpace(s); trimmed != s {
		r.Add(trimmed)
	}
	if r == nil || len(s) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secrets[s] {
		return
	}
	r.secrets[s] = true
	var pairs []string
	r.needles = r.needles[:0]
	for secret := range r.secrets {
		for _, form := range secretForms(secret) {
			r.needles = append(r.needles, form)
		}
	}
	// Longest first: a secret that contains another is replaced whole.
	sortByLengthDesc(r.needles)
	r.heads, r.tails = map[string][]string{}, map[string][]string{}
	for _, n := range r.needles {
		pairs = append(pairs, n, Redacted)
		r.heads[n[:minSecretLen]] = append(r.heads[n[:minSecretLen]], n)
		r.tails[n[len(n)-minSecretLen:]] = append(r.tails[n[len(n)-minSecretLen:]], n)
	}
	r.replacer = strings.NewReplacer(pairs...)
}

// secretForms are the ways s can appear in text the harness writes: as it is, JSON-escaped (a cucumber.json
// string; with HTML escaping or without), quoted by Go (%q: x/oauth2's errors quote a token endpoint's
// error_description so), HTML-escaped (html/template escapes + too), query-escaped (a URL) and base64-encoded
// (base64Cores).
func secretForms(s string) []string {
	forms := []string{s}
	if j, err := json.Marshal(s); err == nil {
		forms = append(forms, string(j[1:len(j)-1]))
	}
	var unescaped strings.Builder
	enc := json.NewEncoder(&unescaped)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) == nil {
		j := strings.TrimSuffix(unescaped.String(), "\n")
		forms = append(forms, j[1:len(j)-1])
	}
	q := strconv.Quote(s)
	forms = append(forms, q[1:len(q)-1])
	forms = append(forms, html.EscapeString(s), url.QueryEscape(s), strings.ReplaceAll(html.EscapeString(s), "+", "&#43;"))
	forms = append(forms, base64Cores(s)...)
	seen := map[string]bool{}
	out := forms[:0]
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// minBase64Core is the shortest base64 core that is redacted: 8 characters, 6 bytes of a secret. A shorter one
// would also match, by chance, in the base64 of the Binaries a transcript shows.
const minBase64Core = 8

// base64Cores are the parts of the base64 encoding of s that do not depend on what surrounds it: a server may
// echo a token base64-encoded (an echoed "Authorization: Basic" header, a Binary's data, a JWT claim), and
// the bytes before it decide how its bytes fall into groups of three. For each of the three ways, the groups
// made of its bytes alone, in the standard alphabet and the URL one.
func base64Cores(s string) []string {
	var cores []string
	for k := range 3 {
		n := (len(s) - k) / 3 * 3
		if n <= 0 {
			break
		}
		core := s[k : k+n]
		if base64.RawStdEncoding.EncodedLen(len(core)) < minBase64Core {
			continue
		}
		cores = append(cores, base64.RawStdEncoding.EncodeToString([]byte(core)), base64.RawURLEncoding.EncodeToString([]byte(core)))
	}
	return cores
}

func sortByLengthDesc(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && len(s[j]) > len(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// String is s with every secret replaced by [redacted], and the value of every credential a URL carries in
// its query (urlCredentialKeys).
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	s, _ = redactURLCredentials(r.secretsOnly(s))
	return s
}

// secretsOnly is s with every secret replaced, and URLs' credentials left as they are.
func (r *Redactor) secretsOnly(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.replacer != nil {
		s = r.cutParts(r.replacer.Replace(s))
	}
	return s
}

// Ellipsis marks where the harness cut a text short (a long header, a body, a console line).
const Ellipsis = "…"

// cutParts replaces the parts of secrets a cut left: a text cut inside a secret (a server's echo of a token at
// the end of the part of a header a transcript shows) keeps its start, which the whole secret no longer
// matches. The end before an ellipsis that begins a secret (in any form), and the start after one that ends a
// secret (a clip that keeps the end of a URL), are replaced, when at least minSecretLen bytes long.
func (r *Redactor) cutParts(s string) string {
	if !strings.Contains(s, Ellipsis) {
		return s
	}
	var b strings.Builder
	done := 0 // s[:done] is in b
	for {
		k := strings.Index(s[done:], Ellipsis)
		if k < 0 {
			break
		}
		at := done + k
		after := at + len(Ellipsis)
		head := r.headBefore(s[done:at])
		tail := r.tailAfter(s[after:])
		b.WriteString(s[done : at-head])
		if head > 0 {
			b.WriteString(Redacted)
		}
		b.WriteString(Ellipsis)
		if tail > 0 {
			b.WriteString(Redacted)
		}
		done = after + tail
	}
	b.WriteString(s[done:])
	return b.String()
}

// headBefore is the length of the longest end of s, minSecretLen bytes or more, that begins a secret but is
// not all of it.
func (r *Redactor) headBefore(s string) int {
	for j := max(0, len(s)-r.longestNeedle()+1); j+minSecretLen <= len(s); j++ {
		for _, n := range r.heads[s[j:j+minSecretLen]] {
			if len(s)-j < len(n) && strings.HasPrefix(n, s[j:]) {
				return len(s) - j // the first j is the longest
			}
		}
	}
	return 0
}

// tailAfter is the length of the longest start of s, minSecretLen bytes or more, that ends a secret but is
// not all of it.
func (r *Redactor) tailAfter(s string) int {
	for e := min(len(s), r.longestNeedle()-1); e >= minSecretLen; e-- {
		for _, n := range r.tails[s[e-minSecretLen:e]] {
			if e < len(n) && strings.HasSuffix(n, s[:e]) {
				return e
			}
		}
	}
	return 0
}

func (r *Redactor) longestNeedle() int {
	if len(r.needles) == 0 {
		return 0
	}
	return len(r.needles[0]) // sorted longest first
}

// urlCredentialKeys are the query parameters whose value is a credential: a pre-signed URL's signature (S3's
// X-Amz-*, Google Cloud Storage's X-Goog-* and Signature, Azure's SAS sig) lets anyone who reads it download
// the user's exported data until it expires, and an access_token or token in a query (RFC 6750 §2.3) is a
// bearer token. A manifest may list thousands of them, signed anew at each poll: they are found by their
// keys wherever a URL is written (a manifest, a transcript's request line, a transport error, a curl
// reproducer), not collected as secrets one by one. Matched without regard to case, after ?, &, ; or # (an
// implicit grant's fragment) and JSON's \u0026, so that "X-Amz-Signature" is found whole and "Signature"
// alone too. A URL nested in another's query (a redirect or callback parameter) is percent-encoded, once or
// more: its credentials are found at each level of encoding, after %3F, %26, %3B or %23 and before %3D
// (%253F … %253D twice encoded, and so on).
var urlCredentialKeys = []string{"x-amz-signature", "x-amz-security-token", "x-amz-credential", "x-goog-signature", "x-goog-credential", "signature", "sig", "access_token", "token"}

// redactURLCredentials replaces the value of every urlCredentialKeys parameter in s, at every level of
// percent-encoding. When s ends in a credential's value, or right after its =, what follows s may be more of
// it (RedactingWriter): open says so, with the value's level of encoding (0: not encoded) and whether the value
// was replaced already (not when s ends at the =).
func redactURLCredentials(s string) (string, openValue) {
	var b strings.Builder
	var open openValue
	done := 0 // s[:done] is in b
	for i := 0; i < len(s); i++ {
		c, level, width, ok := escapedAt(s, i)
		if !ok || c != '=' || !afterCredentialKey(s[:i], level) {
			continue
		}
		start := i + width
		end := start + valueLen(s[start:], level)
		if end > start {
			b.WriteString(s[done:start])
			b.WriteString(Redacted)
			done = end
		}
		open = openValue{open: end == len(s), level: level, replaced: end > start}
		i = end - 1
	}
	if done > 0 {
		b.WriteString(s[done:])
		s = b.String()
	}
	return s, open
}

// openValue is what redactURLCredentials says of a credential's value that may go on after the text.
type openValue struct {
	open     bool
	level    int  // of percent-encoding
	replaced bool // [redacted] written already
}

// escapedAt reads the character at s[i]: s[i] itself (level 0, width 1), or, at a %, the character it
// encodes, encoded level times (%3D is '=' at level 1, %253D '=' at level 2), width bytes long. False for a %
// that begins no complete escape.
func escapedAt(s string, i int) (c byte, level, width int, ok bool) {
	if s[i] != '%' {
		return s[i], 0, 1, true
	}
	j := i + 1
	for level = 1; j+3 < len(s) && s[j] == '2' && s[j+1] == '5' && isHex(s[j+2]) && isHex(s[j+3]); level++ {
		j += 2 // %25 followed by an escape's two hex digits: one more level
	}
	if j+1 >= len(s) || !isHex(s[j]) || !isHex(s[j+1]) {
		return 0, 0, 0, false
	}
	return unhex(s[j])<<4 | unhex(s[j+1]), level, j + 2 - i, true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// isQuerySeparator: the characters before a query parameter's key.
func isQuerySeparator(c byte) bool { return c == '?' || c == '&' || c == ';' || c == '#' }

// afterCredentialKey says whether s ends with a query parameter's key that is a credential's, at the given
// level of encoding (its separator encoded as many times).
func afterCredentialKey(s string, level int) bool {
	for _, key := range urlCredentialKeys {
		if len(s) <= len(key) || !strings.EqualFold(s[len(s)-len(key):], key) {
			continue
		}
		before := s[:len(s)-len(key)]
		if level == 0 {
			if isQuerySeparator(before[len(before)-1]) || len(before) >= 6 && strings.EqualFold(before[len(before)-6:], `\u0026`) {
				return true
			}
			continue
		}
		if at := len(before) - (2*level + 1); at >= 0 {
			if c, l, w, ok := escapedAt(before, at); ok && l == level && at+w == len(before) && isQuerySeparator(c) {
				return true
			}
		}
	}
	return false
}

// valueLen is the length of the query value v begins with, at the given level of encoding: its bytes, escaped
// or not, up to a separator of its level or an outer one (a value nested once ends at %26, and its own & is
// %2526).
func valueLen(v string, level int) int {
	n := 0
	for n < len(v) && isURLValueByte(v[n]) {
		if v[n] == '%' && level > 0 {
			if c, l, _, ok := escapedAt(v, n); ok && l <= level && c != '?' && isQuerySeparator(c) {
				break
			}
		}
		n++
	}
	return n
}

// isURLValueByte: a query value's bytes, escaped or not (a signature's base64 holds + / =, a credential's
// scope /).
func isURLValueByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~%+/=:", c) >= 0
}

// heldBackURL is the length of the end of p that may be a query whose credential the next write completes:
// from its last ?, &, ;, # or \ (or one of them percent-encoded) on, while no byte after it ends a query
// value; at least an escape at its very end that the next write may complete (%2, %25…).
func heldBackURL(p string) int {
	const window = 2048 // a longer run without a break is no URL's query worth waiting for
	partial := partialEscape(p)
	for i := len(p) - 1; i >= 0 && len(p)-i <= window; i-- {
		switch c := p[i]; {
		case c == '?' || c == '&' || c == ';' || c == '#' || c == '\\':
			return len(p) - i
		case c == '%':
			if d, _, _, ok := escapedAt(p, i); ok && isQuerySeparator(d) {
				return len(p) - i
			}
		case !isURLValueByte(c):
			return partial
		}
	}
	return partial
}

// partialEscape is the length of the end of p that is an escape the next write may complete or extend (%,
// %2, %25, %252…), 0 if none.
func partialEscape(p string) int {
	if i := strings.LastIndexByte(p, '%'); i >= 0 && len(p)-i <= 16 && strings.Trim(p[i+1:], "0123456789abcdefABCDEF") == "" {
		return len(p) - i
	}
	return 0
}

// heldBack is the length of the end of p that the next write may make (part of) a secret: the longest end
// that begins a secret, and, after a cut, the ellipsis (or the start of one) with the part of a secret that
// may precede it and what follows it as long as it may be the start of a secret's end (cutParts).
func (r *Redactor) heldBack(p string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	longest := r.beginsSecret(p)
	for k := 1; k < len(Ellipsis); k++ {
		if strings.HasSuffix(p, Ellipsis[:k]) {
			longest = max(longest, k+r.beginsSecret(p[:len(p)-k]))
		}
	}
	if i := strings.LastIndex(p, Ellipsis); i >= 0 && len(p)-i <= len(Ellipsis)+r.longestNeedle() && r.inSomeSecret(p[i+len(Ellipsis):]) {
		longest = max(longest, len(p)-i+r.beginsSecret(p[:i]))
	}
	return longest
}

// beginsSecret is the length of the longest end of p that begins a secret but is not all of it.
func (r *Redactor) beginsSecret(p string) int {
	longest := 0
	for _, n := range r.needles {
		for k := min(len(n)-1, len(p)); k > longest; k-- {
			if strings.HasPrefix(n, p[len(p)-k:]) {
				longest = k
				break
			}
		}
	}
	return longest
}

// inSomeSecret says whether s is a part of a secret (in any form).
func (r *Redactor) inSomeSecret(s string) bool {
	for _, n := range r.needles {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// Writer returns a writer that redacts what it passes on to w, Printable. A secret split across two writes is
// still found: the end of a write that could begin a secret is held back until the next write or Flush.
func (r *Redactor) Writer(w io.Writer) *RedactingWriter { return &RedactingWriter{r: r, w: w} }

// RedactingWriter is Redactor.Writer's writer; it is safe for concurrent use.
type RedactingWriter struct {
	mu      sync.Mutex
	r       *Redactor
	w       io.Writer
	pending string
	// credential: what was written last ends in a URL credential's value, or right after its =, whose rest
	// may come with this write (a value longer than heldBackURL waits for): its bytes are dropped, not written,
	// up to the separator of its level of encoding ([redacted] written once for the value).
	credential openValue
}

// dropCredential drops the rest of an open credential's value from the start of text: what is left, and what
// to write before it. Unless the text is the last, an escape at its end that the next write may complete is
// left, to be held back: it may be the separator that ends the value.
func (rw *RedactingWriter) dropCredential(text string, last bool) (rest, shown string) {
	if !rw.credential.open {
		return text, ""
	}
	n := valueLen(text, rw.credential.level)
	rw.credential.open = n == len(text)
	if rw.credential.open && !last {
		n -= partialEscape(text)
	}
	if n > 0 && !rw.credential.replaced {
		shown, rw.credential.replaced = Redacted, true
	}
	return text[n:], shown
}

func (rw *RedactingWriter) Write(p []byte) (int, error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.r == nil {
		_, err := io.WriteString(rw.w, Printable(string(p)))
		return len(p), err
	}
	// Complete secrets are replaced first; then the end that could begin a secret, or a URL's credential,
	// waits. A URL's credentials are replaced only in what is written: a value replaced at the end of one write
	// would let the rest of it, in the next, through.
	text := rw.r.secretsOnly(rw.pending + string(p))
	text, shown := rw.dropCredential(text, false)
	keep := rw.r.heldBackOrZero(text)
	rw.pending = text[len(text)-keep:]
	out, open := redactURLCredentials(text[:len(text)-keep])
	if out != "" {
		rw.credential = open
	}
	if out = shown + out; out != "" {
		if _, err := io.WriteString(rw.w, Printable(out)); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what was held back.
func (rw *RedactingWriter) Flush() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.pending == "" {
		return nil
	}
	text, shown := rw.dropCredential(rw.pending, true)
	out := shown + rw.r.String(text)
	rw.pending, rw.credential = "", openValue{}
	_, err := io.WriteString(rw.w, Printable(out))
	return err
}

// Unwrap is the writer written to, e.g. to tell whether it is a terminal.
func (rw *RedactingWriter) Unwrap() io.Writer { return rw.w }

func (r *Redactor) heldBackOrZero(p string) int {
	if r == nil {
		return 0
	}
	return max(r.heldBack(p), heldBackURL(p))
}
