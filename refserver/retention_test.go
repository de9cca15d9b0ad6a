package refserver

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestRetentionForgetsJobsFilesAndReports(t *testing.T) {
	const retention = 10 * time.Minute
	e, srv := newServerEnv(t, Config{Retention: retention, ExportDuration: time.Second, ReportDuration: time.Second})

	poll := e.kickoff(tokenA, "")
	cancelled := e.kickoff(tokenA, "")
	wantStatus(t, e.do(req{method: http.MethodDelete, url: cancelled, token: tokenA}), http.StatusAccepted)
	report := e.runReport(tokenA, "$execute-patient-usage-stats", `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"}]}`)
	e.clock.Advance(time.Second)
	m, r := e.manifest(poll, tokenA)
	if len(m.Output) == 0 {
		t.Fatal("manifest: expected output files")
	}
	// Expires names the end of the configured retention.
	if exp, err := http.ParseTime(r.header.Get("Expires")); err != nil || !exp.Equal(e.clock.Now().Add(retention).Truncate(time.Second)) {
		t.Fatalf("Expires: expected %s, got %q", e.clock.Now().Add(retention).UTC().Format(http.TimeFormat), r.header.Get("Expires"))
	}
	before := srv.stateSize()
	if before.exportJobs != 2 || before.reportJobs != 1 || before.binaries != len(m.Output)+1 {
		t.Fatalf("state before retention: got %+v", before)
	}

	e.clock.Advance(retention - time.Millisecond)
	wantStatus(t, e.get(m.Output[0].URL, tokenA), http.StatusOK)
	wantStatus(t, e.get("/Binary/"+report.ID, tokenA), http.StatusOK)

	e.clock.Advance(time.Millisecond)
	wantOO(t, e.get(poll, tokenA), http.StatusNotFound, sevError, codeNotFound)
	wantOO(t, e.get(m.Output[0].URL, tokenA), http.StatusNotFound, sevError, codeNotFound)
	wantOO(t, e.get("/Binary/"+report.ID, tokenA), http.StatusNotFound, sevError, codeNotFound)
	if b, _ := e.jobStatus(tokenA); len(b.Entry) != 0 {
		t.Fatalf("report jobs after retention: expected none, got %d", len(b.Entry))
	}
	if after := srv.stateSize(); after != (stateSize{}) {
		t.Fatalf("state after retention: expected empty, got %+v", after)
	}
}

func TestInvalidJobIDIs400(t *testing.T) {
	e := newEnv(t, Config{})
	for _, id := range []string{strings.Repeat("a", 65), "a b", "../etc", "<script>", "x\u00e9"} {
		for _, m := range []string{http.MethodGet, http.MethodDelete} {
			diag := wantOO(t, e.do(req{method: m, url: "/$export-poll-status?_jobId=" + url.QueryEscape(id), token: tokenA}), http.StatusBadRequest, sevError, codeInvalid)
			if !strings.Contains(diag, "_jobId") || len(diag) > 200 {
				t.Fatalf("%s %q: expected a short diagnostic naming _jobId, got %q", m, id, diag)
			}
		}
	}
}
