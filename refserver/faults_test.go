package refserver

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestUnknownFaultIsAConfigErrorListingTheKnownOnes(t *testing.T) {
	_, err := NewServer(Config{Faults: []string{"no-x-progress", "no-such-fault"}})
	if err == nil || !strings.Contains(err.Error(), "unknown fault no-such-fault") || !strings.Contains(err.Error(), "known faults: kickoff-no-content-location") {
		t.Fatalf("want an error naming the unknown fault and listing the known ones, got %v", err)
	}
	if _, err := NewServer(Config{Faults: []string{" no-x-progress ", ""}}); err != nil {
		t.Fatalf("a known fault, with blanks around it: %v", err)
	}
}

func TestEveryFaultHasARequirementAndADescription(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range Faults() {
		if f.Name == "" || f.Requirement == "" || f.Description == "" || seen[f.Name] {
			t.Errorf("fault %+v: needs a unique name, a requirement and a description", f)
		}
		seen[f.Name] = true
	}
}

// A fault changes only its own behaviour: here the kick-off loses Content-Location, while the rest answers
// as the conformant server does.
func TestAFaultIsOneDeviation(t *testing.T) {
	for _, faults := range [][]string{nil, {string(faultKickoffNoContentLocation)}} {
		srv, err := NewServer(Config{Faults: faults})
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.Handler())
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/fhir/$export", nil)
		req.Header.Set("Authorization", "Bearer "+DemoTokenA)
		req.Header.Set("Prefer", "respond-async")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		ts.Close()
		if resp.StatusCode != http.StatusAccepted || (resp.Header.Get("Content-Location") == "") != (faults != nil) {
			t.Errorf("faults %v: status %d, Content-Location %q", faults, resp.StatusCode, resp.Header.Get("Content-Location"))
		}
	}
}
