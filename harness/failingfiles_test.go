package harness

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// manifestOrder learns the output files' URL paths in the order of the completed export's manifest, as the
// harness judges them, so that a test can break the files it means by their place in the manifest.
type manifestOrder struct {
	mu    sync.Mutex
	paths []string
}

func (o *manifestOrder) watch(r *http.Request, status int, body []byte) []byte {
	if status != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/$export-poll-status") {
		return body
	}
	var m struct {
		Output []struct{ URL string } `json:"output"`
	}
	if json.Unmarshal(body, &m) == nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.paths = o.paths[:0]
		for _, it := range m.Output {
			if u, err := url.Parse(it.URL); err == nil {
				o.paths = append(o.paths, u.Path)
			}
		}
	}
	return body
}

// index is the place of path in the manifest, or -1.
func (o *manifestOrder) index(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, p := range o.paths {
		if p == path {
			return i
		}
	}
	return -1
}

// An export of 10 files of which 3 fail EXP-OUTPUT, each in its own way (the 3rd's last line cut short, the
// 6th holding an Observation among Patients, the 9th answered 404), fails naming the first as before, with
// its transcript, then says "3 of 10" and names the two others with their own faults. One failing file
// adds nothing.
func TestAnExportWithSeveralFailingFilesCountsThemAndNamesEach(t *testing.T) {
	for name, c := range map[string]struct {
		broken map[int]string // file index in the manifest → how it is broken
		says   []string       // in the failure's message, in this order
		not    string         // not in it
	}{
		"three failing files": {
			broken: map[int]string{2: "cut", 5: "type", 8: "404"},
			says: []string{"line ", "invalid JSON", "3 of 10 output files checked failed this step",
				"expected a Patient resource, the manifest's type", "download of output file", "404 Not Found"},
		},
		"one failing file": {
			broken: map[int]string{5: "type"},
			says:   []string{"expected a Patient resource, the manifest's type"},
			not:    "output files checked failed",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			order := &manifestOrder{}
			inner := refserverHandler(t, refserver.Config{Synthetic: refserver.Synthetic{Resources: 40, Types: []string{"Patient"}}, FilesPerType: 10})
			h := servingFiles(rewriting(inner, order.watch), func(w http.ResponseWriter, r *http.Request, file *httptest.ResponseRecorder) {
				i := order.index(r.URL.Path)
				if i < 0 {
					t.Errorf("file %s is not in the manifest seen", r.URL.Path)
				}
				body := file.Body.Bytes()
				switch c.broken[i] {
				case "cut":
					body = body[:len(body)-10]
				case "type":
					body = bytes.Replace(body, []byte(`"resourceType":"Patient"`), []byte(`"resourceType":"Observation"`), 1)
				case "404":
					writeRewritten(w, http.Header{"Content-Type": {"application/fhir+json"}}, http.StatusNotFound,
						[]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`))
					return
				}
				writeRewritten(w, file.Header(), file.Code, body)
			})
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed || len(res.Failures) != 1 || res.Failures[0].Requirement != "EXP-OUTPUT" {
				t.Fatalf("want EXP-OUTPUT failed: passed %v, failures %+v\n%s", res.Passed, res.Failures, out)
			}
			order.mu.Lock()
			paths := slices.Clone(order.paths)
			order.mu.Unlock()
			if len(paths) != 10 {
				t.Fatalf("want a manifest of 10 files, got %d", len(paths))
			}
			f := res.Failures[0]
			first := slicesMin(c.broken)
			if !strings.Contains(f.Summary, paths[first]) || strings.Contains(f.Summary, "output files checked failed") {
				t.Errorf("the summary is not the first failing file's (%s) alone: %s", paths[first], f.Summary)
			}
			// the transcript shows the first failing file, as before: its request and its reproducer
			transcript := f.Message[strings.Index(f.Message, "HTTP exchanges behind this verdict"):]
			if !regexp.MustCompile(`(?m)^> GET \S+`+regexp.QuoteMeta(paths[first])+`$`).MatchString(transcript) || strings.Count(transcript, "> GET ") != 1 {
				t.Errorf("the transcript does not show the first failing file %s:\n%s", paths[first], f.Message)
			}
			at := 0
			for _, s := range c.says {
				i := strings.Index(f.Message[at:], s)
				if i < 0 {
					t.Fatalf("want %q (after byte %d) in the failure:\n%s", s, at, f.Message)
				}
				at += i + len(s)
			}
			for i := range c.broken {
				if i != first && !strings.Contains(f.Message[:strings.Index(f.Message, "\n\nrequirement ")], paths[i]) {
					t.Errorf("failing file %d (%s) is not named:\n%s", i, paths[i], f.Message)
				}
			}
			if c.not != "" && strings.Contains(f.Message, c.not) {
				t.Errorf("want nothing added for one failing file, got:\n%s", f.Message)
			}
		})
	}
}

// slicesMin is the lowest key of m.
func slicesMin(m map[int]string) int {
	low := -1
	for k := range m {
		if low < 0 || k < low {
			low = k
		}
	}
	return low
}
