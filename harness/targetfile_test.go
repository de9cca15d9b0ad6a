package harness

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "target.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTargetFileGivesVariablesAndSecretsByName(t *testing.T) {
	path := writeFile(t, `{"name": "vendor X", "variables": {"TARGET": "https://x.example/fhir", "PROFILE": "hapi-8.0", "MAX_WAIT": "15m"},
		"secrets": {"TOKEN": "VENDORX_TOKEN"}}`)
	env := map[string]string{"CONFIG": path, "VENDORX_TOKEN": "t0k3n", "MAX_WAIT": "1m"}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Target != "https://x.example/fhir" || cfg.Profile != "hapi-8.0" || cfg.Token != "t0k3n" || cfg.MaxWait.String() != "1m0s" || cfg.ConfigName != "vendor X" {
		t.Fatalf("cfg %+v: want the file's values, the token from VENDORX_TOKEN, and the environment's MAX_WAIT", cfg)
	}
}

func TestTargetFileRefusesSecretsAndUnknownVariables(t *testing.T) {
	for name, body := range map[string]string{
		"a literal token":  `{"variables": {"TARGET": "https://x/fhir", "TOKEN": "t0k3n"}}`,
		"unknown variable": `{"variables": {"TARGT": "https://x/fhir"}}`,
		"unknown key":      `{"token": "t0k3n"}`,
		"not a secret":     `{"secrets": {"TARGET": "X"}}`,
		"not json":         `TARGET=https://x/fhir`,
		"a missing file":   "",
	} {
		path := "/nonexistent/target.json"
		if body != "" {
			path = writeFile(t, body)
		}
		_, err := ConfigFromEnv(func(k string) string { return map[string]string{"CONFIG": path}[k] })
		if err == nil || !strings.Contains(err.Error(), "CONFIG=") {
			t.Errorf("%s: want an error naming CONFIG, got %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "t0k3n") {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
}

func TestTagExpressionsGodogWouldMisreadAreRefused(t *testing.T) {
	for _, bad := range []string{"@export &&", "not @export", "@a || @b", "@a,,@b", "(@a)"} {
		if err := (Config{Tags: bad}).Validate(); err == nil || !strings.Contains(err.Error(), "TAGS=") {
			t.Errorf("TAGS=%q: want a clear error, got %v", bad, err)
		}
	}
	for _, good := range []string{"@export", "@export && ~@cross-user", "@EXP-CANCEL,@RJS-LISTED", "~@cross-user"} {
		if err := validateTags(good); err != nil {
			t.Errorf("TAGS=%q: %v", good, err)
		}
	}
}

// A tag no scenario has is refused, not ignored as godog would: in an "or" it would quietly leave its
// scenarios out, under "~" quietly run those meant to be left out. A likely misspelling is named.
func TestUnknownTagsAreRefusedWithTheNearestOne(t *testing.T) {
	for expr, want := range map[string]string{
		"@EXP-POL-202":                   "no scenario has the tag @EXP-POL-202; did you mean @EXP-POLL-202?",
		"@EXP-CANCEL,@exp-cancelled-404": "no scenario has the tag @exp-cancelled-404; did you mean @EXP-CANCELLED-404?",
		"@export && ~@cross-usr":         "did you mean @cross-user?",
		"@smoke":                         "no scenario has the tag @smoke (the tags are",
	} {
		err := (Config{Tags: expr}).Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("TAGS=%q: want an error saying %q, got %v", expr, want, err)
		}
	}
}

// FUT serves $export and the reports from different services: EXPORT_TARGET and REPORT_TARGET cover both in
// one run, and FEATURES runs one of them, saying which it left out.
func TestSeparateServicesAndFeatureSelection(t *testing.T) {
	exportSrv, reportSrv := refserverHandler(t, refserver.Config{}), refserverHandler(t, refserver.Config{})
	var out bytes.Buffer
	e, r := serve(t, exportSrv), serve(t, reportSrv)
	res, err := Run(context.Background(), Config{ExportTarget: e, ReportTarget: r, Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB,
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed || res.Scenarios != scenarioCount(t) {
		t.Fatalf("passed=%v scenarios=%d err=%v\n%s", res.Passed, res.Scenarios, err, out.String())
	}
	out.Reset()
	res, err = Run(context.Background(), Config{Target: e, Token: refserver.DemoTokenA, Features: []string{"report"}, Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if err != nil || !res.Passed || res.Scenarios != scenarioCount(t, "report") {
		t.Fatalf("report only: passed=%v scenarios=%d err=%v", res.Passed, res.Scenarios, err)
	}
	if !strings.Contains(out.String(), "Not run: the export feature ($export-poll-status), left out by FEATURES") {
		t.Errorf("the summary must say the export feature was not run:\n%s", out.String())
	}
}

// EXPORT_TYPES names FHIR R4 resource types: a misspelt one is refused before the run, named with the nearest
// type, instead of the server being charged with EXP-KICKOFF for refusing it.
func TestExportTypesAreFHIRR4ResourceTypes(t *testing.T) {
	for list, want := range map[string]string{
		"Patients":             `"Patients" is not a FHIR R4 resource type; did you mean Patient?`,
		"Patient,observation":  `"observation" is not a FHIR R4 resource type; did you mean Observation?`,
		"Patient,,Observation": `"" is not a FHIR R4 resource type`,
		"DomainResource":       `"DomainResource" is not a FHIR R4 resource type`,
		"Foo":                  `"Foo" is not a FHIR R4 resource type (a comma list`,
	} {
		if err := (Config{ExportTypes: list}).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("EXPORT_TYPES=%q: want an error saying %s, got %v", list, want, err)
		}
	}
	for _, list := range []string{"Patient", "Patient, Observation,CarePlan", "Task", "VisionPrescription"} {
		if err := (Config{ExportTypes: list}).Validate(); err != nil {
			t.Errorf("EXPORT_TYPES=%q: %v", list, err)
		}
	}
	if n := len(r4ResourceTypes()); n != 146 {
		t.Errorf("FHIR R4 has 146 concrete resource types, the list has %d", n)
	}
}

// EXPORT_TYPES written with spaces after its commas is sent as _type without them: the IG's _type is a plain
// comma list, and a server may take " Observation" for no type at all.
func TestExportTypesAreSentWithoutSpaces(t *testing.T) {
	var sent []string
	var mu sync.Mutex
	inner := refserverHandler(t, refserver.Config{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/$export") {
			mu.Lock()
			sent = append(sent, r.URL.Query().Get("_type"))
			mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	})
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, ExportTypes: "Patient, Observation", Tags: "@EXP-KICKOFF"})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("no kick-off by GET was seen: the test proves nothing")
	}
	for _, types := range sent {
		if types != "Patient,Observation" {
			t.Errorf("_type %q, want Patient,Observation", types)
		}
	}
}
