package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, envMap(nil), io.Discard)
	if err != nil {
		t.Fatalf("parseOptions: %v", err)
	}
	if o.addr != "127.0.0.1:8080" || o.cfg.BasePath != "/fhir" || !o.demoUsers || len(o.cfg.Users) != 2 ||
		o.cfg.ExportDuration != 2*time.Second || o.cfg.ReportDuration != time.Second || o.cfg.RetryAfter != time.Second || o.cfg.Data != nil {
		t.Fatalf("defaults: got %+v", o)
	}
}

func TestParseOptionsEnvAndFlags(t *testing.T) {
	dir := t.TempDir()
	env := envMap(map[string]string{
		"ADDR":             "0.0.0.0:9000",
		"BASE_PATH":        "/r4",
		"PUBLIC_BASE_URL":  "https://x.example/r4",
		"EXPORT_DURATION":  "5s",
		"REPORT_DURATION":  "250ms",
		"RETRY_AFTER":      "3s",
		"REFSERVER_TOKENS": "tok1=u-1:Alice:nonanon, tok2=u-2",
		"DATA_DIR":         dir,
	})
	o, err := parseOptions(nil, env, io.Discard)
	if err != nil {
		t.Fatalf("parseOptions: %v", err)
	}
	want := []refserver.User{{Token: "tok1", ID: "u-1", Name: "Alice", MayReadNonAnonymized: true}, {Token: "tok2", ID: "u-2", Name: "u-2"}}
	if o.addr != "0.0.0.0:9000" || o.cfg.BasePath != "/r4" || o.cfg.PublicBaseURL != "https://x.example/r4" ||
		o.cfg.ExportDuration != 5*time.Second || o.cfg.ReportDuration != 250*time.Millisecond || o.cfg.RetryAfter != 3*time.Second ||
		o.demoUsers || len(o.cfg.Users) != 2 || o.cfg.Users[0] != want[0] || o.cfg.Users[1] != want[1] || o.cfg.Data == nil {
		t.Fatalf("from env: got %+v", o)
	}

	// Flags win over the environment.
	o, err = parseOptions([]string{"-addr", ":1", "-export-duration", "1m", "-tokens", "t=u:nonanon"}, env, io.Discard)
	if err != nil {
		t.Fatalf("parseOptions: %v", err)
	}
	if o.addr != ":1" || o.cfg.ExportDuration != time.Minute || o.cfg.Users[0] != (refserver.User{Token: "t", ID: "u", Name: "u", MayReadNonAnonymized: true}) {
		t.Fatalf("flags over env: got %+v", o)
	}
}

// The synthetic dataset and the split into files come from flags or REFSERVER_* variables.
func TestParseOptionsSyntheticExport(t *testing.T) {
	env := envMap(map[string]string{"REFSERVER_SYNTHETIC_BYTES": "1GiB", "REFSERVER_SYNTHETIC_TYPES": "Patient, Observation", "REFSERVER_SYNTHETIC_SEED": "7", "REFSERVER_FILES_PER_TYPE": "4"})
	o, err := parseOptions(nil, env, io.Discard)
	if err != nil {
		t.Fatalf("parseOptions: %v", err)
	}
	want := refserver.Synthetic{Bytes: 1 << 30, Types: []string{"Patient", "Observation"}, Seed: 7}
	if o.cfg.Synthetic.Bytes != want.Bytes || strings.Join(o.cfg.Synthetic.Types, ",") != "Patient,Observation" || o.cfg.Synthetic.Seed != 7 || o.cfg.FilesPerType != 4 {
		t.Fatalf("from env: got %+v, files per type %d", o.cfg.Synthetic, o.cfg.FilesPerType)
	}
	o, err = parseOptions([]string{"-synthetic-resources", "1000", "-synthetic-bytes", "", "-files-per-type", "2"}, env, io.Discard)
	if err != nil {
		t.Fatalf("parseOptions: %v", err)
	}
	if o.cfg.Synthetic.Resources != 1000 || o.cfg.Synthetic.Bytes != 0 || o.cfg.FilesPerType != 2 {
		t.Fatalf("flags over env: got %+v, files per type %d", o.cfg.Synthetic, o.cfg.FilesPerType)
	}
}

func TestParseOptionsRejectsInvalidValues(t *testing.T) {
	cases := map[string]struct {
		args []string
		env  map[string]string
	}{
		"bad duration flag":  {args: []string{"-export-duration", "soon"}},
		"bad duration env":   {env: map[string]string{"REPORT_DURATION": "10"}},
		"zero retry":         {args: []string{"-retry-after", "0s"}},
		"bad token entry":    {args: []string{"-tokens", "novalue"}},
		"empty user id":      {args: []string{"-tokens", "t="}},
		"too many fields":    {args: []string{"-tokens", "t=u:a:b:c"}},
		"missing data dir":   {args: []string{"-data", filepath.Join(t.TempDir(), "missing")}},
		"unknown flag":       {args: []string{"-nope"}},
		"positional args":    {args: []string{"extra"}},
		"empty address flag": {args: []string{"-addr", ""}},
		"bad size":           {args: []string{"-synthetic-bytes", "lots"}},
		"size and count":     {env: map[string]string{"REFSERVER_SYNTHETIC_BYTES": "1MiB", "REFSERVER_SYNTHETIC_RESOURCES": "10"}},
		"unknown synth type": {args: []string{"-synthetic-bytes", "1MiB", "-synthetic-types", "Encounter"}},
		"data and synthetic": {args: []string{"-synthetic-bytes", "1MiB", "-data", t.TempDir()}},
		"zero files":         {args: []string{"-files-per-type", "0"}},
		"bad seed":           {env: map[string]string{"REFSERVER_SYNTHETIC_SEED": "x"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parseOptions(tc.args, envMap(tc.env), io.Discard)
			if !errors.As(err, new(*usageError)) {
				t.Fatalf("parseOptions: expected a usage error, got %v", err)
			}
		})
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	err := run(context.Background(), []string{"-tokens", "t=u1,t=u2"}, envMap(nil), io.Discard)
	if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "duplicate token") {
		t.Fatalf("run: expected a duplicate token usage error, got %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Patient.ndjson"), []byte("not json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"-data", dir}, envMap(nil), io.Discard); !errors.As(err, new(*usageError)) {
		t.Fatalf("run: expected a data usage error, got %v", err)
	}
}

// lineWriter hands each written line to a channel.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(p []byte) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(string(p)))
	for sc.Scan() {
		w.lines <- sc.Text()
	}
	return len(p), nil
}

// awaitFirstLine is the first line run prints, or a failure if run ends or stays silent first.
func awaitFirstLine(t *testing.T, out lineWriter, done <-chan error) string {
	t.Helper()
	select {
	case first := <-out.lines:
		return first
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("run: no listening line within 10s")
	}
	return ""
}

func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := lineWriter{lines: make(chan string, 16)}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, envMap(nil), out) }()

	first := awaitFirstLine(t, out, done)
	base, ok := strings.CutPrefix(first, "refserver listening on ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/fhir") {
		t.Fatalf("listening line: got %q", first)
	}
	demo := []string{<-out.lines, <-out.lines}
	if !strings.Contains(demo[0], "token=demo-token-a") || !strings.Contains(demo[0], refserver.DemoUserIDA) ||
		!strings.Contains(demo[1], "token=demo-token-b") || !strings.Contains(demo[1], refserver.DemoUserIDB) {
		t.Fatalf("demo user lines: got %q", demo)
	}

	resp, err := http.Get(strings.TrimSuffix(base, "/fhir") + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: expected 200, got %d", resp.StatusCode)
	}
	req, err := http.NewRequest(http.MethodGet, base+"/$get-report-job-status", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+refserver.DemoTokenA)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("get-report-job-status: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get-report-job-status: expected 200, got %d", resp.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run: no shutdown within 10s")
	}
}

func TestRunDoesNotPrintConfiguredTokens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{lines: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, envMap(map[string]string{"REFSERVER_TOKENS": "secret-token=u1"}), out)
	}()
	select {
	case line := <-out.lines:
		if !strings.HasPrefix(line, "refserver listening on ") {
			t.Fatalf("first line: got %q", line)
		}
	case err := <-done:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("run: no listening line within 10s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	close(out.lines)
	for line := range out.lines {
		if strings.Contains(line, "secret-token") {
			t.Fatalf("printed a configured token: %q", line)
		}
	}
}
