package check

import (
	"bytes"
	"encoding/json"
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
