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

func TestThrottleAndPollPathOptions(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	o, err := parseOptions([]string{"-throttle", "-poll-path", "bulkstatus"}, env(nil), &bytes.Buffer{})
	if err != nil || !o.cfg.Throttle || o.cfg.PollPath != "bulkstatus" {
		t.Fatalf("flags: throttle %v, poll path %q, err %v", o.cfg.Throttle, o.cfg.PollPath, err)
	}
	o, err = parseOptions(nil, env(map[string]string{"REFSERVER_THROTTLE": "1", "REFSERVER_POLL_PATH": "bulkstatus"}), &bytes.Buffer{})
	if err != nil || !o.cfg.Throttle || o.cfg.PollPath != "bulkstatus" {
		t.Fatalf("environment: throttle %v, poll path %q, err %v", o.cfg.Throttle, o.cfg.PollPath, err)
	}
	if o, err = parseOptions(nil, env(nil), &bytes.Buffer{}); err != nil || o.cfg.Throttle || o.cfg.PollPath != "" {
		t.Fatalf("defaults: throttle %v, poll path %q, err %v", o.cfg.Throttle, o.cfg.PollPath, err)
	}
	if _, err = parseOptions(nil, env(map[string]string{"REFSERVER_THROTTLE": "sometimes"}), &bytes.Buffer{}); !errors.As(err, new(*usageError)) {
		t.Fatalf("REFSERVER_THROTTLE=sometimes: expected a usage error, got %v", err)
	}
	err = run(context.Background(), []string{"-addr", "127.0.0.1:0", "-poll-path", "a/b"}, env(nil), &bytes.Buffer{})
	if !errors.As(err, new(*usageError)) || !strings.Contains(err.Error(), "poll path") {
		t.Fatalf("-poll-path a/b must be a usage error naming the poll path, got %v", err)
	}
}

func TestFailExportsOption(t *testing.T) {
	env := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	for name, c := range map[string]struct {
		args []string
		vars map[string]string
		want bool
	}{"flag": {[]string{"-fail-exports"}, nil, true}, "environment": {nil, map[string]string{"REFSERVER_FAIL_EXPORTS": "1"}, true}, "default": {nil, nil, false}} {
		if o, err := parseOptions(c.args, env(c.vars), &bytes.Buffer{}); err != nil || o.cfg.FailExports != c.want {
			t.Errorf("%s: FailExports %v, want %v (err %v)", name, o.cfg.FailExports, c.want, err)
		}
	}
	if _, err := parseOptions(nil, env(map[string]string{"REFSERVER_FAIL_EXPORTS": "sometimes"}), &bytes.Buffer{}); !errors.As(err, new(*usageError)) {
		t.Fatalf("REFSERVER_FAIL_EXPORTS=sometimes: expected a usage error, got %v", err)
	}
}
