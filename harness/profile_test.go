package harness

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// The profile matrix: the suite passes against each emulation of the reference server in its own profile,
// and fails against the others on exactly the requirements where the profiles differ (features/PROFILES.md).
// A bulkdata server sends no X-Progress, which fails EXP-POLL-202 wherever the suite polls, so its
// delete-finished difference is not reached under fut or hapi-8.0: the scenarios stop at the first deviation.
// FUT's 404 + OperationOutcome to a DELETE of a finished export is BDA2's error status: bulkdata accepts it.
// HAPI 8.0's own answers, emulated, are reported in its profile: the DELETE answers without a Content-Type
// as a known deviation, the 500 to a poll without _jobId as a MAY warning.
func TestProfileMatrix(t *testing.T) {
	want := map[[2]string][]string{ // {emulation, profile} → the requirements the failures name
		{"fut", "fut"}:           nil,
		{"fut", "bulkdata"}:      nil,
		{"fut", "hapi-8.0"}:      nil,
		{"bulkdata", "fut"}:      {"EXP-POLL-202"},
		{"bulkdata", "bulkdata"}: nil,
		{"bulkdata", "hapi-8.0"}: {"EXP-POLL-202"},
		{"hapi-8.0", "fut"}:      {"EXP-CANCELLED-404", "EXP-DELETE-DONE"},
		{"hapi-8.0", "bulkdata"}: {"EXP-CANCELLED-404", "EXP-DELETE-DONE"},
		{"hapi-8.0", "hapi-8.0"}: nil,
	}
	for _, emulation := range refserver.Profiles {
		for _, profile := range refserver.Profiles {
			cell := [2]string{string(emulation), string(profile)}
			expected, ok := want[cell]
			if !ok {
				t.Fatalf("no expectation for emulation %s in profile %s", cell[0], cell[1])
			}
			t.Run(cell[0]+"-server-in-"+cell[1]+"-profile", func(t *testing.T) {
				t.Parallel()
				var out bytes.Buffer
				res, err := Run(context.Background(), Config{Profile: cell[1], RefserverProfile: cell[0], Out: &out, Log: &out, ReportsDir: t.TempDir()})
				if err != nil {
					t.Fatalf("run: %v\n%s", err, out.String())
				}
				got := failedRequirements(res)
				if !slices.Equal(got, expected) {
					t.Fatalf("failures name %v, want %v\n%s", got, expected, out.String())
				}
				if res.Passed != (len(expected) == 0) {
					t.Errorf("passed=%v with failures %v", res.Passed, got)
				}
				if cell == [2]string{"hapi-8.0", "hapi-8.0"} {
					var known []string
					for _, k := range res.Findings.KnownDeviations() {
						known = append(known, k.Requirement)
					}
					if !slices.Contains(known, "EXP-CANCELLED-404") || !slices.Contains(known, "EXP-DELETE-DONE") {
						t.Errorf("HAPI 8.0's 202 after a cancel and its OperationOutcome without a code must be reported as known deviations, got %v", known)
					}
					if !strings.Contains(out.String(), "operation-outcome-media-type") {
						t.Errorf("HAPI's DELETE answers without a Content-Type must be reported as a known deviation:\n%s", out.String())
					}
					var warned []string
					for _, w := range res.Findings.Warnings() {
						warned = append(warned, w.Requirement)
					}
					if !slices.Contains(warned, "EXP-MISSING-JOB-4XX") {
						t.Errorf("HAPI's 500 to a poll without _jobId must be reported (MAY), got warnings %v", warned)
					}
				}
				if !strings.Contains(out.String(), "in profile "+cell[1]) {
					t.Errorf("the summary must name the profile")
				}
			})
		}
	}
}

func failedRequirements(res Result) []string {
	set := map[string]bool{}
	for _, f := range res.Failures {
		set[f.Requirement] = true
	}
	var out []string
	for r := range set {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

func TestUnknownProfileIsAClearError(t *testing.T) {
	_, err := Run(context.Background(), Config{Profile: "hapi-9", Out: &bytes.Buffer{}, ReportsDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "bulkdata") {
		t.Fatalf("want an error listing the profiles, got %v", err)
	}
}

// The severity rows of features/PROFILES.md, proven against one server that breaks each of them: another
// user reads the export's files (EXP-CROSS-USER) and polls and cancels it (EXP-CROSS-USER-POLL), the manifest
// is answered once only (EXP-RETAINED), and a poll without a job id crashes with a 500 and an
// OperationOutcome (EXP-MISSING-JOB-4XX; still an error with an OperationOutcome, so EXP-MISSING-JOB holds).
// fut and hapi-8.0 fail on the files and the manifest; fut warns of the poll, the cancel and the 500 (SHOULD),
// hapi-8.0 reports them (MAY: HAPI checks no user there and crashes on a GET without _jobId); bulkdata passes,
// with the files, the poll and the manifest as warnings (MAY, MAY, SHOULD) and no request without a job id.
func TestSeverityRowsPerProfile(t *testing.T) {
	faults := []string{"export-cross-user", "output-cross-user", "manifest-forgotten", "missing-job-500"}
	wantFailed := map[string][]string{
		"fut":      {"EXP-CROSS-USER", "EXP-RETAINED"},
		"hapi-8.0": {"EXP-CROSS-USER", "EXP-RETAINED"},
		"bulkdata": nil,
	}
	wantWarned := map[string][]string{
		"fut":      {"EXP-CROSS-USER-POLL", "EXP-MISSING-JOB-4XX"},
		"hapi-8.0": {"EXP-CROSS-USER-POLL", "EXP-MISSING-JOB-4XX"},
		"bulkdata": {"EXP-CROSS-USER", "EXP-CROSS-USER-POLL", "EXP-RETAINED"},
	}
	for _, p := range refserver.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Profile: p, Faults: faults})
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
				Tags: "@EXP-CROSS-USER,@EXP-CROSS-USER-POLL,@EXP-RETAINED,@EXP-MISSING-JOB,@EXP-MISSING-JOB-4XX"})
			if err != nil {
				t.Fatal(err)
			}
			if got := failedRequirements(res); !slices.Equal(got, wantFailed[string(p)]) || res.Passed != (len(wantFailed[string(p)]) == 0) {
				t.Fatalf("failures name %v (passed=%v), want %v\n%s", got, res.Passed, wantFailed[string(p)], out)
			}
			var warned []string
			for _, w := range res.Findings.Warnings() {
				if !slices.Contains(warned, w.Requirement) {
					warned = append(warned, w.Requirement)
				}
			}
			slices.Sort(warned)
			if !slices.Equal(warned, wantWarned[string(p)]) {
				t.Errorf("warnings name %v, want %v\n%s", warned, wantWarned[string(p)], out)
			}
			if p != refserver.ProfileBulkData {
				return
			}
			for _, s := range res.Results {
				if (slices.Contains(s.Requirements, "EXP-MISSING-JOB") || slices.Contains(s.Requirements, "EXP-MISSING-JOB-4XX")) && s.Status != StatusNotApplicable {
					t.Errorf("bulkdata: %q is %s, want not applicable", s.Name, s.Status)
				}
			}
		})
	}
}

// A server that serves the kick-off to GET only, as the HL7 IG allows (POST is a MAY there): bulkdata passes
// it, with EXP-KICKOFF-POST as a warning and every other export started by GET; fut, whose documented kick-off
// is POST, fails it on EXP-KICKOFF-POST alone.
func TestAGETOnlyKickoffPassesBulkdataAndFailsFUT(t *testing.T) {
	for _, p := range []refserver.Profile{refserver.ProfileBulkData, refserver.ProfileFUT} {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			var posts atomic.Int64
			inner := refserverHandler(t, refserver.Config{Profile: p, Faults: []string{"kickoff-post-refused"}})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/$export") {
					posts.Add(1)
				}
				inner.ServeHTTP(w, r)
			})
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA,
				Tags: "@EXP-KICKOFF,@EXP-KICKOFF-POST,@EXP-POLL-200,@EXP-OUTPUT,@EXP-CANCEL"})
			if err != nil {
				t.Fatal(err)
			}
			got := failedRequirements(res)
			if p == refserver.ProfileFUT {
				if !slices.Equal(got, []string{"EXP-KICKOFF-POST"}) || res.Passed {
					t.Fatalf("fut: failures name %v (passed=%v), want EXP-KICKOFF-POST alone\n%s", got, res.Passed, out)
				}
				return
			}
			if len(got) != 0 || !res.Passed {
				t.Fatalf("bulkdata: failures name %v (passed=%v), want none\n%s", got, res.Passed, out)
			}
			if !slices.ContainsFunc(res.Findings.Warnings(), func(f steps.Finding) bool { return f.Requirement == "EXP-KICKOFF-POST" }) {
				t.Errorf("bulkdata: the refused POST must be reported as a warning (MAY), got %+v", res.Findings.Warnings())
			}
			if n := posts.Load(); n != 1 {
				t.Errorf("bulkdata: %d kick-offs by POST, want only the EXP-KICKOFF-POST scenario's", n)
			}
		})
	}
}

// EXP-EXPIRES is BDA2's SHOULD, which FUT and HAPI do not meet (HAPI sets no Expires; FUT's "expires: 0" is a
// cache header): MAY in fut and hapi-8.0, so a complete status without Expires is reported there even under
// STRICT=1, and fails only in bulkdata, under STRICT.
func TestExpiresIsAShouldInBulkdataOnly(t *testing.T) {
	for _, p := range refserver.Profiles {
		t.Run(string(p), func(t *testing.T) {
			t.Parallel()
			h := refserverHandler(t, refserver.Config{Profile: p, Faults: []string{"no-expires"}})
			res, out, err := runAgainst(t, h, Config{Profile: string(p), Token: refserver.DemoTokenA, Strict: true, Tags: "@EXP-EXPIRES"})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			if p == refserver.ProfileBulkData {
				want = []string{"EXP-EXPIRES"}
			}
			if got := failedRequirements(res); !slices.Equal(got, want) {
				t.Fatalf("STRICT=1, no Expires: failures name %v, want %v\n%s", got, want, out)
			}
			if want == nil && !slices.ContainsFunc(res.Findings.Warnings(), func(f steps.Finding) bool { return f.Requirement == "EXP-EXPIRES" }) {
				t.Fatalf("want the missing Expires reported as a warning of EXP-EXPIRES, got %+v\n%s", res.Findings.Warnings(), out)
			}
			for _, r := range res.Requirements {
				if r.ID == "EXP-EXPIRES" && string(r.Severity) != map[bool]string{true: "SHOULD", false: "MAY"}[p == refserver.ProfileBulkData] {
					t.Errorf("EXP-EXPIRES is %s in %s", r.Severity, p)
				}
			}
		})
	}
}
