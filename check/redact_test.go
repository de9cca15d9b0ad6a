package check

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"strings"
	"testing"
)

func TestRedactorReplacesEveryFormOfASecret(t *testing.T) {
	const secret = "tok<en>+&\"x/y=="
	r := NewRedactor(secret, "", "abc") // "" and too-short secrets are ignored
	j, _ := json.Marshal("echo " + secret)
	var h bytes.Buffer
	_ = template.Must(template.New("").Parse("{{.}}")).Execute(&h, "echo "+secret)
	for name, text := range map[string]string{"raw": "echo " + secret, "json": string(j), "html": h.String()} {
		got := r.String(text)
		if strings.Contains(got, "tok") || !strings.Contains(got, Redacted) {
			t.Errorf("%s form: %q became %q", name, text, got)
		}
	}
	if got := r.String("abc"); got != "abc" {
		t.Errorf("a 3-character secret redacts ordinary text: %q", got)
	}
}

func TestRedactingWriterFindsASecretSplitAcrossWrites(t *testing.T) {
	const secret = "abab-secret-abab"
	r := NewRedactor()
	r.Add(secret) // added later, as an issued access token is
	var out bytes.Buffer
	w := r.Writer(&out)
	text := "x " + secret + " y abab " + secret + secret
	for i := 0; i < len(text); i += 3 { // every split point
		_, _ = w.Write([]byte(text[i:min(i+3, len(text))]))
	}
	_ = w.Flush()
	if strings.Contains(out.String(), "secret") || strings.Count(out.String(), Redacted) != 3 || !strings.HasPrefix(out.String(), "x ") || !strings.Contains(out.String(), " y abab ") {
		t.Fatalf("got %q", out.String())
	}
}

func TestNilRedactorPassesTextThrough(t *testing.T) {
	var r *Redactor
	var out bytes.Buffer
	_, _ = r.Writer(&out).Write([]byte("plain"))
	if r.String("plain") != "plain" || out.String() != "plain" {
		t.Fatal("a nil Redactor changed the text")
	}
}

// A pre-signed URL's signature is a credential wherever the URL is written: raw, in JSON (Go escapes & as
// \u0026), in HTML (&amp;) and in a curl reproducer; the URL and its other parameters stay readable.
func TestRedactorHidesTheCredentialsOfPresignedURLs(t *testing.T) {
	const (
		s3    = "https://b.s3.amazonaws.com/Patient.ndjson?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261203%2Feu-north-1%2Fs3%2Faws4_request&X-Amz-Signature=5f1c0d9e8b7a6f5e4d3c2b1a&X-Amz-Expires=3600"
		azure = "https://a.blob.core.windows.net/c/Patient.ndjson?sv=2022-11-02&se=2026-12-04T00%3A00%3A00Z&sr=b&sp=r&sig=Zm9vYmFy%2BYmF6cXV4%3D"
	)
	j, _ := json.Marshal(map[string]string{"url": s3 + " " + azure})
	var h bytes.Buffer
	_ = template.Must(template.New("").Parse("{{.}}")).Execute(&h, s3+" "+azure)
	var r *Redactor
	if got := r.String(s3); got != s3 {
		t.Errorf("a nil Redactor changed the text: %q", got)
	}
	r = NewRedactor()
	for name, text := range map[string]string{"raw": s3 + "\n" + azure, "json": string(j), "html": h.String(), "curl": "curl -i '" + s3 + "' '" + azure + "'"} {
		got := r.String(text)
		for _, secret := range []string{"5f1c0d9e", "AKIAEXAMPLE", "Zm9vYmFy"} {
			if strings.Contains(got, secret) {
				t.Errorf("%s form: %q is still in %q", name, secret, got)
			}
		}
		for _, kept := range []string{"b.s3.amazonaws.com/Patient.ndjson", "X-Amz-Algorithm", "AWS4-HMAC-SHA256", "X-Amz-Signature=" + Redacted, "X-Amz-Expires", "3600", "sig=" + Redacted, "sp=r"} {
			if !strings.Contains(got, kept) {
				t.Errorf("%s form: %q is gone from %q", name, kept, got)
			}
		}
		if again := r.String(got); again != got {
			t.Errorf("%s form: redacting twice changed %q to %q", name, got, again)
		}
	}
	for _, text := range []string{"GET /fhir/$export-poll-status?_jobId=abc", "design=signature-free", "&signature=", "a&sig"} {
		if got := r.String(text); got != text {
			t.Errorf("%q became %q", text, got)
		}
	}
}

func TestRedactingWriterFindsAURLCredentialSplitAcrossWrites(t *testing.T) {
	const text = "GET https://b.s3.amazonaws.com/P.ndjson?X-Amz-Signature=5f1c0d9e8b7a6f5e&X-Amz-Expires=3600 failed\n"
	for split := 1; split < len(text); split++ {
		out := writtenInTwo(NewRedactor(), text, split)
		// The whole output, not a piece of the signature: a split inside the value must not let its rest through.
		if want := NewRedactor().String(text); out.String() != want {
			t.Fatalf("split at %d: got %q, expected %q", split, out.String(), want)
		}
	}
}

// A credential's value longer than the writer holds back (a session token) is dropped in the writes that
// carry its rest, and what follows it is written.
func TestRedactingWriterDropsTheRestOfALongURLCredential(t *testing.T) {
	token := strings.Repeat("Zm9vYmFy", 600) // 4800 bytes, past heldBackURL's window
	text := "GET https://b.s3.amazonaws.com/P.ndjson?X-Amz-Security-Token=" + token + "&X-Amz-Expires=3600 failed\n"
	for _, size := range []int{1000, 4096, 1 << 16} {
		out := writtenInPieces(text, size)
		if want := "GET https://b.s3.amazonaws.com/P.ndjson?X-Amz-Security-Token=" + Redacted + "&X-Amz-Expires=3600 failed\n"; out.String() != want {
			t.Errorf("writes of %d bytes: got %q, expected %q", size, truncateForTest(out.String()), want)
		}
	}
}

func truncateForTest(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// An access token in a URL's fragment (an implicit grant's redirect) is a bearer token too.
func TestRedactorHidesAnAccessTokenInAFragment(t *testing.T) {
	got := NewRedactor().String("Location: https://app.example/cb#access_token=eyJhbGciOi.abc.def&token_type=bearer")
	if strings.Contains(got, "eyJhbGciOi") || !strings.Contains(got, "#access_token="+Redacted+"&token_type=bearer") {
		t.Fatalf("got %q", got)
	}
}

// A URL nested in another's query (a redirect or callback parameter) carries its credentials percent-encoded:
// %3FX-Amz-Signature%3D…%26, once or more (%253F…). Their values are redacted at every level of encoding; the
// value ends at the encoded & of its own level (or an outer one), so the parameters after it stay readable.
func TestRedactorHidesTheCredentialsOfAnEncodedNestedURL(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{
			"https://fhir.example/files/1?redirect=https%3A%2F%2Fs3.example%2Fb%2FP.ndjson%3FX-Amz-Algorithm%3DAWS4-HMAC-SHA256%26X-Amz-Signature%3D5f1c0d9e8b7a%26X-Amz-Expires%3D3600&_format=ndjson",
			"https://fhir.example/files/1?redirect=https%3A%2F%2Fs3.example%2Fb%2FP.ndjson%3FX-Amz-Algorithm%3DAWS4-HMAC-SHA256%26X-Amz-Signature%3D" + Redacted + "%26X-Amz-Expires%3D3600&_format=ndjson",
		},
		{ // lower-case hex, a value with escapes of its own (%252B: an encoded +), the key first after %3f
			"next=https%3a%2f%2fa.blob.example%2fc%2fP.ndjson%3fsig%3dZm9vYmFy%252BYmF6%26sp%3dr",
			"next=https%3a%2f%2fa.blob.example%2fc%2fP.ndjson%3fsig%3d" + Redacted + "%26sp%3dr",
		},
		{ // encoded twice: the value ends at its own level's %2526, or at an outer level's %26
			"u=https%3A%2F%2Fgw%2F%3Fto%3Dhttps%253A%252F%252Fs3%252Fx%253FX-Amz-Credential%253DAKIAEXAMPLE%25252F2026%2526X-Amz-Signature%253Dabcdef0123%26y%3D1",
			"u=https%3A%2F%2Fgw%2F%3Fto%3Dhttps%253A%252F%252Fs3%252Fx%253FX-Amz-Credential%253D" + Redacted + "%2526X-Amz-Signature%253D" + Redacted + "%26y%3D1",
		},
		{ // a bearer token in an encoded fragment, and in JSON
			`{"url":"https://fhir.example/cb?state=x\u0026return=https%3A%2F%2Fapp%2F%23access_token%3DeyJhbGciOi.abc.def%26token_type%3Dbearer"}`,
			`{"url":"https://fhir.example/cb?state=x\u0026return=https%3A%2F%2Fapp%2F%23access_token%3D` + Redacted + `%26token_type%3Dbearer"}`,
		},
	} {
		r := NewRedactor()
		got := r.String(c.text)
		if got != c.want {
			t.Errorf("%q\n became %q,\n expected %q", c.text, got, c.want)
		}
		if again := r.String(got); again != got {
			t.Errorf("redacting twice changed %q to %q", got, again)
		}
	}
	for _, text := range []string{"r=%3Fdesign%3Dsignature-free", "r=%3Fsignature%3D%26x%3D1", "q=%3Fsig", "r=x%3Fa%3Dsig%3Dabc", "_jobId%3Dabc%26token_type%3Dbearer"} {
		if got := NewRedactor().String(text); got != text {
			t.Errorf("%q became %q", text, got)
		}
	}
}

func TestRedactingWriterFindsAnEncodedNestedCredentialSplitAcrossWrites(t *testing.T) {
	const text = "GET https://fhir.example/f?redirect=https%3A%2F%2Fs3%2Fx%3FX-Amz-Signature%3D5f1c0d9e8b7a6f5e%26X-Amz-Expires%3D3600%26to%3Dhttps%253A%252F%253Fsig%253DZm9vYmFy%2526sp%253Dr&_format=ndjson failed\n"
	want := NewRedactor().String(text)
	if strings.Contains(want, "5f1c0d9e") || strings.Contains(want, "Zm9vYmFy") {
		t.Fatalf("String: %q", want)
	}
	for split := 1; split < len(text); split++ {
		out := writtenInTwo(NewRedactor(), text, split)
		if out.String() != want {
			t.Fatalf("split at %d: got %q, expected %q", split, out.String(), want)
		}
	}
}

// An encoded credential's value longer than the writer holds back is dropped in the writes that carry its
// rest, up to the encoded & that ends it; the parameters after it are written.
func TestRedactingWriterDropsTheRestOfALongEncodedCredential(t *testing.T) {
	token := strings.Repeat("Zm9vYmFy", 600) // 4800 bytes, past heldBackURL's window
	prefix := "GET https://fhir.example/f?redirect=" + strings.Repeat("%2Fpath", 400) + "%3FX-Amz-Security-Token%3D"
	text := prefix + token + "%26X-Amz-Expires%3D3600&_format=ndjson failed\n"
	want := prefix + Redacted + "%26X-Amz-Expires%3D3600&_format=ndjson failed\n"
	for _, size := range []int{999, 1000, 4096, 1 << 16} {
		out := writtenInPieces(text, size)
		if out.String() != want {
			t.Errorf("writes of %d bytes: got %q, expected %q", size, truncateForTest(out.String()[len(prefix)-40:]), want[len(prefix)-40:])
		}
	}
}

// A text cut short (…) inside a secret keeps a part of it that is no longer the secret: the end before … that
// begins a secret, and the start after … that ends one (a clip that keeps a URL's end), are replaced too, from
// minSecretLen bytes on; ordinary text around an ellipsis stays.
func TestRedactorHidesTheRestOfASecretCutShort(t *testing.T) {
	const secret = "cut-secret-0123456789abcdefghijklmnop"
	r := NewRedactor(secret)
	for _, c := range []struct{ text, want string }{
		{"X-Echo: hhhh Bearer cut-secret-01234… [cut: 21 bytes more]", "X-Echo: hhhh Bearer " + Redacted + "… [cut: 21 bytes more]"},
		{"poll …89abcdefghijklmnop/status", "poll …" + Redacted + "/status"},
		{"you sent cut-secret-0123456789abcdefghijklmnop and cut-s…", "you sent " + Redacted + " and " + Redacted + "…"},
		{"a cut… short … text", "a cut… short … text"}, // "cut" is shorter than minSecretLen
		{"you sent cut…", "you sent cut…"},             // idem
		{"mnop… …cut-", "mnop… …cut-"},                 // the secret does not begin with mnop, nor end with cut-
		{"…mnop", "…" + Redacted},
	} {
		if got := r.String(c.text); got != c.want {
			t.Errorf("%q\n became %q,\n expected %q", c.text, got, c.want)
		}
	}
	// The writer, whatever the split.
	text := "X-Echo: hhhh Bearer cut-secret-01234… [cut: 21 bytes more]\n"
	for split := 1; split < len(text); split++ {
		out := writtenInTwo(r, text, split)
		if want := r.String(text); out.String() != want {
			t.Fatalf("split at %d: got %q, expected %q", split, out.String(), want)
		}
	}
}

// A secret given with white space around it (a newline from a file) is found without it too: what receives
// it may trim it, and echo it so.
func TestRedactorFindsASecretWithoutTheWhiteSpaceAroundIt(t *testing.T) {
	r := NewRedactor("padded-secret\r\n", " other-secret\t")
	if got := r.String("echo padded-secret, other-secret"); got != "echo "+Redacted+", "+Redacted {
		t.Fatalf("got %q", got)
	}
}

// A secret quoted by Go (%q: x/oauth2 quotes a token endpoint's error_description that way) or written in JSON
// without HTML escaping is found in that form too, whatever characters it holds.
func TestRedactorFindsASecretQuotedByGo(t *testing.T) {
	const secret = `se"cr<e>t&\x`
	r := NewRedactor(secret)
	var unescaped bytes.Buffer
	enc := json.NewEncoder(&unescaped)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(secret)
	for _, text := range []string{fmt.Sprintf("oauth2: %q %q", "invalid_client", "bad secret "+secret), unescaped.String()} {
		if got := r.String(text); strings.Contains(got, "cr<e") || strings.Contains(got, `cr\u003ce`) {
			t.Errorf("%q became %q", text, got)
		}
	}
}

// writtenInPieces is what a redacting writer makes of text written size bytes at a time, then flushed.
func writtenInPieces(text string, size int) *bytes.Buffer {
	var out bytes.Buffer
	w := NewRedactor("an-unrelated-secret").Writer(&out)
	for rest := text; rest != ""; {
		n := min(size, len(rest))
		_, _ = w.Write([]byte(rest[:n]))
		rest = rest[n:]
	}
	_ = w.Flush()
	return &out
}

// writtenInTwo is what r's writer makes of text written in two pieces, split at split, then flushed.
func writtenInTwo(r *Redactor, text string, split int) *bytes.Buffer {
	var out bytes.Buffer
	w := r.Writer(&out)
	_, _ = w.Write([]byte(text[:split]))
	_, _ = w.Write([]byte(text[split:]))
	_ = w.Flush()
	return &out
}

// A server may echo a token base64-encoded: an "Authorization: Basic" header of its own, a Binary's data. The
// bytes before the token decide its base64, so every offset is tried, in both alphabets, padded or not.
func TestRedactorFindsASecretBase64Encoded(t *testing.T) {
	const secret = "eyJhbGciOi.s3cr3t-t0ken+/value?42"
	r := NewRedactor(secret)
	middle := []byte(secret[3 : len(secret)-3]) // what every offset's base64 holds of the secret whole
	for prefix := range 6 {
		plain := strings.Repeat("p", prefix) + "Bearer " + secret + " tail"
		for name, enc := range map[string]*base64.Encoding{"std": base64.StdEncoding, "url": base64.URLEncoding, "raw std": base64.RawStdEncoding, "raw url": base64.RawURLEncoding} {
			text := `{"resourceType":"Binary","data":"` + enc.EncodeToString([]byte(plain)) + `"}`
			got := r.String(text)
			if !strings.Contains(got, Redacted) {
				t.Errorf("%s, %d bytes before: %q kept the secret", name, prefix, got)
				continue
			}
			// what is left on either side of the redaction decodes to no 6 bytes of the secret
			for _, part := range strings.Split(strings.TrimSuffix(strings.TrimPrefix(got, `{"resourceType":"Binary","data":"`), `"}`), Redacted) {
				for i := 0; i+8 <= len(part); i++ {
					if b, err := enc.Strict().DecodeString(part[i : i+8]); err == nil && bytes.Contains(middle, b[:6]) {
						t.Errorf("%s, %d bytes before: %q still holds %q of the secret", name, prefix, got, b)
					}
				}
			}
		}
	}
	// a short secret's base64 would match ordinary base64 by chance: it is not looked for
	short := NewRedactor("abcd1")
	data := base64.StdEncoding.EncodeToString([]byte("xxabcd1yy"))
	if got := short.String(data); got != data {
		t.Errorf("a 5-byte secret's base64 redacted in %q: %q", data, got)
	}
}
