package check

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// A server's escape sequences and carriage returns reach neither a transcript nor the console: shown, inert.
func TestServerControlCharactersReachNoTerminal(t *testing.T) {
	evil := "{\"diagnostics\":\"\x1b[2K\rPASS all scenarios\x07\u009b31m\x7f\"}\n\tnext line"
	x := &Exchange{Method: "GET", URL: "http://f/x", Status: 404, Header: http.Header{"X-Progress": {"50%\x1b]0;title\x07"}}, Body: []byte(evil)}
	var console bytes.Buffer
	w := NewRedactor("some-secret-token").Writer(&console)
	if _, err := w.Write([]byte("output file http://f/\x1b[1A\rBinary/1: 3 Patient\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"transcript": x.Transcript(), "console": console.String()} {
		if i := strings.IndexFunc(got, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r >= 0x7f && r <= 0x9f }); i >= 0 {
			t.Errorf("%s holds control character %q:\n%s", name, got[i], got)
		}
		if !strings.Contains(got, "␛[") || !strings.Contains(got, "␍") {
			t.Errorf("%s does not show the escape and the carriage return:\n%s", name, got)
		}
	}
	if tr := x.Transcript(); !strings.Contains(tr, "\tnext line") || !strings.Contains(tr, "␡") || !strings.Contains(tr, "␇") {
		t.Errorf("tabs kept, DEL and BEL shown, in:\n%s", tr)
	}
}
