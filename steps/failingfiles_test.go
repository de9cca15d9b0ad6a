package steps

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
)

// failingDownloads are n downloaded files, each answered 200 as NDJSON and each judged at fault on a line of
// its own: the verdict a server that cuts every file short gets, at HAPI's scale of thousands of files.
func failingDownloads(n int) (*check.Manifest, []download) {
	m := &check.Manifest{RequiresAccessToken: true}
	downloads := make([]download, n)
	for i := range downloads {
		url := fmt.Sprintf("http://x/fhir/Binary/f%d", i)
		item := check.ManifestItem{Type: "Patient", URL: url}
		m.Output = append(m.Output, item)
		header := http.Header{"Content-Type": {check.NDJSON}}
		downloads[i] = download{item: item, output: true,
			x:       &check.Exchange{Method: http.MethodGet, URL: url, Status: http.StatusOK, Header: header, RequestHeader: http.Header{}},
			verdict: check.Violationf("", fmt.Sprintf("output file %s line %d", url, 56+i), "one FHIR resource in JSON per line", "invalid JSON: %s", strings.Repeat("x", 600))}
	}
	return m, downloads
}

// Each Then step that judges every downloaded file fails on the first failing file, as before, and when more
// files fail it says how many of the files checked did and names the next four, each with its own fault
// clipped: at 1,000 failing files the text stays a few lines, the rest counted. The first file stays the
// violation (errors.As, its requirement) and the response shown; the summary line is the first file's alone.
func TestAStepFailingOnManyFilesCountsThemAndNamesTheNextFew(t *testing.T) {
	steps := map[string]func(w *World) error{
		"holds its type": func(w *World) error { return w.outputFilesHoldTheirType(context.Background()) },
		"is NDJSON":      func(w *World) error { return w.outputFilesAreNDJSON(context.Background()) },
		"without a token": func(w *World) error {
			w.export.filesAs = ""
			return w.outputFilesAnswerAsTokenRequires(context.Background())
		},
		"as user B": func(w *World) error { return w.outputFilesRefusedTo(context.Background(), "B") },
	}
	for name, step := range steps {
		t.Run(name, func(t *testing.T) {
			w := downloadWorld(t, 1)
			w.export.owner = "A"
			w.export.manifest, w.export.downloads = failingDownloads(1000)
			err := step(w)
			var v *check.Violation
			if !errors.As(err, &v) || !errors.Is(err, check.ErrNonConformant) {
				t.Fatalf("want a violation, got %v", err)
			}
			msg := err.Error()
			first, rest, _ := strings.Cut(msg, "\n")
			if first != v.Error() || !strings.Contains(first, "Binary/f0") || FailureSummary(err) != first {
				t.Errorf("the first line is not the first file's violation %q:\n%s", v.Error(), msg)
			}
			if w.last != w.export.downloads[0].x {
				t.Errorf("the response shown is %s, not the first failing file", w.last.URL)
			}
			if !strings.Contains(rest, "1000 of 1000 output files checked failed") || !strings.Contains(rest, "and 995 more") {
				t.Errorf("want the count and \"and 995 more\", got:\n%s", msg)
			}
			for i := 1; i <= 4; i++ {
				if !strings.Contains(rest, fmt.Sprintf("Binary/f%d", i)) {
					t.Errorf("file %d is not named:\n%s", i, msg)
				}
			}
			if strings.Contains(rest, "Binary/f5") || strings.Count(msg, "\n") > 7 || len(rest) > 2000 {
				t.Errorf("want 4 files named and a few lines, got %d lines, %d bytes after the first:\n%s", strings.Count(msg, "\n")+1, len(rest), msg)
			}
		})
	}
}

// With exactly one failing file, the failure is that file's as before: nothing is added.
func TestAStepFailingOnOneFileAddsNothing(t *testing.T) {
	w := downloadWorld(t, 1)
	m, downloads := failingDownloads(3)
	downloads[0].verdict, downloads[2].verdict = nil, nil
	w.export.manifest, w.export.downloads = m, downloads
	err := w.outputFilesHoldTheirType(context.Background())
	if err == nil || err.Error() != downloads[1].verdict.Error() {
		t.Fatalf("want the one file's violation alone, %v, got %v", downloads[1].verdict, err)
	}
}
