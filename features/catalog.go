package features

import (
	"fmt"
	"io/fs"
	"strings"

	gherkin "github.com/cucumber/gherkin/go/v26"
	messages "github.com/cucumber/messages/go/v21"
)

// IsRequirementID tells a requirement ID (EXP-POLL-202) from a capability or applicability tag (cross-user,
// export): upper-case letters and digits in at least two parts joined by '-', the first starting with a
// letter. It is the one definition of the grammar; every other package asks it.
func IsRequirementID(s string) bool {
	parts := strings.Split(s, "-")
	if len(parts) < 2 || parts[0] == "" || parts[0][0] < 'A' || parts[0][0] > 'Z' {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		for _, r := range p {
			if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
				return false
			}
		}
	}
	return true
}

// RequirementIDs picks the requirement IDs out of a scenario's tags ("@EXP-POLL-202" or "EXP-POLL-202"), in
// tag order: the first is the scenario's primary requirement.
func RequirementIDs(tags []string) []string {
	var ids []string
	for _, tag := range tags {
		if id := strings.TrimPrefix(tag, "@"); IsRequirementID(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Scenario is one scenario of the features as godog runs it: an Examples row of a Scenario Outline is one
// scenario of its own.
type Scenario struct {
	File         string   // the feature file, e.g. "export_poll_status.feature"
	Feature      string   // the feature's name
	Name         string   // the scenario's name, placeholders filled in
	Tags         []string // every tag, the feature's included, without '@'
	Requirements []string // the requirement IDs among Tags, primary first
}

// Scenarios lists every scenario of the embedded features, in file order. Tests derive their counts from it
// instead of writing them down.
func Scenarios() ([]Scenario, error) {
	files, err := fs.Glob(FS, "*.feature")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no feature files embedded: %v", err)
	}
	var out []Scenario
	for _, file := range files {
		raw, err := FS.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		doc, err := gherkin.ParseGherkinDocument(strings.NewReader(string(raw)), (&messages.Incrementing{}).NewId)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", file, err)
		}
		if doc.Feature == nil {
			return nil, fmt.Errorf("%s: no Feature", file)
		}
		for _, p := range gherkin.Pickles(*doc, file, (&messages.Incrementing{}).NewId) {
			s := Scenario{File: file, Feature: doc.Feature.Name, Name: p.Name}
			for _, t := range p.Tags {
				s.Tags = append(s.Tags, strings.TrimPrefix(t.Name, "@"))
			}
			s.Requirements = RequirementIDs(s.Tags)
			out = append(out, s)
		}
	}
	return out, nil
}

// FeatureNames maps each feature file to its feature's name.
func FeatureNames() (map[string]string, error) {
	scenarios, err := Scenarios()
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, s := range scenarios {
		names[s.File] = s.Feature
	}
	return names, nil
}
