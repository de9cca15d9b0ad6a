package harness

import (
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// Microsoft's FHIR server (microsoft/fhir-server, behind Azure Health Data Services and Azure API for FHIR), as
// its code reads (README, "Independent Bulk Data servers"): a poll of a running export answers 202 with no
// header of its own (ExportController.GetExportStatusById, ExportResult.Accepted: no X-Progress, no
// Retry-After); the manifest says requiresAccessToken false (GetExportRequestHandler) and writes
// transactionTime as Newtonsoft writes a DateTimeOffset (seven fractional digits, the offset +00:00); its
// files are Azure blobs, written by AzureExportDestinationClient with no SAS in their URL, in a container that
// allows no anonymous access unless EnablePublicBlobAccess. A request for such a blob without a credential,
// on a storage account that allows no anonymous access (AllowBlobPublicAccess false, Microsoft's default for
// new accounts), is answered 409 Conflict, error code PublicAccessNotPermitted (in the x-ms-error-code header
// and the XML body), and one with a bearer token issued for the FHIR service, not for storage, 401
// InvalidAuthenticationInfo. msFHIR serves h, a reference server in bulkdata, so; anonymous counts the file
// requests refused as anonymous.
func msFHIR(h http.Handler, anonymous *atomic.Int64) http.Handler {
	transactionTime := regexp.MustCompile(`"transactionTime":"([^"]+)"`)
	return rewriting(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "/Binary/") {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		if r.Header.Get("Authorization") == "" {
			anonymous.Add(1)
			w.Header().Set("x-ms-error-code", "PublicAccessNotPermitted")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>PublicAccessNotPermitted</Code><Message>Public access is not permitted on this storage account.</Message></Error>`))
			return
		}
		w.Header().Set("x-ms-error-code", "InvalidAuthenticationInfo")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Server failed to authenticate the request.</Message><AuthenticationErrorDetail>Audience validation failed.</AuthenticationErrorDetail></Error>`))
	}), func(r *http.Request, status int, body []byte) []byte {
		if !strings.HasSuffix(r.URL.Path, "/$export-poll-status") {
			return body
		}
		if status != http.StatusOK {
			return body
		}
		body = []byte(strings.Replace(string(body), `"requiresAccessToken":true`, `"requiresAccessToken":false`, 1))
		return transactionTime.ReplaceAllFunc(body, func(m []byte) []byte {
			t, err := time.Parse(time.RFC3339Nano, string(transactionTime.FindSubmatch(m)[1]))
			if err != nil {
				return m
			}
			return []byte(`"transactionTime":"` + t.UTC().Format("2006-01-02T15:04:05.0000000-07:00") + `"`)
		})
	})
}

// bareAccepted strips what Microsoft's 202 to a poll does not carry: X-Progress and Retry-After.
func bareAccepted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(stripping{ResponseWriter: w}, r)
	})
}

type stripping struct{ http.ResponseWriter }

func (s stripping) WriteHeader(code int) {
	if code == http.StatusAccepted {
		s.Header().Del("X-Progress")
		s.Header().Del("Retry-After")
	}
	s.ResponseWriter.WriteHeader(code)
}

// BDA2 "Complete Status": requiresAccessToken "MAY be false for file servers that use access-control schemes
// other than OAuth 2.0". Microsoft's FHIR server answers false for its Azure blobs, which a client reads with
// a credential of Azure Storage's own; a storage account that allows no anonymous access refuses a request
// without one with 409 Conflict, error code PublicAccessNotPermitted (Azure Storage "Status and error codes":
// the code in the XML body and, from version 2017-07-29, in x-ms-error-code). That is the store refusing the
// harness's missing credential, as its 403 or its hiding 404 would: the files are not checked, saying why,
// never failed. Before, the 409 was not read as a refusal: EXP-OUTPUT, EXP-OUTPUT-ACCEPT and EXP-OUTPUT-TOKEN
// failed on it ("expected 200"), and so every run against Azure Health Data Services on such an account would
// have. The rest of Microsoft's answers pass: the bare 202, the manifest's .NET instant.
func TestMicrosoftFHIRServersAzureBlobsRefusedToAnonymousAreNotCheckedNotFailed(t *testing.T) {
	var anonymous atomic.Int64
	h := bareAccepted(msFHIR(refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), &anonymous))
	res, out, err := runAgainst(t, h, Config{Profile: "bulkdata", Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
		Tags: "@EXP-POLL-200,@EXP-OUTPUT,@EXP-OUTPUT-ACCEPT,@EXP-OUTPUT-TOKEN"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Passed || len(res.Failures) != 0 {
		t.Fatalf("Microsoft's FHIR server was failed: passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
	}
	if anonymous.Load() == 0 {
		t.Fatalf("no file was refused as anonymous: the test proves nothing\n%s", tailOf(out))
	}
	unchecked := map[string]bool{}
	for _, f := range res.Findings.NotChecked() {
		if strings.Contains(f.Message, "refused without a token (409 Conflict) and with user A's bearer token (401 Unauthorized)") &&
			strings.Contains(f.Message, "access-control schemes other than OAuth 2.0") {
			unchecked[f.Requirement] = true
		}
	}
	for _, id := range []string{"EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT-TOKEN"} {
		if !unchecked[id] {
			t.Errorf("want %s's files not checked, naming the 409, the 401 and the other scheme; got %+v", id, res.Findings.NotChecked())
		}
	}
}
