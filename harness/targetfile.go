package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
)

// A target file keeps a vendor's setup in version control: the values of the run's variables, and for the
// secret ones only the name of the environment variable that holds them, never the secret itself.
//
//	{
//	  "name": "Vendor X staging",
//	  "variables": {"TARGET": "https://fhir.vendorx.example/fhir", "PROFILE": "fut", "MAX_WAIT": "15m"},
//	  "secrets": {"TOKEN": "VENDORX_TOKEN", "TOKEN_B": "VENDORX_TOKEN_B"}
//	}
//
// Variables set in the environment win over the file.
type targetFile struct {
	Name      string            `json:"name"`
	Variables map[string]string `json:"variables"`
	Secrets   map[string]string `json:"secrets"`
}

// secretVariables may only be named in a target file's "secrets", by the environment variable holding them.
var secretVariables = []string{"TOKEN", "TOKEN_B", "CLIENT_SECRET", "CLIENT_SECRET_B"}

// withTargetFile returns getenv backed by the target file that CONFIG names, if any.
func withTargetFile(getenv func(string) string) (func(string) string, string, error) {
	path := strings.TrimSpace(getenv("CONFIG"))
	if path == "" {
		return getenv, "", nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("CONFIG=%q: %w", path, err)
	}
	var f targetFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, "", fmt.Errorf("CONFIG=%q: expected {\"name\", \"variables\": {...}, \"secrets\": {...}}: %w", path, err)
	}
	known := map[string]bool{}
	for _, v := range Variables {
		known[v.Name] = true
	}
	var errs []string
	for _, k := range sortedKeys(f.Variables) {
		switch {
		case slices.Contains(secretVariables, k):
			errs = append(errs, fmt.Sprintf("%s is a secret: keep it out of the file and name the environment variable that holds it under \"secrets\"", k))
		case k == "CONFIG" || !known[k]:
			errs = append(errs, fmt.Sprintf("%s is not a variable of the harness", k))
		}
	}
	for _, k := range sortedKeys(f.Secrets) {
		if !slices.Contains(secretVariables, k) {
			errs = append(errs, fmt.Sprintf("secrets: %s is not a secret variable (%s)", k, strings.Join(secretVariables, ", ")))
		}
	}
	if len(errs) > 0 {
		return nil, "", fmt.Errorf("CONFIG=%q: %s", path, strings.Join(errs, "; "))
	}
	name := f.Name
	if name == "" {
		name = path
	}
	return func(key string) string {
		if v := getenv(key); v != "" {
			return v
		}
		if from, ok := f.Secrets[key]; ok {
			return getenv(from)
		}
		return f.Variables[key]
	}, name, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// features names the two features for FEATURES and the summary.
var featureTags = map[string]string{"export": "$export-poll-status", "report": "$get-report-job-status"}

// selection turns FEATURES and TAGS into one godog tag expression, and lists the features left out.
func selection(features []string, tags string) (expr string, left []string, err error) {
	if err := validateTags(tags); err != nil {
		return "", nil, err
	}
	if len(features) == 0 || len(features) == len(featureTags) {
		return tags, nil, nil
	}
	var terms []string
	for _, f := range features {
		terms = append(terms, "@"+f)
	}
	for _, f := range sortedKeys(featureTags) {
		if !slices.Contains(features, f) {
			left = append(left, fmt.Sprintf("the %s feature (%s)", f, featureTags[f]))
		}
	}
	expr = strings.Join(terms, ",")
	if tags != "" {
		expr += " && " + tags
	}
	return expr, left, nil
}

// validateTags refuses what godog's tag filter would panic on or silently misread: empty terms, and the
// "not"/"and"/"or" words of other tools. godog's syntax is "@a,@b && ~@c": commas OR, && AND, ~ NOT.
func validateTags(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return nil
	}
	for _, group := range strings.Split(expr, "&&") {
		for _, term := range strings.Split(group, ",") {
			term = strings.TrimSpace(term)
			name := strings.TrimPrefix(strings.TrimPrefix(term, "~"), "@")
			if name == "" || strings.ContainsAny(name, " ()!|@~") {
				return fmt.Errorf("TAGS=%q: %q is not a tag term; godog's syntax is '@a,@b && ~@c' (comma: or, &&: and, ~: not)", expr, term)
			}
		}
	}
	return nil
}

func parseFeatures(v string) ([]string, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "all" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if _, ok := featureTags[f]; !ok {
			return nil, fmt.Errorf("FEATURES=%q: %q is not a feature; expected export, report or both (export,report)", v, f)
		}
		out = append(out, f)
	}
	return out, nil
}
