package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestFaultsFlag(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	o, err := parseOptions([]string{"-faults", "no-x-progress,no-expires"}, env(nil), &bytes.Buffer{})
	if err != nil || strings.Join(o.cfg.Faults, ",") != "no-x-progress,no-expires" {
		t.Fatalf("-faults: %v %v", o.cfg.Faults, err)
	}
	o, err = parseOptions(nil, env(map[string]string{"FAULTS": "no-expires"}), &bytes.Buffer{})
	if err != nil || strings.Join(o.cfg.Faults, ",") != "no-expires" {
		t.Fatalf("FAULTS: %v %v", o.cfg.Faults, err)
	}
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-faults", "no-such-fault"}, env(nil), &bytes.Buffer{})
	if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "known faults:") {
		t.Fatalf("an unknown fault must be a usage error listing the known ones, got %v", err)
	}
}
