package harness

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A run against TARGET with the reference server's own variables in its environment (EXPORT_DURATION,
// RETRY_AFTER, ... from a shell that started `make refserver`, or a CI job's variables) ignored them
// silently: it says so, naming them and never their values, and runs as it would without them.
func TestReferenceServerVariablesAreNamedAsIgnored(t *testing.T) {
	env := map[string]string{
		"TARGET": "http://127.0.0.1:1/fhir", "TOKEN": refserver.DemoTokenA,
		"EXPORT_DURATION": "7s-value-1", "RETRY_AFTER": "3s-value-2", "DATA_DIR": "/value-3", "FAULTS": "value-4",
		"REFSERVER_TOKENS": "secret-value-5=u1",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"EXPORT_DURATION", "RETRY_AFTER", "DATA_DIR", "REFSERVER_TOKENS", "FAULTS"}
	if !slices.Equal(cfg.ReferenceServerOnly, want) {
		t.Fatalf("ReferenceServerOnly = %v, want %v", cfg.ReferenceServerOnly, want)
	}
	res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@RJS-BUNDLE", ReferenceServerOnly: cfg.ReferenceServerOnly})
	if err != nil || !res.Passed {
		t.Fatalf("passed=%v err=%v\n%s", res.Passed, err, out)
	}
	if !strings.Contains(out, "conformance: warning: EXPORT_DURATION, RETRY_AFTER, DATA_DIR, REFSERVER_TOKENS, FAULTS set, but only the reference server command reads them") ||
		!strings.Contains(out, "they change nothing of the server under test") {
		t.Errorf("want a warning naming the variables as ignored against TARGET:\n%s", out)
	}
	if regexp.MustCompile(`value-\d`).MatchString(out) {
		t.Errorf("the warning shows a value:\n%s", out)
	}

	// The embedded reference server reads none of them either, and the warning says that instead.
	var embedded bytes.Buffer
	if _, err := Run(context.Background(), Config{Tags: "@RJS-BUNDLE", ReferenceServerOnly: []string{"REPORT_DURATION"}, Out: &embedded, Log: &embedded, ReportsDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(embedded.String(), "warning: REPORT_DURATION set, but only the reference server command reads them") ||
		!strings.Contains(embedded.String(), "the embedded reference server reads none of them either") {
		t.Errorf("want the warning for the embedded server too:\n%s", embedded.String())
	}

	// No such variable, no warning.
	_, quiet, _ := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@RJS-BUNDLE"})
	if strings.Contains(quiet, "only the reference server command") {
		t.Errorf("a warning without any such variable:\n%s", quiet)
	}
}

// Every variable the reference server command reads is the harness's own (Variables), or one it names as
// the reference server's (ReferenceServerVariables), or ADDR: a variable added to cmd/refserver is sorted
// into one of them, so that it is never silently ignored.
func TestEveryReferenceServerVariableIsKnown(t *testing.T) {
	src, err := os.ReadFile("../cmd/refserver/main.go")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`env\("([A-Z_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(names) < 10 {
		t.Fatalf("found %d env(...) reads in cmd/refserver/main.go; the pattern no longer matches", len(names))
	}
	for _, m := range names {
		name := m[1]
		harnessReads := slices.ContainsFunc(Variables, func(v struct{ Name, Default, Meaning string }) bool { return v.Name == name })
		if name != "ADDR" && !harnessReads && !slices.Contains(ReferenceServerVariables, name) {
			t.Errorf("cmd/refserver reads %s, which is neither a harness variable nor in ReferenceServerVariables", name)
		}
		if harnessReads && slices.Contains(ReferenceServerVariables, name) {
			t.Errorf("%s is a harness variable and in ReferenceServerVariables", name)
		}
	}
}
