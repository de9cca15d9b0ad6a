// Package hostiletest serves the hostile targets that the tests of more than one package run against (harness,
// cmd/conformance): the reference server with one behaviour broken. It imports testing, so only _test files
// import it; the harness's own packages never do (harness/readme_test.go checks).
package hostiletest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// DroppingKickoffs starts the reference server (default configuration) behind a handler that closes the
// connection of every export kick-off unanswered and serves every other request as the server does: a run
// passes the preflight, then each scenario that kicks off an export ends on a transport error. The server is
// closed when the test ends.
func DroppingKickoffs(t testing.TB) *httptest.Server {
	t.Helper()
	srv, err := refserver.NewServer(refserver.Config{})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/$export") {
			h.ServeHTTP(w, r)
			return
		}
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil { // an answer would be sent instead of a dropped connection: the test would prove nothing
			t.Errorf("drop the connection of %s %s: %v", r.Method, r.URL, err)
			return
		}
		conn.Close()
	}))
	t.Cleanup(ts.Close)
	return ts
}
