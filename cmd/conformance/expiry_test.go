package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A static JWT that expires while the export runs, at a server that then refuses it: the run could not check
// what came after, so it exits 2 and says to use a token that outlives the run, not that the server failed.
func TestATokenExpiringDuringTheRunExitsTwo(t *testing.T) {
	exp := time.Now().Add(3 * time.Second)
	enc := base64.RawURLEncoding.EncodeToString
	token := enc([]byte(`{"alg":"ES384"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d}`, exp.Unix()))) + ".c2ln"
	users := refserver.DefaultUsers()
	users[0].Token = token
	srv, err := refserver.NewServer(refserver.Config{Users: users, ExportDuration: 6 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "Bearer "+token && time.Now().After(exp) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	vars := map[string]string{"TARGET": ts.URL + "/fhir", "TOKEN": token, "TAGS": "@EXP-POLL-200", "REPORTS_DIR": t.TempDir()}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), nil, func(k string) string { return vars[k] }, &out, &errOut, nil); code != exitUsage {
		t.Fatalf("exit %d, want %d (could not run to the end):\n%s%s", code, exitUsage, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), "a 401 to a token that had expired by its exp claim") || !strings.Contains(errOut.String(), "a token that outlives the run") {
		t.Errorf("stderr does not say that the token expired:\n%s", errOut.String())
	}
}
