package harness

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/refserver"
)

// hapiExternalizedFiles serves h, its export files of resource type kind as HAPI FHIR serves a Binary whose
// data its externalized binary storage kept (a file above autoInflateBinariesMaximumBytes, 10 MB by default;
// Smile CDR recommends that storage for Bulk Export): read as a FHIR resource, the Binary without data and,
// on its data element, the extension externalized-binary-id (BinaryAccessProvider.replaceDataWithExtension);
// read as its content (HAPI streams a Binary's content unless a FHIR format is asked for,
// RestfulServerUtils.streamResponseAsResource and the servlet response's sendAttachmentResponse), 200 with the
// Binary's contentType and no body, the content being null. raw counts the empty answers, binary the Binaries.
func hapiExternalizedFiles(h http.Handler, kind string, raw, binary *atomic.Int64) http.Handler {
	return emptyFilesOfType(h, kind, true, raw, binary)
}

// emptyFilesOfType serves h, its export files of resource type kind empty when asked for as the file itself;
// asked for as the Binary, with HAPI's externalized-binary-id in place of the data when externalize is set,
// else the Binary as h serves it, data and all.
func emptyFilesOfType(h http.Handler, kind string, externalize bool, raw, binary *atomic.Int64) http.Handler {
	return servingFiles(h, func(w http.ResponseWriter, r *http.Request, asked *httptest.ResponseRecorder) {
		res := r.Clone(r.Context())
		res.Header.Set("Accept", "application/fhir+json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, res)
		var b map[string]any
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &b) != nil || !binaryOfType(b, kind) {
			writeRewritten(w, asked.Header(), asked.Code, asked.Body.Bytes())
			return
		}
		if asked.Header().Get("Content-Type") == check.NDJSON {
			raw.Add(1)
			w.Header().Set("Content-Type", check.NDJSON)
			w.Header().Set("Content-Disposition", "Attachment;")
			w.WriteHeader(http.StatusOK)
			return
		}
		binary.Add(1)
		if !externalize {
			writeRewritten(w, rec.Header(), rec.Code, rec.Body.Bytes())
			return
		}
		delete(b, "data")
		b["_data"] = map[string]any{"extension": []any{map[string]any{"url": check.ExtExternalizedBinaryID, "valueString": "blob-" + r.PathValue("id")}}}
		body, _ := json.Marshal(b)
		w.Header().Set("Content-Type", "application/fhir+json;charset=UTF-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// binaryOfType tells an export Binary of resource type kind, by HAPI's meta extension
// bulk-export-binary-resource-type (FUT's GET_Binary_export.md).
func binaryOfType(b map[string]any, kind string) bool {
	meta, _ := b["meta"].(map[string]any)
	exts, _ := meta["extension"].([]any)
	for _, e := range exts {
		if m, _ := e.(map[string]any); m["url"] == "https://hapifhir.org/NamingSystem/bulk-export-binary-resource-type" && m["valueString"] == kind {
			return true
		}
	}
	return false
}

// A HAPI FHIR server with externalized binary storage (Smile CDR's recommended set-up for Bulk Export) serves
// an export file above its auto-inflate limit, 10 MB by default, as nothing: to the harness's request for the
// file itself 200 with an empty body, and as a Binary with no data but HAPI's externalized-binary-id extension.
// The harness read both as an empty file and passed EXP-OUTPUT while the Patient files, the large ones here,
// held nothing a client could read (the other types' files hold resources, so the scenario was not skipped
// either). In fut and hapi-8.0, whose files are Binaries read by a plain GET (FUT's GET_Binary_export.md, with
// Accept: application/fhir+json), an empty file is read once more as its Binary, which tells an empty file from
// one the server did not send: the run fails EXP-OUTPUT, naming the extension. bulkdata defines no Binary
// read: there no Binary request is sent, and the empty file is judged as what it is (the bulkdata emulation's
// manifest counts its resources, so it fails by its count; the IG forbids no empty file as such).
func TestAFileHAPIKeptInItsBinaryStoreFailsInFutAndHAPI80(t *testing.T) {
	for _, profile := range []string{"fut", "hapi-8.0", "bulkdata"} {
		t.Run(profile, func(t *testing.T) {
			t.Parallel()
			var raw, binary atomic.Int64
			srvProfile := refserver.ProfileFUT
			if profile == "bulkdata" {
				srvProfile = refserver.ProfileBulkData
			}
			h := hapiExternalizedFiles(refserverHandler(t, refserver.Config{Profile: srvProfile}), "Patient", &raw, &binary)
			res, out, err := runAgainst(t, h, Config{Profile: profile, Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if raw.Load() == 0 {
				t.Fatalf("no Patient file answered empty: the test proves nothing\n%s", tailOf(out))
			}
			if profile == "bulkdata" {
				if binary.Load() != 0 {
					t.Errorf("bulkdata sent %d requests for a file's Binary, which the IG does not define", binary.Load())
				}
				// the bulkdata emulation's manifest counts each file's resources: its empty Patient files fail
				// by their count, as the IG's count says (HAPI's manifests count nothing)
				for _, f := range res.Failures {
					if f.Requirement == "EXP-OUTPUT" && !strings.Contains(f.Message, "as the manifest's count says") {
						t.Errorf("bulkdata failed the empty file otherwise than by its count: %s", f.Summary)
					}
				}
				return
			}
			if binary.Load() == 0 {
				t.Errorf("no empty file was read again as its Binary\n%s", tailOf(out))
			}
			failed := false
			for _, f := range res.Failures {
				if f.Requirement == "EXP-OUTPUT" && strings.Contains(f.Message, "externalized-binary-id") {
					failed = true
					t.Logf("%s", f.Summary)
				}
			}
			if res.Passed || !failed {
				t.Fatalf("want EXP-OUTPUT failed, naming HAPI's externalized-binary-id; passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
			}
		})
	}
}

// A file served empty as itself while its Binary holds the resources is not the file either: in fut, whose
// files are Binaries, the empty answer fails EXP-OUTPUT, naming the resources its Binary holds.
func TestAFileServedEmptyWhileItsBinaryHoldsResourcesFailsInFut(t *testing.T) {
	var raw, binary atomic.Int64
	h := emptyFilesOfType(refserverHandler(t, refserver.Config{Profile: refserver.ProfileFUT}), "Patient", false, &raw, &binary)
	res, out, err := runAgainst(t, h, Config{Profile: "fut", Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
	if err != nil {
		t.Fatal(err)
	}
	if raw.Load() == 0 || binary.Load() == 0 {
		t.Fatalf("no empty Patient file read again as its Binary (%d empty, %d Binaries): the test proves nothing\n%s", raw.Load(), binary.Load(), tailOf(out))
	}
	for _, f := range res.Failures {
		if f.Requirement == "EXP-OUTPUT" && strings.Contains(f.Message, "an empty application/fhir+ndjson body") {
			return
		}
	}
	t.Fatalf("want EXP-OUTPUT failed for the empty file whose Binary holds resources; passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
}
