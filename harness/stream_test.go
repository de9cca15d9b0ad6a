package harness

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The small version of the 1 GiB case (cmd/benchscale): output files several times MAX_BODY pass, streamed
// (the Binary form is covered by check's tests: the harness asks for NDJSON first); a bad last line fails
// naming its line; a count off by one fails naming the file (in bulkdata, whose manifest counts).
func TestOutputFilesLargerThanMaxBodyAreStreamedAndJudged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite three times against 4 MB exports")
	}
	base := refserver.Config{Synthetic: refserver.Synthetic{Bytes: 4 << 20, Types: []string{"Patient"}}, FilesPerType: 2}
	srv, err := refserver.NewServer(base)
	if err != nil {
		t.Fatal(err)
	}
	contents, err := srv.ExportContents()
	if err != nil || len(contents) != 1 || contents[0].Files != 2 {
		t.Fatalf("export contents %+v, %v", contents, err)
	}
	run := Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@EXP-OUTPUT", MaxBodyBytes: 1 << 20}
	for _, profile := range []refserver.Profile{"fut"} {
		t.Run(string(profile), func(t *testing.T) {
			cfg := base
			cfg.Profile = profile
			res, out, err := runAgainst(t, refserverHandler(t, cfg), withProfile(run, string(profile)))
			if err != nil || !res.Passed || res.Scenarios != 1 {
				t.Fatalf("4 MB in 2 files with MAX_BODY 1 MiB: passed=%v scenarios=%d err=%v\n%s", res.Passed, res.Scenarios, err, out)
			}
			if n := strings.Count(out, " Patient (ndjson, "); n != 2 {
				t.Errorf("%d files reported, want 2:\n%s", n, out)
			}

			cfg.Faults = []string{"output-bad-last-line"}
			res, out, _ = runAgainst(t, refserverHandler(t, cfg), withProfile(run, string(profile)))
			line := regexp.MustCompile(`output file (\S+) line (\d+)`).FindStringSubmatch(out)
			if res.Passed || line == nil || !strings.Contains(out, "invalid JSON") {
				t.Fatalf("a bad last line: passed=%v, want a failure naming the file's line:\n%s", res.Passed, out)
			}
			if half := contents[0].Resources / 2; line[2] != fmt.Sprint(half) && line[2] != fmt.Sprint(contents[0].Resources-half) {
				t.Errorf("the failure names line %s, not the last line of a file of %d or %d", line[2], half, contents[0].Resources-half)
			}

		})
	}
	// The manifest counts in bulkdata only (HAPI's, which fut emulates, has no count).
	cfg := base
	cfg.Profile, cfg.Faults = refserver.ProfileBulkData, []string{"output-count-mismatch"}
	res, out, _ := runAgainst(t, refserverHandler(t, cfg), withProfile(run, string(cfg.Profile)))
	if res.Passed || !regexp.MustCompile(`output file http://\S+: expected \d+ resources, as the manifest's count says`).MatchString(out) {
		t.Fatalf("a count off by one: passed=%v, want a failure naming the file:\n%s", res.Passed, out)
	}
}

func withProfile(c Config, p string) Config { c.Profile = p; return c }
