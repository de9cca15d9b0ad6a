package harness

import (
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// withoutRetryAfter strips Retry-After from every 202 of h, as Microsoft's FHIR server answers a poll of a
// running export (ExportResult.Accepted); stripped counts the 202s it stripped.
func withoutRetryAfter(h http.Handler, stripped *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(retryAfterStripping{ResponseWriter: w, stripped: stripped}, r)
	})
}

type retryAfterStripping struct {
	http.ResponseWriter
	stripped *atomic.Int64
}

func (s retryAfterStripping) WriteHeader(code int) {
	if code == http.StatusAccepted && s.Header().Get("Retry-After") != "" {
		s.Header().Del("Retry-After")
		s.stripped.Add(1)
	}
	s.ResponseWriter.WriteHeader(code)
}

// BDA2 "Bulk Data Status Request": "A server SHOULD supply a Retry-After header with a with a delay time in
// seconds [...] or a http-date". The harness judged the value's form when one came (EXP-RETRY-AFTER) and
// said nothing of an in-progress answer without one: a server that never tells its clients when to poll
// again passed unwarned, even under STRICT=1. EXP-RETRY-AFTER-SENT warns of it, and STRICT=1 fails its
// scenario; the reference server, which sends one, is warned of nothing.
func TestAnInProgressAnswerWithoutRetryAfterIsWarnedOf(t *testing.T) {
	for _, profile := range []string{"fut", "bulkdata"} {
		for _, strict := range []bool{false, true} {
			t.Run(profile+map[bool]string{true: " STRICT"}[strict], func(t *testing.T) {
				t.Parallel()
				var stripped atomic.Int64
				h := withoutRetryAfter(refserverHandler(t, refserver.Config{Profile: refserver.Profile(profile)}), &stripped)
				res, out, err := runAgainst(t, h, Config{Profile: profile, Token: refserver.DemoTokenA, Tags: "@EXP-RETRY-AFTER-SENT", Strict: strict})
				if err != nil {
					t.Fatalf("run: %v\n%s", err, out)
				}
				if stripped.Load() == 0 {
					t.Fatalf("no in-progress answer was stripped of its Retry-After: the test proves nothing\n%s", tailOf(out))
				}
				warned := slices.ContainsFunc(res.Findings.Warnings(), func(f steps.Finding) bool {
					return f.Requirement == "EXP-RETRY-AFTER-SENT" && strings.Contains(f.Message, "header Retry-After") && strings.Contains(f.Message, "got none")
				})
				if strict {
					if res.Passed || !slices.Equal(failedRequirements(res), []string{"EXP-RETRY-AFTER-SENT"}) {
						t.Fatalf("STRICT: want EXP-RETRY-AFTER-SENT failed alone, got passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
					}
					return
				}
				if !res.Passed || len(res.Failures) != 0 {
					t.Fatalf("a SHOULD must not fail the run: passed=%v failures=%v\n%s", res.Passed, failedRequirements(res), tailOf(out))
				}
				if !warned {
					t.Fatalf("want a warning of EXP-RETRY-AFTER-SENT naming the missing Retry-After, got %+v\n%s", res.Findings.Warnings(), tailOf(out))
				}
			})
		}
	}
	t.Run("the reference server", func(t *testing.T) {
		t.Parallel()
		res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData}), Config{Profile: "bulkdata", Token: refserver.DemoTokenA, Tags: "@EXP-RETRY-AFTER-SENT", Strict: true})
		if err != nil || !res.Passed || len(res.Findings.Warnings()) != 0 {
			t.Fatalf("a server that sends Retry-After: passed=%v failures=%v warnings=%+v err=%v\n%s", res.Passed, failedRequirements(res), res.Findings.Warnings(), err, tailOf(out))
		}
	})
}

// FUT-OD-POLL: "A complete URL including the '_jobId' is returned in the 'Content-Location' response header
// when initiating the export"; HAPI writes [base]/$export-poll-status?_jobId=<id>. The harness held a kick-off's
// Content-Location only to being absolute, so a FUT deployment handing out another form (here ?job=<id>, served
// so) passed every scenario, while its own unknown- and missing-job requests address $export-poll-status?_jobId.
// EXP-POLL-LOCATION fails it in fut and hapi-8.0; in bulkdata, whose IG gives the polling location no form, the
// requirement does not apply, and SMART's [base]/bulkstatus/<id> passes.
func TestAPollingLocationWithoutFUTsJobIDFailsInFUTsProfiles(t *testing.T) {
	for _, tc := range []struct {
		profile string
		cfg     refserver.Config
		fails   bool
	}{
		{"fut", refserver.Config{Profile: refserver.ProfileFUT, Faults: []string{"poll-location-job-param"}}, true},
		{"hapi-8.0", refserver.Config{Profile: refserver.ProfileHAPI80, Faults: []string{"poll-location-job-param"}}, true},
		{"fut", refserver.Config{Profile: refserver.ProfileFUT}, false},
		{"hapi-8.0", refserver.Config{Profile: refserver.ProfileHAPI80}, false},
		{"bulkdata", refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"}, false},
	} {
		t.Run(tc.profile+map[bool]string{true: " ?job=<id>"}[tc.fails]+tc.cfg.PollPath, func(t *testing.T) {
			t.Parallel()
			res, out, err := runAgainst(t, refserverHandler(t, tc.cfg), Config{Profile: tc.profile, Token: refserver.DemoTokenA, Tags: "@EXP-POLL-LOCATION,@EXP-POLL-200"})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			failed := failedRequirements(res)
			if tc.fails {
				if res.Passed || !slices.Equal(failed, []string{"EXP-POLL-LOCATION"}) {
					t.Fatalf("want EXP-POLL-LOCATION failed alone (the export itself is served), got passed=%v failures=%v\n%s", res.Passed, failed, tailOf(out))
				}
				if !strings.Contains(out, "without a _jobId") || !strings.Contains(out, "?job=") {
					t.Fatalf("the failure must show the location and say what it lacks:\n%s", tailOf(out))
				}
				return
			}
			if !res.Passed || len(failed) != 0 {
				t.Fatalf("want a pass, got passed=%v failures=%v\n%s", res.Passed, failed, tailOf(out))
			}
			if tc.profile == "bulkdata" && !strings.Contains(out, "does not apply in profile bulkdata") {
				t.Fatalf("in bulkdata EXP-POLL-LOCATION must read not applicable:\n%s", tailOf(out))
			}
		})
	}
}
