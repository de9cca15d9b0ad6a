package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A TARGET with a stray space, a fragment or a query is the user's typo, refused before any request, naming
// the variable: sent, it got "is not a FHIR base URL" and a suggested fix that kept the typo (GET
// http://host/ fhir/metadata, "did you mean TARGET=http://host/ fhir/fhir?"), or a fragment that swallowed
// every path the run appends (GET http://host/fhir#x/metadata requested /fhir).
func TestATargetWithWhiteSpaceAFragmentOrAQueryIsRefused(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"http://127.0.0.1:8080/ fhir", "holds no white space"},
		{"http://127.0.0.1:8080/fhir\tx", "holds no white space"},
		{"http://127.0.0.1:8080/fhir#top", "no fragment"},
		{"http://127.0.0.1:8080/fhir#", "no fragment"},
		{"http://127.0.0.1:8080/fhir?tenant=x", "no query"},
		{"http://127.0.0.1:8080/fhir?", "no query"},
	} {
		for _, name := range []string{"TARGET", "EXPORT_TARGET", "REPORT_TARGET"} {
			var cfg Config
			switch name {
			case "TARGET":
				cfg.Target = tc.target
			case "EXPORT_TARGET":
				cfg.ExportTarget = tc.target
			default:
				cfg.ReportTarget = tc.target
			}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), name+"=") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s=%q: got %v; want an error naming %s and saying %q", name, tc.target, err, name, tc.want)
			}
		}
	}
	for _, ok := range []string{"http://127.0.0.1:8080/fhir", "https://fut.example/fhir/", "https://fut.example/my%20fhir", "https://user:pw@fut.example/fhir"} {
		if err := (Config{Target: ok}).Validate(); err != nil {
			t.Errorf("TARGET=%q: %v; want it accepted", ok, err)
		}
	}
}

// http:// in TARGET for a server that speaks only HTTPS gets a 400 from Go's server (as from nginx, Apache,
// Tomcat): the fix names https://, not the path, which was right.
func TestHTTPForAnHTTPSServerSuggestsHTTPS(t *testing.T) {
	ts := httptest.NewTLSServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	plain := "http://" + strings.TrimPrefix(ts.URL, "https://") + "/fhir"
	wantPreflightError(t, Config{Target: plain, Token: refserver.DemoTokenA, RequestTimeout: 5 * time.Second},
		"is not a FHIR base URL", "the server speaks HTTPS (TLS) at "+strings.TrimPrefix(ts.URL, "https://")+": did you mean TARGET="+ts.URL+"/fhir?")
}

// A plain-HTTP server with a wrong path still gets the path's fix: the TLS probe finds no TLS there.
func TestHTTPWithAWrongPathStillSuggestsThePath(t *testing.T) {
	ts := httptest.NewServer(refserverHandler(t, refserver.Config{}))
	t.Cleanup(ts.Close)
	wantPreflightError(t, Config{Target: ts.URL, Token: refserver.DemoTokenA, RequestTimeout: 5 * time.Second},
		"is not a FHIR base URL", "did you mean TARGET="+ts.URL+"/fhir?")
}

// A run whose every selected scenario was skipped or not applicable checked nothing: it is no pass (it read
// "PASS: 3 scenarios", exit 0, for TAGS=@cross-user without TOKEN_B). Its reports are written, with the
// verdict NOTHING CHECKED, and the reasons say why each was not checked.
func TestARunThatChecksNothingIsNotAPass(t *testing.T) {
	t.Run("skipped: no TOKEN_B", func(t *testing.T) {
		res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@cross-user"})
		if err != nil || res.Passed || !res.NothingChecked {
			t.Fatalf("passed=%v nothingChecked=%v err=%v; want a run that is not passed, nothing checked\n%s", res.Passed, res.NothingChecked, err, out)
		}
		if msg := res.NothingCheckedReasons(); !strings.Contains(msg, "EXP-CROSS-USER") || !strings.Contains(msg, "skipped: ") || !strings.Contains(msg, "TOKEN_B") {
			t.Errorf("the reasons must say which requirements were skipped and why:\n%s", msg)
		}
		if !strings.Contains(out, fmt.Sprintf("\nNOTHING CHECKED: %d scenarios against", scenarioCount(t, "cross-user"))) || strings.Contains(out, "PASS") {
			t.Errorf("the console's verdict must be NOTHING CHECKED:\n%s", out)
		}
	})
	t.Run("not applicable in the profile", func(t *testing.T) {
		var out bytes.Buffer
		reports := filepath.Join(t.TempDir(), "reports")
		res, err := Run(context.Background(), Config{Profile: "bulkdata", Tags: "@EXP-MISSING-JOB", ReportsDir: reports, Out: &out, Log: &out})
		if err != nil || res.Passed || !res.NothingChecked {
			t.Fatalf("passed=%v nothingChecked=%v err=%v; want a run that is not passed, nothing checked\n%s", res.Passed, res.NothingChecked, err, out.String())
		}
		if msg := res.NothingCheckedReasons(); !strings.Contains(msg, "EXP-MISSING-JOB: not applicable: ") {
			t.Errorf("the reasons must say the requirement does not apply:\n%s", msg)
		}
		if raw, err := os.ReadFile(filepath.Join(reports, "index.html")); err != nil || !strings.Contains(string(raw), "NOTHING CHECKED") || strings.Contains(string(raw), ">PASS<") {
			t.Errorf("index.html must give the verdict NOTHING CHECKED (%v)", err)
		}
	})
	t.Run("one scenario checked", func(t *testing.T) {
		res, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@cross-user,@EXP-UNKNOWN-JOB"})
		if err != nil || !res.Passed || res.NothingChecked {
			t.Fatalf("passed=%v nothingChecked=%v err=%v; want a pass, the skips visible\n%s", res.Passed, res.NothingChecked, err, out)
		}
	})
}

// A misspelt variable is ignored, and the run quietly takes the default (MAXWAIT=5m: a 10-minute MAX_WAIT;
// GATES=1: no release gate): it is named, with the variable meant, and never with its value.
func TestMisspeltVariablesAreNamed(t *testing.T) {
	environ := []string{
		"MAXWAIT=5m", "max_wait=5m", "TOKENB=secret-b", "GATES=1", "REQUEST_TIMOUT=5s", "Target=http://x/fhir", "REFSERVER_SYNTHETIC_BYTE=1GiB",
		// not warned: the harness's own, and what a machine or CI has anyway
		"MAX_WAIT=5m", "TOKEN_B=secret", "PATH=/usr/bin", "HOME=/root", "GOPATH=/go", "GITHUB_TOKEN=x", "CI_JOB_TOKEN=x", "TERM=xterm",
		"LANG=C", "PWD=/", "TAG=x", "IMAGE_NAME=x", "DOCKER_CONFIG=x", "KUBECONFIG=x", "HOSTNAME=x", "CI=true", "TMPDIR=/tmp", "GOFLAGS=-mod=mod",
		"TESTCONTAINERS_RYUK_DISABLED=true", "CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt", "HARNESS_IMAGE=x",
	}
	got := MisspeltVariables(environ)
	want := map[string]string{"MAXWAIT": "MAX_WAIT", "max_wait": "MAX_WAIT", "TOKENB": "TOKEN_B", "GATES": "GATE",
		"REQUEST_TIMOUT": "REQUEST_TIMEOUT", "Target": "TARGET", "REFSERVER_SYNTHETIC_BYTE": "REFSERVER_SYNTHETIC_BYTES"}
	if len(got) != len(want) {
		t.Errorf("got %d warnings, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for name, meant := range want {
		if !slices.ContainsFunc(got, func(w string) bool {
			return strings.HasPrefix(w, name+" is set") && strings.Contains(w, "did you mean "+meant+"?")
		}) {
			t.Errorf("no warning naming %s as a misspelling of %s:\n%s", name, meant, strings.Join(got, "\n"))
		}
	}
	for _, w := range got {
		if strings.Contains(w, "secret") || strings.Contains(w, "5m") {
			t.Errorf("a warning shows a value: %s", w)
		}
	}
}

// A count or size of 0 (or below) from the environment is refused, naming the variable, as a duration of 0
// is: it read as the default (MAX_FILES=0 checked 50 files, MAX_BODY=0 bounded answers at 64 MiB), which is
// not what the user wrote.
func TestZeroCountsAndSizesAreRefused(t *testing.T) {
	for _, kv := range [][2]string{{"MAX_JOBS", "0"}, {"MAX_FILES", "0"}, {"PARALLEL_DOWNLOADS", "0"}, {"MAX_BODY", "0"}, {"MAX_BODY", "0.5"},
		{"MAX_JOBS", "-1"}, {"MAX_FILES", "-3"}, {"PARALLEL_DOWNLOADS", "-1"}, {"MAX_BODY", "-1"}, {"MAX_JOBS", "four"}} {
		_, err := ConfigFromEnv(func(k string) string {
			if k == kv[0] {
				return kv[1]
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), kv[0]+"=") && !strings.Contains(err.Error(), kv[0]+":") {
			t.Errorf("%s=%s: got %v; want an error naming %s", kv[0], kv[1], err, kv[0])
		}
	}
	cfg, err := ConfigFromEnv(func(k string) string {
		return map[string]string{"MAX_JOBS": "1", "MAX_FILES": "1", "PARALLEL_DOWNLOADS": "1", "MAX_BODY": "1KiB"}[k]
	})
	if err != nil || cfg.MaxJobs != 1 || cfg.MaxFiles != 1 || cfg.ParallelDownloads != 1 || cfg.MaxBodyBytes != 1024 {
		t.Errorf("the smallest values: %+v, %v", cfg, err)
	}
}

// TOKEN_B without TOKEN (TOKEN misspelt, or its secret missing) is refused before any request: the run went
// to the server and was told "requires authentication: set TOKEN", or, against a server asking for no token,
// ran the cross-user scenarios with an anonymous first user.
func TestTokenBWithoutTokenIsRefused(t *testing.T) {
	err := Config{Target: "http://127.0.0.1:1/fhir", TokenB: "token-b"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "TOKEN_B given without TOKEN") {
		t.Errorf("got %v; want TOKEN_B without TOKEN refused", err)
	}
	if err := (Config{Target: "http://127.0.0.1:1/fhir", Token: "token-a", TokenB: "token-b"}).Validate(); err != nil {
		t.Errorf("both tokens: %v", err)
	}
}

// A target file's misspelt variable is refused (as before) with the variable meant.
func TestATargetFilesMisspeltVariableNamesTheOneMeant(t *testing.T) {
	path := writeFile(t, `{"variables": {"MAXWAIT": "5m", "TARGT": "https://x/fhir"}}`)
	_, err := ConfigFromEnv(func(k string) string { return map[string]string{"CONFIG": path}[k] })
	for _, want := range []string{"MAXWAIT is not a variable of the harness; did you mean MAX_WAIT?", "TARGT is not a variable of the harness; did you mean TARGET?"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v; want %q", err, want)
		}
	}
}

// A TARGET without a scheme (host:port/fhir, as a browser's address bar shows it) is refused with both.
func TestATargetWithoutASchemeSuggestsOne(t *testing.T) {
	err := Config{Target: "127.0.0.1:8080/fhir"}.Validate()
	if err == nil || !strings.Contains(err.Error(), "no scheme: https://127.0.0.1:8080/fhir or http://127.0.0.1:8080/fhir?") {
		t.Errorf("got %v; want the schemes suggested", err)
	}
}

// REFSERVER_PROFILE with TARGET (or a vendor's IMAGE) was ignored in silence, the target judged in the
// default profile, when the user may have meant PROFILE: the run now says so. (Not refused: cmd/refserver
// reads the same variable, and the shell that started one may run the harness at it.)
func TestRefserverProfileWithAnotherTargetIsNamedAsIgnored(t *testing.T) {
	_, out, err := runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, RefserverProfile: "bulkdata", Tags: "@EXP-KICKOFF"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "warning: REFSERVER_PROFILE=bulkdata is ignored with TARGET or IMAGE") || !strings.Contains(out, "PROFILE sets the rules") {
		t.Errorf("the run must say REFSERVER_PROFILE is ignored:\n%s", out)
	}
	_, out, err = runAgainst(t, refserverHandler(t, refserver.Config{}), Config{Token: refserver.DemoTokenA, Tags: "@EXP-KICKOFF"})
	if err != nil || strings.Contains(out, "REFSERVER_PROFILE") {
		t.Errorf("without it, no warning (%v):\n%s", err, out)
	}
}

// A selection of nothing ends the run before the preflight (the server is not asked), and names the features
// not run and why: PROFILE=bulkdata TAGS=@report said only '"@report" matches no scenario', after the
// preflight's requests, though scenarios have that tag (the report feature is n/a in bulkdata).
func TestASelectionOfNothingEndsBeforeThePreflightSayingWhy(t *testing.T) {
	var hits atomic.Int32
	target := metadataOverride(t, "", &hits)
	var out bytes.Buffer
	_, err := Run(context.Background(), Config{Target: target, Token: refserver.DemoTokenA, Profile: "bulkdata", Tags: "@report",
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if !errors.Is(err, ErrNoScenario) || !strings.Contains(err.Error(), "not applicable in profile bulkdata") {
		t.Errorf("got %v; want ErrNoScenario naming the report feature as not applicable in bulkdata\n%s", err, out.String())
	}
	if hits.Load() != 0 {
		t.Errorf("the preflight asked the server for its metadata %d times for a run of nothing", hits.Load())
	}
	_, err = Run(context.Background(), Config{Target: target, Token: refserver.DemoTokenA, Features: []string{"report"}, Tags: "@export",
		Out: &out, Log: &out, ReportsDir: t.TempDir()})
	if !errors.Is(err, ErrNoScenario) || !strings.Contains(err.Error(), "left out by FEATURES") {
		t.Errorf("got %v; want ErrNoScenario naming the export feature as left out by FEATURES", err)
	}
}

// A TLS port that hangs up on plain HTTP (no 400, as Jetty or a TLS proxy may) gets the same fix: https://,
// not "check TARGET".
func TestHTTPForATLSPortThatHangsUpSuggestsHTTPS(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.StartTLS() // for its certificate
	t.Cleanup(ts.Close)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ts.TLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake() // plain HTTP fails it: hang up, say nothing
			_ = c.Close()
		}
	}()
	addr := ln.Addr().String()
	wantPreflightError(t, Config{Target: "http://" + addr + "/fhir", Token: refserver.DemoTokenA, RequestTimeout: 5 * time.Second},
		"does not answer", "the server speaks HTTPS (TLS) at "+addr+": did you mean TARGET=https://"+addr+"/fhir?")
}
