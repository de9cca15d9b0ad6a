package main

import (
	"encoding/json"
	"os"

	"github.com/ehealth-dk/fut-conformance/check"
)

// writeManifest hands a manifest to a child through a temporary file.
func writeManifest(m *check.Manifest) (string, error) {
	f, err := os.CreateTemp("", "benchscale-manifest-*.json")
	if err != nil {
		return "", err
	}
	defer f.Close()
	return f.Name(), json.NewEncoder(f).Encode(m)
}
