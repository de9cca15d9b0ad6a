package harness

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// User B's own status must be a report job status Bundle: an OperationOutcome, a login page or a Bundle
// that does not decode lists no job of user A's, and once passed RJS-CROSS-USER for that reason alone.
func TestAnotherUsersStatusMustBeABundleNotAnythingThatListsNoJob(t *testing.T) {
	for name, body := range map[string]string{
		"an OperationOutcome": `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"forbidden"}]}`,
		"a login page":        `<html><body>Log in</body></html>`,
		"a Bundle of another resource": `{"resourceType":"Bundle","type":"collection","entry":[` +
			`{"fullUrl":"urn:uuid:1b2c1d3e-4f50-4a61-8b72-9c83d4e5f607","resource":{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			server := refserverHandler(t, refserver.Config{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/$get-report-job-status") && r.Header.Get("Authorization") == "Bearer "+refserver.DemoTokenB {
					w.Header().Set("Content-Type", "application/fhir+json")
					_, _ = w.Write([]byte(body))
					return
				}
				server.ServeHTTP(w, r)
			})
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@RJS-CROSS-USER"})
			if err != nil {
				t.Fatal(err)
			}
			if got := failedRequirements(res); len(got) != 1 || got[0] != "RJS-CROSS-USER" {
				t.Fatalf("failures name %v, want RJS-CROSS-USER\n%s", got, out)
			}
		})
	}
}
