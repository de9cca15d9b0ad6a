package harness

import (
	"os"
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
