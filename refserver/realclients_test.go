package refserver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// realClient is the request sequence of an independent Bulk Data client, its headers as the client's code
// sends them (README, "A real client"); the test holds the reference server to what each client expects back.
type realClient struct {
	name     string
	profiles []Profile
	kickoff  req               // token is set by the test
	poll     map[string]string // headers of a status request
	download map[string]string // headers of an output file request
	cancel   map[string]string // headers of the DELETE sent after the downloads
	// cancelOK is the DELETE status the client takes as done, by profile; any other is logged and ignored by
	// Cumulus and Pathling, while Trifork's client only DELETEs a running export, so it is not sent for it.
	cancelOK map[Profile]int
	// strictItems: the client reads each manifest item as type and url and refuses any other field.
	strictItems bool
	// metadata, when set, is the headers of the GET [base]/metadata the client sends, without a token, before
	// its kick-off (the SMART bulk-data-client reads the CapabilityStatement first).
	metadata map[string]string
	// jsonBodies: the client parses the body of every 2xx answer as JSON (got's responseType "json": an empty
	// body is "", anything else must parse), the kick-off's, each poll's and the DELETE's.
	jsonBodies bool
	// errorArray: the client reads the manifest's error as an array that is present (the SMART client's
	// manifest.error.length), as the IG requires it ("error": required, SHOULD be [] when empty).
	errorArray bool
	// tokenIfRequired: the client sends its token with a file request only when requiresAccessToken is true.
	tokenIfRequired bool
}

// smartHeaders are the headers the SMART bulk-data-client's got instance adds to every request it sends:
// its user-agent hook (src/lib/request.ts) and got 11's default Accept-Encoding (decompress is on).
func smartHeaders(h map[string]string) map[string]string {
	out := map[string]string{"user-agent": "Bulk Data Client <https://github.com/smart-on-fhir/bulk-data-client>", "accept-encoding": "gzip, deflate, br"}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// smartBulkDataClient is smart-on-fhir/bulk-data-client (2f3dd797bd18907afcd17c39193f6be9257e12dc,
// src/lib/BulkDataClient.ts; src/lib/FileDownload.ts f92e4583; src/app.ts 28d6a87d; config/defaults.js
// b6b80dec), the IG authors' own client, as its CLI runs with --global, -t Observation,Patient, -s 2020-01-01
// and the default options (lenient: true, so Prefer carries handling=lenient; _outputFormat empty, so not sent).
// kickOff builds the query with URLSearchParams (',' ':' '+' encoded) in the order _outputFormat, _since (moment's
// format(): seconds and a numeric offset), _type; with --post it sends a Parameters body (got's json option:
// Content-Type application/json), one _type parameter a type. waitForExport polls with accept: application/json,
// waits max(Retry-After/10, 1 s), at most 10 s; FileDownload sends no Accept, accept-encoding with identity, and
// the token only when requiresAccessToken is true; ParseNDJSON checks each line's resourceType and, when the
// item has one, its count. cancelExport (the CLI's closing question, answered Y by default) sends DELETE with
// responseType json (got 11 then adds accept: application/json); a 4xx is printed by its beforeError hook.
func smartBulkDataClient(name string, post bool) realClient {
	c := realClient{
		name:     name,
		profiles: []Profile{ProfileBulkData, ProfileFUT, ProfileHAPI80},
		kickoff: req{method: http.MethodGet, url: "/$export?_since=2020-01-01T00%3A00%3A00%2B00%3A00&_type=Observation%2CPatient",
			headers: smartHeaders(map[string]string{"accept": "application/fhir+json", "prefer": "respond-async, handling=lenient"})},
		metadata:        smartHeaders(map[string]string{"accept": "application/json"}),
		poll:            smartHeaders(map[string]string{"accept": "application/json"}),
		download:        map[string]string{"user-agent": "Bulk Data Client <https://github.com/smart-on-fhir/bulk-data-client>", "accept-encoding": "gzip, deflate, br, identity"},
		cancel:          smartHeaders(map[string]string{"accept": "application/json"}),
		cancelOK:        map[Profile]int{ProfileBulkData: http.StatusAccepted, ProfileFUT: http.StatusNotFound, ProfileHAPI80: http.StatusNotFound},
		jsonBodies:      true,
		errorArray:      true,
		tokenIfRequired: true,
	}
	if post {
		c.kickoff = req{method: http.MethodPost, url: "/$export",
			headers: smartHeaders(map[string]string{"accept": "application/fhir+json", "prefer": "respond-async, handling=lenient", "content-type": "application/json"}),
			body: `{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"2020-01-01T00:00:00+00:00"},` +
				`{"name":"_type","valueString":"Observation"},{"name":"_type","valueString":"Patient"}]}`}
	}
	return c
}

var realClients = []realClient{
	{
		// smart-on-fhir/cumulus-etl 431060655c11736fa09de51800d5ab6cc3ff87c4, cumulus_etl/loaders/fhir/bulk_export.py
		// (BulkExporter) and cumulus_etl/fhir/fhir_client.py (Accept: application/fhir+json and
		// Accept-Charset: UTF-8 on every request unless overridden): _type as one comma list, urlencoded.
		name:     "cumulus-etl",
		profiles: []Profile{ProfileBulkData, ProfileFUT},
		kickoff: req{method: http.MethodGet, url: "/$export?_type=Condition%2CObservation%2CPatient&_since=2020-01-01T00%3A00%3A00%2B00%3A00",
			headers: map[string]string{"Prefer": "respond-async", "Accept": "application/fhir+json", "Accept-Charset": "UTF-8"}},
		poll:     map[string]string{"Accept": "application/json", "Accept-Charset": "UTF-8"},
		download: map[string]string{"Accept": "application/fhir+ndjson", "Accept-Charset": "UTF-8"},
		cancel:   map[string]string{"Accept": "application/fhir+json", "Accept-Charset": "UTF-8"},
		cancelOK: map[Profile]int{ProfileBulkData: http.StatusAccepted, ProfileFUT: http.StatusNotFound},
	},
	{
		// aehrc/pathling, au.csiro.pathling.export.ws.BulkExportTemplate.toHttpRequest (URIBuilder encodes
		// _outputFormat's '/' and '+'), checkStatus (accept: application/json); UrlDownloadTemplate sends no Accept.
		name:     "pathling",
		profiles: []Profile{ProfileBulkData, ProfileFUT},
		kickoff: req{method: http.MethodGet, url: "/$export?_outputFormat=application%2Ffhir%2Bndjson&_type=Observation%2CPatient&_since=2020-01-01T00%3A00%3A00.000Z",
			headers: map[string]string{"prefer": "respond-async", "accept": "application/fhir+json"}},
		poll:     map[string]string{"accept": "application/json"},
		download: map[string]string{},
		cancel:   map[string]string{"Accept": "application/json"},
		cancelOK: map[Profile]int{ProfileBulkData: http.StatusAccepted, ProfileFUT: http.StatusNotFound},
	},
	{
		// trifork/hapi-fhir-export-client 4a0d7ffa92b479a90053279cd6823d0fc9a98be4 (com.trifork.ehealth.export):
		// HapiFhirExportClient.initiate POSTs a Parameters body as application/json (HAPI's Constants.CT_JSON),
		// BDExportRequest.toParameters: _outputFormat, _since as a valueInstant, _type; no Accept anywhere. Its
		// BDExportFuture reads the manifest with a plain Jackson ObjectMapper (FAIL_ON_UNKNOWN_PROPERTIES) into
		// OutputItem{type,url}: HAPI's items exactly, as this server sends them in fut and hapi-8.0. The IG's
		// optional count, which it sends in bulkdata, fails that read: the client's departure (README).
		name:        "trifork hapi-fhir-export-client",
		profiles:    []Profile{ProfileFUT, ProfileHAPI80},
		strictItems: true,
		kickoff: req{method: http.MethodPost, url: "/$export",
			headers: map[string]string{"Prefer": "respond-async", "Content-Type": "application/json"},
			body: `{"resourceType":"Parameters","parameter":[{"name":"_outputFormat","valueString":"application/fhir+ndjson"},` +
				`{"name":"_since","valueInstant":"2023-10-27T00:00:00.000+02:00"},{"name":"_type","valueString":"Observation,Patient"}]}`},
		poll:     map[string]string{},
		download: map[string]string{},
	},
	smartBulkDataClient("smart bulk-data-client", false),
	smartBulkDataClient("smart bulk-data-client --post", true),
	// bulk-dqm/bulk-data-export-client (src/cli.ts 3164124e, config/defaults.js 0f5e9af2) runs the SMART
	// bulk-data-client's BulkDataClient (kickOff, waitForExport, downloadAllFiles) with its own defaults (lenient:
	// true), always for a group: Group/<id>/$export, which this system-level server answers at [base]/$export
	// (the adaptation interop/ makes for bulk_fhir_tools' Patient/$export). It sends no DELETE.
	func() realClient {
		c := smartBulkDataClient("bulk-dqm bulk-data-export-client", false)
		c.cancelOK = nil
		return c
	}(),
	{
		// projecttacoma/bulk-data-utilities, src/exportServerQueries.ts (47e39a85) and src/RequirementsQuery.ts
		// (7a721f40): GET <exportURL>/$export?_type=<types joined with a raw ','>&_typeFilter=<filters>, the filter
		// list always empty in that version (no DataRequirement adds a param), with axios and the headers Accept:
		// application/fhir+json and Prefer: respond-async on the kick-off and on every poll (each second while
		// 202); it returns results.data.output, which its caller downloads. It sends no Authorization at all: the
		// token here is the test's (every request of this server but metadata needs one). Its ndjsonRetriever
		// (01721e89) GETs each url with Content-Type: application/fhir+ndjson and axios's default Accept. In
		// bulkdata its empty _typeFilter is refused 400 (TestBlankTypeFilterIsNoFilterInHAPIProfiles).
		name:     "projecttacoma bulk-data-utilities",
		profiles: []Profile{ProfileFUT, ProfileHAPI80},
		kickoff: req{method: http.MethodGet, url: "/$export?_type=Observation,Patient&_typeFilter=",
			headers: map[string]string{"Accept": "application/fhir+json", "Prefer": "respond-async"}},
		poll:     map[string]string{"Accept": "application/fhir+json", "Prefer": "respond-async"},
		download: map[string]string{"Content-Type": "application/fhir+ndjson", "Accept": "application/json, text/plain, */*"},
	},
}

func TestRealClientsExportEndToEnd(t *testing.T) {
	for _, c := range realClients {
		for _, p := range c.profiles {
			t.Run(c.name+"/"+string(p), func(t *testing.T) {
				e := newEnv(t, Config{Profile: p, ExportDuration: 2 * time.Second})
				parsed := func(what string, r response) {
					t.Helper()
					if c.jsonBodies && len(r.body) > 0 && !json.Valid(r.body) {
						t.Fatalf("%s: expected an empty or a JSON body (the client parses it as JSON), got %q", what, r.body)
					}
				}
				if c.metadata != nil {
					r := e.do(req{method: http.MethodGet, url: "/metadata", headers: c.metadata})
					wantStatus(t, r, http.StatusOK)
					parsed("metadata", r)
				}
				k := c.kickoff
				k.token = tokenA
				r := e.do(k)
				wantStatus(t, r, http.StatusAccepted)
				parsed("kick-off", r)
				poll := r.header.Get("Content-Location")
				if poll == "" {
					t.Fatalf("kick-off: expected a Content-Location (every client reads only it), got none")
				}

				r = e.do(req{method: http.MethodGet, url: poll, token: tokenA, headers: c.poll})
				wantStatus(t, r, http.StatusAccepted)
				parsed("running poll", r)
				// Cumulus int()s it, Trifork Integer.parseInt()s it: delta-seconds, not an HTTP-date.
				if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
					t.Fatalf("running poll: expected Retry-After as whole seconds, got %q", r.header.Get("Retry-After"))
				}

				e.clock.Advance(2 * time.Second)
				r = e.do(req{method: http.MethodGet, url: poll, token: tokenA, headers: c.poll})
				wantStatus(t, r, http.StatusOK)
				var m testManifest
				if err := json.Unmarshal(r.body, &m); err != nil {
					t.Fatalf("manifest: expected JSON, got %v: %s", err, r.body)
				}
				if _, err := time.Parse(time.RFC3339Nano, m.TransactionTime); err != nil {
					t.Fatalf("manifest transactionTime: expected an ISO 8601 instant (Python's fromisoformat, Pathling's FhirInstantDeserializer), got %q", m.TransactionTime)
				}
				if len(m.Output) != 2 || len(m.Error) != 0 {
					t.Fatalf("manifest: expected the Observation and Patient files and no error file, got %s", r.body)
				}
				if c.errorArray {
					var fields map[string]json.RawMessage
					_ = json.Unmarshal(r.body, &fields)
					if e := bytes.TrimSpace(fields["error"]); len(e) == 0 || e[0] != '[' {
						t.Fatalf("manifest: expected error as an array (the client reads its length), got %s", r.body)
					}
				}
				if c.tokenIfRequired && (m.RequiresAccessToken == nil || !*m.RequiresAccessToken) {
					t.Fatalf("manifest: expected requiresAccessToken true (the client sends its token with a file request only then, and this server's files need it), got %s", r.body)
				}
				if c.strictItems {
					var items struct{ Output []json.RawMessage }
					_ = json.Unmarshal(r.body, &items)
					for _, raw := range items.Output {
						d := json.NewDecoder(bytes.NewReader(raw))
						d.DisallowUnknownFields()
						var it struct{ Type, URL string }
						if err := d.Decode(&it); err != nil {
							t.Fatalf("manifest item %s: expected type and url alone (the client's OutputItem), got %v", raw, err)
						}
					}
				}
				for _, o := range m.Output {
					r := e.do(req{method: http.MethodGet, url: o.URL, token: tokenA, headers: c.download})
					wantStatus(t, r, http.StatusOK)
					if ct := r.header.Get("Content-Type"); ct != contentTypeNDJSON {
						t.Fatalf("%s file: expected the NDJSON itself (each client writes the body verbatim), got Content-Type %q", o.Type, ct)
					}
					n := 0
					for sc := bufio.NewScanner(bytes.NewReader(r.body)); sc.Scan(); n++ {
						var res struct {
							ResourceType string `json:"resourceType"`
						}
						if err := json.Unmarshal(sc.Bytes(), &res); err != nil || res.ResourceType != o.Type {
							t.Fatalf("%s file, line %d: expected a %s resource, got %q (%v)", o.Type, n+1, o.Type, sc.Bytes(), err)
						}
					}
					if o.Count != nil && n != *o.Count {
						t.Fatalf("%s file: expected %d lines, as the manifest's count says, got %d", o.Type, *o.Count, n)
					}
				}

				if want, ok := c.cancelOK[p]; ok {
					r = e.do(req{method: http.MethodDelete, url: poll, token: tokenA, headers: c.cancel})
					if r.status != want {
						t.Fatalf("DELETE after the downloads: expected %d, got %d: %s", want, r.status, r.body)
					}
					parsed("DELETE", r)
				}
			})
		}
	}
}
