package harness

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
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

// The harness links no testing of its own into the conformance binary (godog and testcontainers-go still
// import the testing package themselves).
func TestTheHarnessDoesNotImportTesting(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			if imp.Path.Value == `"testing"` {
				t.Errorf("%s imports testing", f)
			}
		}
	}
}
