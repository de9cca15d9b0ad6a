package harness

import (
	"net/http"
	"regexp"
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

// User B's own report job is listed in B's status with B's userId: a server that reports every job as the
// first user's (user A's) fails RJS-CROSS-USER, whether the placeholder Binary names B (its securityContext
// then contradicts the job's userId) or names no one (A's userId, learnt from A's own status, is then the
// only comparison). Before this scenario, user B only checked that it did not see A's job, and this passed.
func TestAnotherUsersOwnReportJobCarriesThatUsersUserID(t *testing.T) {
	securityContext := regexp.MustCompile(`"securityContext":\{"identifier":\{[^}]*\}\},?`)
	for name, strip := range map[string]bool{"securityContext kept": false, "securityContext stripped": true} {
		t.Run(name, func(t *testing.T) {
			for _, faults := range [][]string{nil, {"rjs-userid-of-first-user"}} {
				h := refserverHandler(t, refserver.Config{Faults: faults})
				if strip {
					h = rewriting(h, func(_ *http.Request, _ int, body []byte) []byte { return securityContext.ReplaceAll(body, nil) })
				}
				res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@RJS-CROSS-USER"})
				if err != nil {
					t.Fatal(err)
				}
				if faults == nil {
					if !res.Passed {
						t.Fatalf("conformant: failures %+v\n%s", res.Failures, out)
					}
					continue
				}
				want := "as the Binary's securityContext names them"
				if strip {
					want = `expected user B's own userId, not user A's, got "` + refserver.DemoUserIDA + `", user A's`
				}
				if got := failedRequirements(res); len(got) != 1 || got[0] != "RJS-CROSS-USER" || !strings.Contains(out, want) {
					t.Fatalf("every job as user A's: failures %v, want RJS-CROSS-USER saying %q\n%s", got, want, out)
				}
			}
		})
	}
}
