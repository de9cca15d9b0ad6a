package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
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
		case isSecret(k):
			errs = append(errs, fmt.Sprintf("%s is a secret: keep it out of the file and name the environment variable that holds it under \"secrets\"", k))
		case k == "CONFIG" || !known[k]:
			msg := fmt.Sprintf("%s is not a variable of the harness", k)
			if meant := meantVariable(k); meant != "" && meant != "CONFIG" {
				msg += "; did you mean " + meant + "?"
			}
			errs = append(errs, msg)
		}
	}
	for _, k := range sortedKeys(f.Secrets) {
		from := f.Secrets[k]
		switch {
		case !isSecret(k):
			errs = append(errs, fmt.Sprintf("secrets: %s is not a secret variable (%s)", k, strings.Join(secretNames, ", ")))
		case getenv(k) != "" || getenv(k+"_FILE") != "":
			// The environment gives the secret itself, and wins over the file, as every variable does.
		case strings.TrimSpace(from) == "":
			errs = append(errs, fmt.Sprintf("secrets: %s names no environment variable", k))
		case getenv(from) == "":
			// Going on would run without that user's credentials: a run that looks like the server's fault.
			errs = append(errs, fmt.Sprintf("secrets: %s is read from the environment variable %s, which is not set: export %s (from your secret store), or set %s or %s_FILE", k, from, from, k, k))
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
			if getenv(key+"_FILE") != "" {
				return "" // the environment's NAME_FILE wins over the file's NAME
			}
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
