package check

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Every file URL of a manifest is absolute, with a host: the schema holds a url to its scheme only, and
// "https:///Binary/1" passed it. An error item is of type OperationOutcome: an error file holds them (BDA2).
func TestManifestURLsAreAbsoluteAndErrorFilesOperationOutcomes(t *testing.T) {
	manifest := func(output, errs string) *Exchange {
		return &Exchange{Method: "GET", URL: "http://f/$export-poll-status?_jobId=1", Status: http.StatusOK,
			Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"transactionTime":"2026-01-01T00:00:00Z","request":"http://f/$export","requiresAccessToken":true,` +
				`"output":[` + output + `],"error":[` + errs + `]}`)}
	}
	good := `{"type":"Patient","url":"https://h/fhir/Binary/1"}`
	if _, err := CheckManifest("", manifest(good, "")); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
	for name, c := range map[string]struct{ output, errs, names string }{
		"no host in output":             {`{"type":"Patient","url":"https:///Binary/1"}`, "", "url of manifest output item 0 (Patient)"},
		"no host in error":              {good, `{"type":"OperationOutcome","url":"https:///Binary/9"}`, "url of manifest error item 0 (OperationOutcome)"},
		"second output item":            {good + `,{"type":"Observation","url":"http:///x"}`, "", "url of manifest output item 1 (Observation)"},
		"an error item of another type": {good, `{"type":"Patient","url":"https://h/fhir/Binary/9"}`, `type of manifest error item 0 (https://h/fhir/Binary/9): expected OperationOutcome`},
		// BDA2: one item for each generated file; a client would import a file listed twice twice
		"a file listed twice":          {good + `,{"type":"Observation","url":"https://h/fhir/Binary/2"},` + good, "", `url of manifest output item 2 (Patient): expected each file listed once`},
		"an output file as error file": {good, `{"type":"OperationOutcome","url":"https://h/fhir/Binary/1"}`, `listed already as output item 0`},
	} {
		_, err := CheckManifest("", manifest(c.output, c.errs))
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.names) {
			t.Errorf("%s: want a violation naming %q, got %v", name, c.names, err)
		}
	}
}

// BDA2: request is the full URL of the kick-off; a path, or no host, is not one. Its host is the server's
// own view (FUT's example names an internal host), so any host passes.
func TestTheManifestsRequestIsTheKickoffsFullURL(t *testing.T) {
	for req, ok := range map[string]bool{
		"http://task.local.ehealth.sundhed.dk:31380/fhir/$export?_format=json": true,
		"https://f.example/fhir/$export":                                       true,
		"$export?_type=Patient":                                                false,
		"/fhir/$export":                                                        false,
		"https:///fhir/$export":                                                false,
	} {
		body := `{"transactionTime":"2026-01-01T00:00:00Z","request":"` + req + `","requiresAccessToken":true,"output":[],"error":[]}`
		_, err := CheckManifest("EXP-POLL-200", &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
		if (err == nil) != ok {
			t.Errorf("request %q: got %v, want pass %v", req, err, ok)
		}
	}
}

// BDA2 "deleted": each line a transaction Bundle of one or more entries whose request is a DELETE of a url;
// the manifest's deleted items are therefore of type Bundle.
func TestADeletedFileHoldsTransactionBundlesOfDeletes(t *testing.T) {
	ok := `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/1"}},{"request":{"method":"DELETE","url":"Patient/2"}}]}`
	if err := DeletedBundle([]byte(ok)); err != nil {
		t.Fatalf("a transaction of two DELETEs: %v", err)
	}
	for bad, want := range map[string]string{
		`{"resourceType":"Bundle","type":"collection","entry":[{"request":{"method":"DELETE","url":"Patient/1"}}]}`: `type "collection"`,
		`{"resourceType":"Bundle","type":"transaction"}`:                                                            "no entry",
		`{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:x"}]}`:                         "entry 0 without request",
		`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"Patient/1"}}]}`:   `entry 0 request.method "PUT"`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE"}}]}`:                  "entry 0 without request.url",
	} {
		var f *LineFault
		if err := DeletedBundle([]byte(bad)); !errors.As(err, &f) || !strings.Contains(f.Got, want) {
			t.Errorf("%s: want a fault naming %s, got %v", bad, want, err)
		}
	}
	body := `{"transactionTime":"2026-01-01T00:00:00Z","request":"https://f.example/fhir/$export","requiresAccessToken":true,"output":[],"error":[],` +
		`"deleted":[{"type":"Patient","url":"https://f.example/fhir/Binary/9"}]}`
	_, err := CheckManifest("EXP-POLL-200", &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
	if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "deleted item 0") {
		t.Errorf("a deleted item of type Patient: want a violation naming it, got %v", err)
	}
}

// A FileCheck.Line fault is the line's violation: the file, the line number, what was expected and got.
func TestALineFaultNamesTheFileAndTheLine(t *testing.T) {
	lines := `{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"DELETE","url":"Patient/1"}}]}` + "\n" +
		`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"GET","url":"Patient/2"}}]}` + "\n"
	x := &Exchange{Method: "GET", URL: "https://f/del", Status: 200, Header: http.Header{"Content-Type": {NDJSON}}}
	_, err := ReadOutputStream(ManifestItem{Type: "Bundle", URL: "https://f/del"}, x, strings.NewReader(lines), FileCheck{Line: DeletedBundle})
	if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "output file https://f/del line 2") || !strings.Contains(err.Error(), `request.method "GET"`) {
		t.Fatalf("want a violation of line 2 naming the method, got %v", err)
	}
}

// count is a JSON number: 3.0 and 3e0 are the whole number 3, as the schema's integer has it; 3.5 is no
// count of resources.
func TestAManifestCountIsAnyJSONFormOfAWholeNumber(t *testing.T) {
	for raw, want := range map[string]int64{"3": 3, "3.0": 3, "3e0": 3, "0.3e1": 3} {
		var it ManifestItem
		if err := json.Unmarshal([]byte(`{"type":"Patient","url":"https://f/1","count":`+raw+`}`), &it); err != nil || it.Count == nil || *it.Count != want {
			t.Errorf("count %s: got %v, %v; want %d", raw, it.Count, err, want)
		}
	}
	var it ManifestItem
	if err := json.Unmarshal([]byte(`{"type":"Patient","url":"https://f/1","count":3.5}`), &it); err == nil {
		t.Errorf("count 3.5 read as %d", *it.Count)
	}
	if err := json.Unmarshal([]byte(`{"type":"Patient","url":"https://f/1"}`), &it); err != nil || it.Count != nil || it.Type != "Patient" {
		t.Errorf("no count: %+v, %v", it, err)
	}
}

// BDA2: transactionTime is "the server's time when the query is run", so it cannot be later than the answer
// that reports the query done: a transactionTime past the response's own Date, beyond clock skew between a
// server's nodes (TransactionTimeSkew), fails. Local time written with a UTC offset, an hour or two ahead in
// Denmark, is the fault this finds. Without a Date nothing is compared: the harness's clock is not the server's.
func TestATransactionTimeAfterTheManifestsOwnDateFails(t *testing.T) {
	const date = "Thu, 03 Dec 2026 10:00:00 GMT"
	for tt, ok := range map[string]bool{
		"2026-12-03T09:59:59.123+00:00": true,
		"2026-12-03T10:00:00.999Z":      true,
		"2026-12-03T10:04:00+00:00":     true, // within the skew
		"2026-12-03T11:00:00+01:00":     true, // the same instant in Copenhagen
		"2026-12-03T11:00:00+00:00":     false,
		"2026-12-03T10:06:00Z":          false,
	} {
		body := `{"transactionTime":"` + tt + `","request":"http://f/$export","requiresAccessToken":true,"output":[],"error":[]}`
		x := &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "Date": {date}}, Body: []byte(body)}
		_, err := CheckManifest("EXP-POLL-200", x)
		if (err == nil) != ok || !ok && !strings.Contains(err.Error(), "transactionTime") {
			t.Errorf("transactionTime %s, Date %s: got %v, want pass %v", tt, date, err, ok)
		}
		x.Header.Del("Date")
		if _, err := CheckManifest("EXP-POLL-200", x); err != nil {
			t.Errorf("transactionTime %s without a Date: got %v, want nothing compared", tt, err)
		}
	}
}

// BDA2 "Complete Status": request is the full URL of the original kick-off (a POST's without its parameters),
// and transactionTime the server's time when the query ran, after the kick-off arrived. A manifest naming the
// polling location, another kick-off's _since or _type, or a time before the kick-off's answer (beyond the
// clock skew allowed) is not the kick-off's; the host, the base path, other parameters and another spelling of
// the same instant are the server's to choose.
func TestTheManifestAnswersItsOwnKickoff(t *testing.T) {
	const date = "Thu, 03 Dec 2026 18:00:00 GMT"
	get := &Exchange{Method: http.MethodGet, URL: "https://f.example/fhir/$export?_outputFormat=application%2Ffhir%2Bndjson&_since=1975-03-04T05%3A06%3A07.089Z&_type=Patient%2CObservation", Header: http.Header{"Date": {date}}}
	post := &Exchange{Method: http.MethodPost, URL: "https://f.example/fhir/$export", Header: http.Header{"Date": {date}}}
	const after, before = "2026-12-03T18:00:01.500+00:00", "2026-12-03T17:50:00Z"
	for name, c := range map[string]struct {
		kickoff                  *Exchange
		request, transactionTime string
		fails                    string // "" passes
	}{
		"the GET kick-off's own URL":               {get, get.URL, after, ""},
		"another host, base path and order":        {get, "http://task.local:31380/fhir/$export?_type=Patient,Observation&_since=1975-03-04T05:06:07.089Z&_format=json", after, ""},
		"the same _since written another way":      {get, "https://f.example/fhir/$export?_since=1975-03-04T06:06:07.089%2B01:00&_type=Patient%2CObservation", after, ""},
		"a POST's URL without its parameters":      {post, "http://internal:8080/fhir/$export", after, ""},
		"a POST's URL with parameters of its URL":  {post, "https://f.example/fhir/$export?_format=json&_pretty=true", after, ""},
		"within the clock skew before the kickoff": {post, post.URL, "2026-12-03T17:56:00Z", ""},
		"the polling location":                     {post, "https://f.example/fhir/$export-poll-status?_jobId=1", after, `names "$export-poll-status", not the kick-off's $export`},
		"a GET's URL without its query":            {get, "https://f.example/fhir/$export", after, `whose _since is ""`},
		"another kick-off's _since":                {get, "https://f.example/fhir/$export?_since=1979-01-01T00:00:00.000Z&_type=Patient%2CObservation", after, `whose _since is "1979-01-01T00:00:00.000Z"`},
		"another kick-off's _type":                 {get, "https://f.example/fhir/$export?_since=1975-03-04T05:06:07.089Z&_type=Patient", after, `whose _type is "Patient"`},
		"a query before the kick-off":              {post, post.URL, before, "manifest transactionTime: expected the time the export's query ran: not before the kick-off's answer, Date " + date},
	} {
		m := &Manifest{Request: c.request, TransactionTime: c.transactionTime}
		err := checkManifestKickoff("EXP-POLL-200", m, c.kickoff)
		switch {
		case c.fails == "" && err != nil:
			t.Errorf("%s: want a pass, got %v", name, err)
		case c.fails != "" && (!errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: want a violation saying %q, got %v", name, c.fails, err)
		}
	}
	// without the kick-off's Date, the time is not compared: the harness's clock is not the server's
	noDate := &Exchange{Method: http.MethodPost, URL: post.URL, Header: http.Header{}}
	if err := checkManifestKickoff("", &Manifest{Request: post.URL, TransactionTime: "2001-01-01T00:00:00Z"}, noDate); err != nil {
		t.Errorf("no Date on the kick-off: %v", err)
	}
}

// RFC 3986 §3.1: a scheme is case-insensitive ("HTTPS" is "https"; producers should write it in lower case,
// and a client should accept either). A file URL whose scheme is in upper case is still an absolute URL.
func TestAFileURLsSchemeIsCaseInsensitive(t *testing.T) {
	body := `{"transactionTime":"2026-01-01T00:00:00Z","request":"HTTPS://f.example/fhir/$export","requiresAccessToken":true,` +
		`"output":[{"type":"Patient","url":"HTTPS://f.example/fhir/Binary/1"}],"error":[{"type":"OperationOutcome","url":"Http://f.example/fhir/Binary/2"}]}`
	if _, err := CheckManifest("EXP-POLL-200", &Exchange{Method: "GET", URL: "u", Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}); err != nil {
		t.Fatalf("file URLs with an upper-case scheme: %v", err)
	}
}

// BDA2 "Complete Status": request is the full URL of the kick-off, which a server writes its own way. _type is
// a set of resource types: another order, repeated types or repeated parameters are the same request. _since
// is an instant: another offset or fractional seconds are the same instant, and a "+" of the offset written
// unencoded arrives query-decoded as a space, still the "+" it was. Each was failed as another kick-off's.
func TestTheManifestRequestComparesTypesAsASetAndSinceAsAnInstant(t *testing.T) {
	kickoff := func(query string) *Exchange {
		return &Exchange{Method: http.MethodGet, URL: "https://f.example/fhir/$export?" + query, Header: http.Header{}}
	}
	const tt = "2026-12-03T18:00:01Z"
	for name, c := range map[string]struct {
		sent, request string
		fails         string // "" passes
	}{
		"_type in another order":             {"_type=Patient%2CObservation", "_type=Observation,Patient", ""},
		"_type repeated as parameters":       {"_type=Patient%2CObservation", "_type=Observation&_type=Patient", ""},
		"_type with a type twice":            {"_type=Patient%2CObservation", "_type=Observation,Patient,Patient", ""},
		"_type sent as repeated parameters":  {"_type=Patient&_type=Observation", "_type=Observation%2CPatient", ""},
		"_type with spaces after its commas": {"_type=Patient%2CObservation", "_type=Observation,%20Patient", ""},
		"_type of another set":               {"_type=Patient%2CObservation", "_type=Patient,Encounter", `whose _type is "Patient,Encounter"`},
		"_type of fewer types":               {"_type=Patient%2CObservation", "_type=Observation", `whose _type is "Observation"`},
		"_since in another offset":           {"_since=2020-01-01T00%3A00%3A00Z", "_since=2020-01-01T01:00:00%2B01:00", ""},
		"_since with an unencoded + offset":  {"_since=2020-01-01T00%3A00%3A00Z", "_since=2020-01-01T01:00:00+01:00", ""},
		"_since sent with a + offset":        {"_since=2020-01-01T01%3A00%3A00%2B01%3A00", "_since=2020-01-01T00:00:00.000Z", ""},
		"_since with fractional seconds":     {"_since=2020-01-01T00%3A00%3A00Z", "_since=2020-01-01T00:00:00.000Z", ""},
		"_since of another instant":          {"_since=2020-01-01T00%3A00%3A00Z", "_since=2020-01-01T00:00:00+01:00", `whose _since is "2020-01-01T00:00:00 01:00"`},
		"_since a second later":              {"_since=2020-01-01T00%3A00%3A00Z", "_since=2020-01-01T00:00:01Z", `whose _since is "2020-01-01T00:00:01Z"`},
		"_since not an instant":              {"_since=2020-01-01T00%3A00%3A00Z", "_since=2020-01-01", `whose _since is "2020-01-01"`},
	} {
		m := &Manifest{Request: "http://internal:8080/fhir/$export?" + c.request, TransactionTime: tt}
		err := checkManifestKickoff("EXP-POLL-200", m, kickoff(c.sent))
		switch {
		case c.fails == "" && err != nil:
			t.Errorf("%s: want a pass, got %v", name, err)
		case c.fails != "" && (!errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), c.fails)):
			t.Errorf("%s: want a violation saying %q, got %v", name, c.fails, err)
		}
	}
}

// checkManifestKickoff is what the export steps hold a manifest to where the profile tolerates no
// transactionTime before the kick-off (fut, hapi-8.0).
func checkManifestKickoff(req string, m *Manifest, kickoff *Exchange) error {
	if err := CheckManifestRequest(req, m, kickoff); err != nil {
		return err
	}
	return CheckTransactionTimeAfterKickoff(req, m, kickoff)
}
