package dockertest

import (
	"errors"
	"strings"
	"testing"
)

// Without Docker: a skip that says why on a laptop, a failure in CI (REQUIRE_DOCKER=1).
func TestVerdict(t *testing.T) {
	down := errors.New("Cannot connect to the Docker daemon at unix:///var/run/docker.sock")
	if fail, skip := verdict(nil, "1"); fail != "" || skip != "" {
		t.Errorf("engine up: fail=%q skip=%q, want neither", fail, skip)
	}
	if fail, skip := verdict(down, ""); fail != "" || !strings.Contains(skip, "Cannot connect") || !strings.Contains(skip, "REQUIRE_DOCKER=1") {
		t.Errorf("engine down on a laptop: fail=%q skip=%q, want a skip naming the cause and REQUIRE_DOCKER", fail, skip)
	}
	if fail, skip := verdict(down, "1"); skip != "" || !strings.Contains(fail, "Cannot connect") || !strings.Contains(fail, "required") {
		t.Errorf("engine down in CI: fail=%q skip=%q, want a failure naming the cause", fail, skip)
	}
}
