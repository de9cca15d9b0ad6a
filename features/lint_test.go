package features

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	gherkin "github.com/cucumber/gherkin/go/v26"
	messages "github.com/cucumber/messages/go/v21"
)

// The Gherkin lint (flagd-testbed's rules): named features and scenarios, no duplicate scenario names, at
// most 16 steps a scenario, a Background of at most 4 steps, no @wip, two-space indentation.
func TestGherkinLint(t *testing.T) {
	files, err := fs.Glob(FS, "*.feature")
	if err != nil || len(files) == 0 {
		t.Fatalf("no feature files: %v", err)
	}
	names := map[string]string{}
	for _, name := range files {
		raw, _ := FS.ReadFile(name)
		for _, problem := range lintFeature(name, raw, names) {
			t.Error(problem)
		}
	}
}

func lintFeature(file string, raw []byte, names map[string]string) []string {
	var problems []string
	report := func(line int64, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, args...)))
	}
	for i, line := range strings.Split(string(raw), "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.HasPrefix(strings.TrimLeft(line, " "), "\t") || indent%2 != 0 {
			report(int64(i+1), "indent with two spaces per level")
		}
		if strings.Contains(line, "@wip") {
			report(int64(i+1), "@wip has no place in main")
		}
	}
	doc, err := gherkin.ParseGherkinDocument(bytes.NewReader(raw), (&messages.Incrementing{}).NewId)
	if err != nil {
		return append(problems, fmt.Sprintf("%s: %v", file, err))
	}
	if doc.Feature == nil || strings.TrimSpace(doc.Feature.Name) == "" {
		return append(problems, file+": the feature needs a name")
	}
	var scenarios []*messages.Scenario
	var backgrounds []*messages.Background
	collect := func(children []*messages.FeatureChild) {
		for _, c := range children {
			if c.Scenario != nil {
				scenarios = append(scenarios, c.Scenario)
			}
			if c.Background != nil {
				backgrounds = append(backgrounds, c.Background)
			}
		}
	}
	collect(doc.Feature.Children)
	for _, c := range doc.Feature.Children {
		if c.Rule != nil {
			if strings.TrimSpace(c.Rule.Name) == "" {
				report(c.Rule.Location.Line, "the rule needs a name")
			}
			for _, rc := range c.Rule.Children {
				if rc.Scenario != nil {
					scenarios = append(scenarios, rc.Scenario)
				}
				if rc.Background != nil {
					backgrounds = append(backgrounds, rc.Background)
				}
			}
		}
	}
	for _, b := range backgrounds {
		if len(b.Steps) > 4 {
			report(b.Location.Line, "a Background of %d steps; keep it to 4", len(b.Steps))
		}
	}
	for _, s := range scenarios {
		switch {
		case strings.TrimSpace(s.Name) == "":
			report(s.Location.Line, "the scenario needs a name")
		case names[s.Name] != "":
			report(s.Location.Line, "scenario name %q is also at %s", s.Name, names[s.Name])
		default:
			names[s.Name] = fmt.Sprintf("%s:%d", file, s.Location.Line)
		}
		if len(s.Steps) > 16 {
			report(s.Location.Line, "%d steps; keep a scenario to 16", len(s.Steps))
		}
	}
	return problems
}

func TestGherkinLintCatchesItsRules(t *testing.T) {
	bad := "Feature: f\n  Scenario: same\n    Given a\n  Scenario: same\n    Given b\n   @wip\n  Scenario:\n    Given c\n"
	problems := lintFeature("bad.feature", []byte(bad), map[string]string{})
	for _, want := range []string{"also at", "@wip", "two spaces", "needs a name"} {
		if !strings.Contains(strings.Join(problems, "\n"), want) {
			t.Errorf("the lint must report %q, got %v", want, problems)
		}
	}
}
