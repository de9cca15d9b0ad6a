package refserver

import (
	"net/http"
	"net/url"
	"testing"
)

// reuseKickoff kicks off with GET or POST, with or without Cache-Control: no-cache, and returns the polling URL.
func (e *env) reuseKickoff(token, method, query string, noCache bool) string {
	e.t.Helper()
	h := map[string]string{"Prefer": "respond-async"}
	if noCache {
		h["Cache-Control"] = "no-cache"
	}
	r := req{method: method, url: "/$export" + query, token: token, headers: h}
	if method == http.MethodPost {
		h["Content-Type"] = "application/fhir+json"
		r.body = `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Patient"}]}`
	}
	resp := e.do(r)
	wantStatus(e.t, resp, http.StatusAccepted)
	return resp.header.Get("Content-Location")
}

// In fut and hapi-8.0, as HAPI by default: an identical kick-off gets the same job, running or complete, GET
// and POST alike.
func TestExportJobReuse(t *testing.T) {
	for _, p := range []Profile{ProfileFUT, ProfileHAPI80} {
		e := newEnv(t, Config{Profile: p})
		first := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false)
		if again := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false); again != first {
			t.Errorf("%s: a second identical kick-off while running: got %s, want the first job %s", p, again, first)
		}
		if post := e.reuseKickoff(tokenA, http.MethodPost, "", false); post != first {
			t.Errorf("%s: the same export by POST: got %s, want %s", p, post, first)
		}
		e.clock.Advance(DefaultExportDuration)
		done := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false)
		if done != first {
			t.Errorf("%s: an identical kick-off after completion: got %s, want %s", p, done, first)
		}
		wantStatus(t, e.get(done, tokenA), http.StatusOK) // already complete: no wait at all
	}
}

// Cache-Control: no-cache always gets a new job, as HAPI's shouldUseCache.
func TestExportJobReuseSkippedWithNoCache(t *testing.T) {
	e := newEnv(t, Config{})
	first := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false)
	if fresh := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", true); fresh == first {
		t.Errorf("no-cache: got the first job %s again", first)
	}
	e.clock.Advance(DefaultExportDuration)
	fresh := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", true)
	if fresh == first {
		t.Errorf("no-cache after completion: got the completed job %s again", first)
	}
	wantStatus(t, e.get(fresh, tokenA), http.StatusAccepted)
}

// Reuse never crosses users, nor different parameters (a distinct _since is a distinct export), nor a
// cancelled job; the bulkdata profile never reuses.
func TestExportJobReuseOnlyForTheSameUserAndRequest(t *testing.T) {
	e := newEnv(t, Config{})
	first := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false)
	if other := e.reuseKickoff(tokenB, http.MethodGet, "?_type=Patient", false); other == first {
		t.Error("user B got user A's job")
	}
	since := "?_type=Patient&_since=" + url.QueryEscape("2001-01-01T00:00:00.001+00:00")
	if s := e.reuseKickoff(tokenA, http.MethodGet, since, false); s == first {
		t.Error("a kick-off with _since got the job of one without")
	}
	if all := e.reuseKickoff(tokenA, http.MethodGet, "", false); all == first {
		t.Error("an export of every type got the job of a Patient export")
	}
	wantStatus(t, e.do(req{method: http.MethodDelete, url: first, token: tokenA}), http.StatusAccepted)
	if after := e.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false); after == first {
		t.Error("a cancelled job was reused")
	}

	bd := newEnv(t, Config{Profile: ProfileBulkData})
	a := bd.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false)
	if b := bd.reuseKickoff(tokenA, http.MethodGet, "?_type=Patient", false); a == b {
		t.Error("bulkdata: an identical kick-off got the same job")
	}
}

func TestNoCacheDirective(t *testing.T) {
	for h, want := range map[string]bool{"no-cache": true, "max-age=0, No-Cache": true, `no-cache="x"`: true, "no-store": false, "": false} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		if h != "" {
			r.Header.Set("Cache-Control", h)
		}
		if got := noCache(r); got != want {
			t.Errorf("Cache-Control %q: noCache %t, want %t", h, got, want)
		}
	}
}
