package harness

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// The embedded reference server passes the preflight, and the result carries what its CapabilityStatement
// declares, for the reports.
func TestTheEmbeddedServerPassesPreflightAndDeclaresTheOperations(t *testing.T) {
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Tags: "@EXP-UNKNOWN-JOB", Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
	pf := res.Preflight
	if pf == nil || len(pf.Services) != 1 || len(pf.Warnings) != 0 {
		t.Fatalf("preflight %+v: want one service (export and report) and no warning", pf)
	}
	s := pf.Services[0]
	for _, op := range []string{"export", "export-poll-status", "get-report-job-status", "execute-patient-usage-stats"} {
		if !slices.Contains(s.Operations, op) {
			t.Errorf("operations %v: want %s", s.Operations, op)
		}
	}
	if s.Role != "export and report" || s.FHIRVersion != "4.0.1" || !slices.Equal(s.Users, []string{"A", "B"}) {
		t.Errorf("service %+v: want both features, FHIR 4.0.1 and both users accepted", s)
	}
	if !strings.Contains(out.String(), "declares 31 operations, among them $export, $export-poll-status, $get-report-job-status") {
		t.Errorf("the console summary must say what the CapabilityStatement declares:\n%s", out.String())
	}
}

// metadataOverride serves capability as the metadata of the reference server, and counts the requests.
func metadataOverride(t *testing.T, capability string, hits *atomic.Int32) string {
	t.Helper()
	inner := refserverHandler(t, refserver.Config{})
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/metadata") {
			if hits != nil {
				hits.Add(1)
			}
			if capability != "" {
				w.Header().Set("Content-Type", "application/fhir+json")
				_, _ = w.Write([]byte(capability))
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
}

// A CapabilityStatement that does not declare an operation the run exercises is reported, as a warning of
// the run (the scenarios still judge whether the server serves it).
func TestAnUndeclaredOperationIsAWarning(t *testing.T) {
	target := metadataOverride(t, `{"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
		"rest": [{"mode": "server", "operation": [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}]}]}`, nil)
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Target: target, Token: refserver.DemoTokenA, Features: []string{"export"}, Tags: "@EXP-UNKNOWN-JOB",
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
	want := "does not declare $export-poll-status, which the export feature exercises"
	if res.Preflight == nil || len(res.Preflight.Warnings) != 1 || !strings.Contains(res.Preflight.Warnings[0], want) {
		t.Fatalf("preflight %+v: want one warning %q", res.Preflight, want)
	}
	if !strings.Contains(out.String(), want) {
		t.Errorf("the console summary must show the warning:\n%s", out.String())
	}
}

// The HL7 IG (bulkdata) defines no $export-poll-status operation, only the polling location a kick-off
// returns: a CapabilityStatement that declares $export alone, as an IG server's does, is no warning there.
func TestAnIGServerDeclaringOnlyExportIsNoWarningInBulkdata(t *testing.T) {
	target := metadataOverride(t, `{"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1",
		"rest": [{"mode": "server", "operation": [{"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"}]}]}`, nil)
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{Target: target, Token: refserver.DemoTokenA, Profile: "bulkdata", Tags: "@EXP-KICKOFF",
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
	if res.Preflight == nil || len(res.Preflight.Warnings) != 0 {
		t.Fatalf("preflight %+v: want no warning in bulkdata", res.Preflight)
	}
}

func wantPreflightError(t *testing.T, cfg Config, cause, fix string) {
	t.Helper()
	var out bytes.Buffer
	cfg.Out, cfg.Log, cfg.ReportsDir = &out, &out, filepath.Join(t.TempDir(), "reports")
	res, err := Run(context.Background(), cfg)
	var pe *PreflightError
	if !errors.As(err, &pe) {
		t.Fatalf("want a PreflightError, got %v\n%s", err, out.String())
	}
	if !strings.Contains(pe.Cause, cause) || !strings.Contains(pe.Fix, fix) {
		t.Errorf("got cause %q, fix %q; want %q and %q", pe.Cause, pe.Fix, cause, fix)
	}
	if res.Passed || res.Scenarios != 0 || len(res.Failures) != 0 {
		t.Errorf("a preflight failure must run no scenario and charge no requirement: %+v", res)
	}
	if _, err := os.Stat(cfg.ReportsDir); !os.IsNotExist(err) {
		t.Errorf("the reports directory was created before the preflight passed: %v", err)
	}
}

func TestPreflightRefusesWhatCannotBeTested(t *testing.T) {
	ts := httptest.NewServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	base := ts.URL + "/fhir"
	t.Run("FHIR R5", func(t *testing.T) {
		target := metadataOverride(t, `{"resourceType": "CapabilityStatement", "fhirVersion": "5.0.0"}`, nil)
		wantPreflightError(t, Config{Target: target, Token: refserver.DemoTokenA}, "serves FHIR 5.0.0", "FHIR R4 base")
	})
	t.Run("HTML at the base", func(t *testing.T) {
		html := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>welcome</html>"))
		}))
		wantPreflightError(t, Config{Target: html, Token: "x"}, "200 OK, text/html, not a CapabilityStatement", "is the FHIR base URL")
	})
	t.Run("OAuth2 client with a wrong secret", func(t *testing.T) {
		cfg := oauthConfig(ts.URL)
		cfg.Target, cfg.ClientSecret = base, "wrong-secret-1234"
		wantPreflightError(t, cfg, "could not get an access token for CLIENT_ID from TOKEN_URL", "check TOKEN_URL, CLIENT_ID")
	})
	t.Run("the reporting service refuses the token the export service accepts", func(t *testing.T) {
		meta := refserverHandler(t, refserver.Config{})
		refusing := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/metadata") {
				meta.ServeHTTP(w, r)
				return
			}
			w.WriteHeader(http.StatusForbidden)
		}))
		wantPreflightError(t, Config{ExportTarget: base, ReportTarget: refusing, Token: refserver.DemoTokenA},
			"TOKEN rejected by the server: POST "+refusing+"/$get-report-job-status answered 403 Forbidden", "TOKEN must be")
	})
}

// With separate services, both are preflighted; FEATURES leaves out the service it does not use.
func TestBothServicesArePreflighted(t *testing.T) {
	var exportHits, reportHits atomic.Int32
	e, r := metadataOverride(t, "", &exportHits), metadataOverride(t, "", &reportHits)
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{ExportTarget: e, ReportTarget: r, Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB,@RJS-BUNDLE",
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed || exportHits.Load() != 1 || reportHits.Load() != 1 || len(res.Preflight.Services) != 2 {
		t.Fatalf("passed=%v err=%v metadata requests export=%d report=%d; want one each\n%s", res.Passed, err, exportHits.Load(), reportHits.Load(), out.String())
	}
	if s := res.Preflight.Services; s[0].Role != "export" || s[0].BaseURL != e || s[1].Role != "report" || s[1].BaseURL != r {
		t.Errorf("services %+v", s)
	}
	exportHits.Store(0)
	reportHits.Store(0)
	if _, err := Run(context.Background(), Config{ExportTarget: e, ReportTarget: r, Token: refserver.DemoTokenA, Features: []string{"report"},
		Out: &out, Log: &out, ReportsDir: t.TempDir()}); err != nil || exportHits.Load() != 0 || reportHits.Load() != 1 {
		t.Errorf("FEATURES=report: err=%v metadata requests export=%d report=%d; want the reporting service only", err, exportHits.Load(), reportHits.Load())
	}
}

func TestSecretsAreReadFromFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	env := map[string]string{"TOKEN_FILE": write("a", "token-a\n"), "TOKEN_B_FILE": write("b", "  token-b  "),
		"CLIENT_SECRET_FILE": write("c", "secret-c\r\n"), "CLIENT_SECRET_B": "secret-d"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Token != "token-a" || cfg.TokenB != "token-b" || cfg.ClientSecret != "secret-c" || cfg.ClientSecretB != "secret-d" {
		t.Fatalf("cfg %+v err %v: want each secret from its file, trimmed", cfg, err)
	}
	for name, bad := range map[string]map[string]string{
		"both":    {"TOKEN": "token-a", "TOKEN_FILE": env["TOKEN_FILE"]},
		"missing": {"TOKEN_FILE": filepath.Join(dir, "nonexistent")},
		"empty":   {"CLIENT_SECRET_B_FILE": write("empty", "\n")},
	} {
		_, err := ConfigFromEnv(func(k string) string { return bad[k] })
		if err == nil || !strings.Contains(err.Error(), "_FILE") || strings.Contains(err.Error(), "token-a") {
			t.Errorf("%s: want an error naming the _FILE variable and not the secret, got %v", name, err)
		}
	}
}

// A target file names a secret by its environment variable; the environment's own NAME or NAME_FILE wins,
// and a named variable that is unset is refused (the run would go on without that user).
func TestTargetFileSecretsMustBeSet(t *testing.T) {
	path := writeFile(t, `{"variables": {"TARGET": "https://x.example/fhir"}, "secrets": {"TOKEN": "VENDORX_TOKEN", "TOKEN_B": "VENDORX_TOKEN_B"}}`)
	tokenB := filepath.Join(t.TempDir(), "b")
	if err := os.WriteFile(tokenB, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CONFIG": path, "VENDORX_TOKEN": "t0k3n", "VENDORX_TOKEN_B": "ignored", "TOKEN_B_FILE": tokenB}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil || cfg.Token != "t0k3n" || cfg.TokenB != "from-file" {
		t.Fatalf("cfg %+v err %v: want TOKEN from VENDORX_TOKEN and TOKEN_B from TOKEN_B_FILE", cfg, err)
	}
	delete(env, "VENDORX_TOKEN")
	_, err = ConfigFromEnv(func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "VENDORX_TOKEN, which is not set") {
		t.Fatalf("want the unset VENDORX_TOKEN refused, got %v", err)
	}
}

// In bulkdata the preflight proves the credentials with a request the HL7 IG defines: the scenarios' own
// kick-off, whose job it cancels at once (DELETE on the Content-Location). It never sends FUT's
// $export-poll-status, and a wrong token still ends the run as "could not run".
func TestBulkdataPreflightProbesWithAKickoffItCancels(t *testing.T) {
	var mu sync.Mutex
	var requests []string
	inner := refserverHandler(t, refserver.Config{Profile: refserver.ProfileBulkData, PollPath: "bulkstatus"})
	base := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.Method+" "+r.URL.Path)
		mu.Unlock()
		inner.ServeHTTP(w, r)
	}))
	t.Run("wrong token", func(t *testing.T) {
		wantPreflightError(t, Config{Target: base, Profile: "bulkdata", Features: []string{"export"}, Token: "not-a-token-of-this-server"},
			"TOKEN rejected by the server: GET "+base+"/$export?", "TOKEN must be")
	})
	mu.Lock()
	requests = nil
	mu.Unlock()
	t.Run("two users", func(t *testing.T) {
		cfg := Config{Target: base, Profile: "bulkdata", Features: []string{"export"}, Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB}
		target, stop, err := resolveTarget(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer stop.Stop()
		pf, err := preflight(context.Background(), cfg, target)
		if err != nil || len(pf.Services) != 1 || !slices.Equal(pf.Services[0].Users, []string{"A", "B"}) {
			t.Fatalf("preflight %+v, %v: want both users accepted", pf, err)
		}
		mu.Lock()
		defer mu.Unlock()
		var kickoffs, deletes int
		for _, r := range requests {
			switch {
			case strings.Contains(r, "$export-poll-status"):
				t.Errorf("the bulkdata preflight sent FUT's operation: %s", r)
			case r == "GET /fhir/$export":
				kickoffs++
			case strings.HasPrefix(r, "DELETE /fhir/bulkstatus/"):
				deletes++
			}
		}
		if kickoffs != 2 || deletes != 2 {
			t.Errorf("requests %v: want one kick-off per user, each job cancelled", requests)
		}
	})
}

// A server may refuse a _type it does not export (HL7 Bulk Data IG). When it refuses the run's EXPORT_TYPES
// but accepts a kick-off of every type, the run cannot happen as configured: the preflight says so, instead of
// the scenarios charging the server with EXP-KICKOFF; each job it started is cancelled. A server that refuses
// every kick-off is left to the scenarios, which fail it.
func TestExportTypesTheServerRefusesEndThePreflight(t *testing.T) {
	var mu sync.Mutex
	var kickoffs, deletes int
	handler := func(profile refserver.Profile, refuseAll bool) http.Handler {
		inner := refserverHandler(t, refserver.Config{Profile: profile})
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			switch {
			case strings.HasSuffix(r.URL.Path, "/$export"):
				kickoffs++
			case r.Method == http.MethodDelete:
				deletes++
			}
			mu.Unlock()
			if strings.HasSuffix(r.URL.Path, "/$export") && (refuseAll || r.URL.Query().Get("_type") == "Task") {
				w.Header().Set("Content-Type", "application/fhir+json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported","diagnostics":"Task is not exportable here"}]}`))
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	for _, profile := range []refserver.Profile{refserver.ProfileFUT, refserver.ProfileBulkData} {
		t.Run(string(profile), func(t *testing.T) {
			mu.Lock()
			kickoffs, deletes = 0, 0
			mu.Unlock()
			cfg := Config{Target: serve(t, handler(profile, false)), Profile: string(profile), Features: []string{"export"}, Token: refserver.DemoTokenA, ExportTypes: "Task"}
			wantPreflightError(t, cfg, `refuses an export of EXPORT_TYPES=Task and accepts one of every type: GET `, "set EXPORT_TYPES to resource types this server exports")
			mu.Lock()
			defer mu.Unlock()
			if kickoffs < 2 || deletes != 1 {
				t.Errorf("%d kick-offs, %d cancels: want the refused one, one of every type, and that job cancelled", kickoffs, deletes)
			}
		})
	}
	t.Run("a server that refuses every kick-off is judged", func(t *testing.T) {
		res, out, err := runAgainst(t, handler(refserver.ProfileFUT, true), Config{Token: refserver.DemoTokenA, ExportTypes: "Task", Tags: "@EXP-KICKOFF"})
		if err != nil || res.Passed || len(res.Failures) == 0 || res.Failures[0].Requirement != "EXP-KICKOFF" {
			t.Fatalf("want the run to fail EXP-KICKOFF, got passed=%v failures=%+v err=%v\n%s", res.Passed, res.Failures, err, out)
		}
	})
}

// A REPORT the server's CapabilityStatement leaves out, while it lists the reports it serves, is the user's
// typo: the run ends in the preflight naming the nearest report, instead of failing RJS-LISTED on the 404 of an
// operation that does not exist. A declared report runs.
func TestAReportTheServerDoesNotDeclareEndsThePreflight(t *testing.T) {
	base := serve(t, refserverHandler(t, refserver.Config{}))
	wantPreflightError(t, Config{Target: base, Token: refserver.DemoTokenA, Report: "patient-usage-stat"},
		"REPORT=patient-usage-stat: the CapabilityStatement of "+base+" declares neither $execute-patient-usage-stat nor $schedule-patient-usage-stat; its reports are ",
		"did you mean REPORT=patient-usage-stats?")
	cfg := Config{Target: base, Token: refserver.DemoTokenA, Report: "patient-total", Features: []string{"report"}}
	target, stop, err := resolveTarget(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stop.Stop()
	if _, err := preflight(context.Background(), cfg, target); err != nil {
		t.Fatalf("a declared report: %v", err)
	}
}

// EXPORT_TARGET and REPORT_TARGET given the wrong way round (each CapabilityStatement declares the other
// feature's operations and none of its own) end the preflight with the fix, instead of every scenario
// charging each server with the other's operations. Services that each declare their own run.
func TestSwappedTargetsEndThePreflight(t *testing.T) {
	statement := func(ops ...string) string {
		var list []string
		for _, op := range ops {
			list = append(list, `{"name": "`+op+`", "definition": "http://example.org/OperationDefinition/`+op+`"}`)
		}
		return `{"resourceType": "CapabilityStatement", "fhirVersion": "4.0.1", "rest": [{"mode": "server", "operation": [` + strings.Join(list, ",") + `]}]}`
	}
	exports := metadataOverride(t, statement("export", "export-poll-status"), nil)
	reports := metadataOverride(t, statement("get-report-job-status", "execute-patient-usage-stats", "schedule-patient-usage-stats"), nil)
	wantPreflightError(t, Config{ExportTarget: reports, ReportTarget: exports, Token: refserver.DemoTokenA},
		"EXPORT_TARGET="+reports+" declares the reporting operations and none of the export's, and REPORT_TARGET="+exports+" the other way round", "swap EXPORT_TARGET and REPORT_TARGET")
	var out bytes.Buffer
	res, err := Run(context.Background(), Config{ExportTarget: exports, ReportTarget: reports, Token: refserver.DemoTokenA, Tags: "@EXP-UNKNOWN-JOB,@RJS-BUNDLE",
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed {
		t.Fatalf("the services the right way round: passed=%v err=%v\n%s", res.Passed, err, out.String())
	}
}
