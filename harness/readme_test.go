package harness

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Every variable the harness reads is documented in the README, so the docs cannot drift from the code.
func TestEveryVariableIsInTheREADME(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range Variables {
		if !strings.Contains(string(raw), "`"+v.Name+"`") {
			t.Errorf("README.md does not document %s", v.Name)
		}
	}
}

// `make conformance` passes every variable of the harness through from the environment, so that secrets can
// be exported (or read from a file) instead of given as make arguments.
func TestTheMakefilePassesEveryVariableThrough(t *testing.T) {
	raw, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(raw), "CONFORMANCE_VARS :=")
	block, _, _ := strings.Cut(rest, "\nexport")
	passed := strings.Fields(strings.ReplaceAll(block, "\\", " "))
	for _, v := range Variables {
		if !slices.Contains(passed, v.Name) {
			t.Errorf("the Makefile's CONFORMANCE_VARS does not pass %s through", v.Name)
		}
	}
}
