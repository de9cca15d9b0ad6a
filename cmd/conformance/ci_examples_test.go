package main

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ehealth-dk/fut-conformance/harness"
)

// The CI examples of docs/ci are YAML their CI reads, and the commands they run are ones the harness accepts:
// the harness installed from this module's cmd/conformance (or a make target that exists), every variable
// one the harness reads, GATE=1, the secrets only in the environment, and both reports published.

// ciOnly are the variables an example may set that are not the harness's, with the reason.
var ciOnly = map[string]string{}

// secretVariables are the harness variables that hold secrets: never on a command line.
var secretVariables = []string{"TOKEN", "TOKEN_B", "CLIENT_SECRET", "CLIENT_SECRET_B"}

func TestGitHubActionsExample(t *testing.T) {
	var wf struct {
		Env  map[string]string `yaml:"env"`
		Jobs map[string]struct {
			Env   map[string]string `yaml:"env"`
			Steps []struct {
				Name string            `yaml:"name"`
				Uses string            `yaml:"uses"`
				If   string            `yaml:"if"`
				Run  string            `yaml:"run"`
				Env  map[string]string `yaml:"env"`
				With map[string]any    `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, "github-actions.yml", &wf)
	if len(wf.Jobs) == 0 {
		t.Fatal("github-actions.yml: no job")
	}
	for name, job := range wf.Jobs {
		var runs, installs bool
		var reportsDir string
		var published []string
		for _, st := range job.Steps {
			if strings.Contains(st.Run, "secrets.") {
				t.Errorf("job %s, step %q: a secret on the command line: %q", name, st.Name, st.Run)
			}
			if checkScript(t, "github-actions.yml", strings.Split(st.Run, "\n"), &runs) {
				installs = true
			}
			if runsHarness(st.Run) {
				env := merge(wf.Env, job.Env, st.Env)
				checkVariables(t, "github-actions.yml", env)
				for _, s := range secretVariables {
					if v, ok := env[s]; ok && !regexp.MustCompile(`^\$\{\{\s*secrets\.\w+\s*\}\}$`).MatchString(v) {
						t.Errorf("github-actions.yml: %s = %q: a secret must come from the secret store (${{ secrets.NAME }})", s, v)
					}
				}
				reportsDir = env["REPORTS_DIR"]
			}
			if strings.HasPrefix(st.Uses, "actions/upload-artifact@") {
				if !strings.Contains(st.If, "always()") && !strings.Contains(st.If, "!cancelled()") {
					t.Errorf("github-actions.yml: the upload step runs only if the gate passed (if: %q); a failed gate's reports matter most", st.If)
				}
				path, _ := st.With["path"].(string)
				published = strings.Fields(path)
			}
		}
		if !installs || !runs {
			t.Errorf("job %s: want the harness installed (go install .../cmd/conformance@version) and run; installs=%v runs=%v", name, installs, runs)
		}
		checkPublished(t, "github-actions.yml", reportsDir, published)
	}
}

func TestGitLabCIExample(t *testing.T) {
	var doc map[string]any
	readYAML(t, "gitlab-ci.yml", &doc)
	jobs := 0
	for name, v := range doc {
		job, ok := v.(map[string]any)
		if !ok || job["script"] == nil {
			continue
		}
		jobs++
		var script []string
		for _, line := range job["script"].([]any) {
			script = append(script, line.(string))
		}
		var runs bool
		if !checkScript(t, "gitlab-ci.yml", script, &runs) || !runs {
			t.Errorf("job %s: want the harness installed (go install .../cmd/conformance@version) and run:\n%s", name, strings.Join(script, "\n"))
		}
		env := map[string]string{}
		vars, _ := job["variables"].(map[string]any)
		for k, v := range vars {
			s, _ := v.(string)
			env[k] = s
			if slices.Contains(secretVariables, k) {
				t.Errorf("gitlab-ci.yml: %s is written in the job; a secret belongs in the project's CI/CD variables", k)
			}
		}
		checkVariables(t, "gitlab-ci.yml", env)
		artifacts, _ := job["artifacts"].(map[string]any)
		if artifacts["when"] != "always" {
			t.Errorf("gitlab-ci.yml: artifacts.when = %v, want always: a failed gate's reports matter most", artifacts["when"])
		}
		var published []string
		paths, _ := artifacts["paths"].([]any)
		for _, p := range paths {
			published = append(published, p.(string))
		}
		checkPublished(t, "gitlab-ci.yml", env["REPORTS_DIR"], published)
		reports, _ := artifacts["reports"].(map[string]any)
		if want := filepath.Join(env["REPORTS_DIR"], "junit.xml"); reports["junit"] != want {
			t.Errorf("gitlab-ci.yml: artifacts.reports.junit = %v, want %s (GitLab's test report)", reports["junit"], want)
		}
	}
	if jobs == 0 {
		t.Fatal("gitlab-ci.yml: no job")
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "ci", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

var goInstall = regexp.MustCompile(`^go install (\S+)@(\S+)$`)

// checkScript checks each command of a script: `go install` only of this module's cmd/conformance at a pinned
// version, `conformance` with no argument (the harness takes none: variables only), `make` only of a target
// that exists, nothing else; no secret variable on a line. It reports whether the harness is installed, and
// sets *runs when it is run.
func checkScript(t *testing.T, file string, lines []string, runs *bool) (installs bool) {
	t.Helper()
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, s := range secretVariables {
			if regexp.MustCompile(`\$\{?` + s + `\b`).MatchString(line) {
				t.Errorf("%s: %q puts $%s on a command line; the harness reads it from the environment", file, line, s)
			}
		}
		fields := strings.Fields(line)
		switch {
		case goInstall.MatchString(line):
			m := goInstall.FindStringSubmatch(line)
			if m[1] != modulePath(t)+"/cmd/conformance" || m[2] == "latest" {
				t.Errorf("%s: %q: want %s/cmd/conformance at a pinned version", file, line, modulePath(t))
			}
			installs = true
		case fields[0] == "conformance":
			if len(fields) > 1 {
				t.Errorf("%s: %q: the harness takes no argument (it exits 2); configure it with variables", file, line)
			}
			*runs = true
		case fields[0] == "make":
			for _, target := range fields[1:] {
				if !strings.Contains(target, "=") && !slices.Contains(makeTargets(t), target) {
					t.Errorf("%s: %q: the Makefile has no target %s", file, line, target)
				}
			}
			*runs = *runs || slices.Contains(fields, "conformance")
		default:
			t.Errorf("%s: %q: a command the example should not need (want go install, conformance or make)", file, line)
		}
	}
	return installs
}

func runsHarness(script string) bool {
	for _, line := range strings.Split(script, "\n") {
		if f := strings.Fields(line); len(f) > 0 && (f[0] == "conformance" || f[0] == "make" && slices.Contains(f, "conformance")) {
			return true
		}
	}
	return false
}

// checkVariables: every variable is one the harness reads (or a CI-only one, listed), and GATE=1 is set.
func checkVariables(t *testing.T, file string, env map[string]string) {
	t.Helper()
	known := map[string]bool{}
	for _, v := range harness.Variables {
		known[v.Name] = true
	}
	for k := range env {
		if _, ok := ciOnly[k]; !known[k] && !ok {
			t.Errorf("%s: variable %s is not one the harness reads (harness.Variables)", file, k)
		}
	}
	if env["GATE"] != "1" {
		t.Errorf("%s: GATE = %q, want 1: the example is a release gate", file, env["GATE"])
	}
}

func checkPublished(t *testing.T, file, reportsDir string, published []string) {
	t.Helper()
	if reportsDir == "" {
		reportsDir = "reports"
	}
	for _, f := range []string{"junit.xml", "index.html"} {
		if want := filepath.Join(reportsDir, f); !slices.Contains(published, want) {
			t.Errorf("%s: %s is not published (published: %v)", file, want, published)
		}
	}
}

func merge(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func modulePath(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	return strings.TrimPrefix(first, "module ")
}

// makeTargets are the Makefile's targets (lines "name: ... ## help").
func makeTargets(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := regexp.MustCompile(`^([a-z-]+):`).FindStringSubmatch(sc.Text()); m != nil {
			targets = append(targets, m[1])
		}
	}
	return targets
}
