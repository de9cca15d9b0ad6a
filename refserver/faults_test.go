package refserver

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
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

// A row is either a rewrite of one answer or a hook in a handler, never both or neither.
func TestEveryFaultIsARewriteOrAHook(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range faultTable {
		if f.Name == "" || f.Requirement == "" || f.Description == "" || seen[f.Name] {
			t.Errorf("fault %+v: needs a unique name, a requirement and a description", f.Fault)
		}
		seen[f.Name] = true
		if (f.on == answerNone) != (f.rewrite == nil) {
			t.Errorf("fault %s: a rewrite needs the answer it targets, a hook has neither", f.Name)
		}
	}
}

// The conformant server is not wrapped: only a selected rewrite installs the buffering middleware.
func TestOnlyARewriteInstallsTheMiddleware(t *testing.T) {
	for faults, buffered := range map[string]bool{"": false, string(faultExportCrossUser): false, "no-x-progress": true} {
		srv, err := NewServer(Config{Faults: strings.Split(faults, ",")})
		if err != nil {
			t.Fatal(err)
		}
		h := http.NotFoundHandler().(http.HandlerFunc)
		probe := &h
		if wrapped := srv.withFaults(probeHandler{probe}) != http.Handler(probeHandler{probe}); wrapped != buffered {
			t.Errorf("faults %q: wrapped in the fault middleware = %v, want %v", faults, wrapped, buffered)
		}
	}
}

type probeHandler struct{ h *http.HandlerFunc }

func (p probeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*p.h)(w, r) }

// Every fault is one deviation: the same tour of requests (both users, every answer the suite judges, a
// manual clock) is run against the conformant server and against the server with that one fault, and the
// answers compared part by part (status, each header, body). The fault must change something, and every part
// it changes must be one that its own requirement judges.
// A fault is toured in the profile the mutation runner runs it in (inProfile), beside that profile's
// conformant tour.
func TestEveryFaultIsOneDeviation(t *testing.T) {
	conformant := map[Profile][]observed{}
	for _, f := range Faults() {
		p := cmp.Or(f.Profile, ProfileFUT)
		if _, ok := conformant[p]; ok {
			continue
		}
		conformant[p] = runTour(t, p, nil)
		if again := runTour(t, p, nil); len(diffTours(conformant[p], again)) != 0 {
			t.Fatalf("two conformant tours in profile %s differ, the comparison is not deterministic: %v", p, diffTours(conformant[p], again))
		}
	}
	for _, f := range Faults() {
		t.Run(f.Name, func(t *testing.T) {
			t.Parallel()
			p := cmp.Or(f.Profile, ProfileFUT)
			diffs := diffTours(conformant[p], runTour(t, p, []string{f.Name}))
			if len(diffs) == 0 {
				t.Fatalf("fault %s changes no answer of the tour", f.Name)
			}
			for _, d := range diffs {
				if !slices.Contains(d.judgedBy, f.Requirement) {
					t.Errorf("fault %s (%s) changes %s, which only %v judge:\n  conformant: %.300s\n  faulty:     %.300s",
						f.Name, f.Requirement, d.where, d.judgedBy, d.want, d.got)
				}
			}
		})
	}
}

// Requirement sets of the tour's answers.
var (
	runningJudges = []string{"EXP-POLL-202", "EXP-PROGRESS-LENGTH", "EXP-RETRY-AFTER", "EXP-RETRY-AFTER-SENT"}
	// statusJudges judge the report job status Bundle; bundleJudges narrow them for its parts (bodyParts).
	statusJudges = []string{"RJS-BUNDLE", "RJS-LISTED", "RJS-STRUCTURE", "RJS-FULLURL", "RJS-TERMINAL", "RJS-CROSS-USER"}
	// headerJudges narrows who judges a header, where it is fewer than the answer's requirements.
	headerJudges = map[string][]string{
		"X-Progress":  {"EXP-POLL-202", "EXP-PROGRESS-LENGTH"},
		"Retry-After": {"EXP-RETRY-AFTER", "EXP-RETRY-AFTER-SENT"},
		"Expires":     {"EXP-EXPIRES"},
		// A kick-off's polling location: absolute (EXP-KICKOFF and the kick-offs' own), FUT's form (EXP-POLL-LOCATION).
		"Content-Location": {"EXP-KICKOFF", "EXP-KICKOFF-POST", "EXP-OUTPUT-FORMAT", "EXP-TYPE-REPEATED", "EXP-POLL-LOCATION"},
		// Every answer's own requirements judge its Content-Type, but of the status Bundle's only RJS-BUNDLE.
		"Content-Type": {"EXP-KICKOFF", "EXP-KICKOFF-POST", "EXP-OUTPUT-FORMAT", "EXP-TYPE-REPEATED", "EXP-POLL-202", "EXP-POLL-200", "EXP-POLL-ERROR", "EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT-TOKEN", "EXP-POLL-TOKEN", "EXP-RETAINED", "EXP-CANCEL", "EXP-CANCELLED-404",
			"EXP-DELETE-DONE", "EXP-UNKNOWN-JOB", "EXP-MISSING-JOB", "EXP-CROSS-USER", "EXP-CROSS-USER-POLL", "RJS-BUNDLE"},
	}
)

// observed is one answer of the tour, normalized so that two servers' answers compare.
type observed struct {
	step     string
	judgedBy []string
	status   int
	header   map[string]string
	body     map[string]string // the body, or its parts judged apart (bodyParts)
}

type tourDiff struct {
	where     string
	judgedBy  []string
	want, got string
}

// runTour runs the tour against a fresh server of profile p with faults and returns its answers.
func runTour(t *testing.T, p Profile, faults []string) []observed {
	t.Helper()
	e, srv := newServerEnv(t, Config{Profile: p, Faults: faults})
	var out []observed
	see := func(step string, r response, judgedBy ...string) {
		o := observed{step: step, judgedBy: judgedBy, status: r.status, header: map[string]string{}, body: bodyParts(normalizeIDs(e.root, string(r.body)))}
		for k := range r.header {
			if k != "Date" && k != "Content-Length" {
				o.header[k] = normalizeIDs(e.root, strings.Join(r.header.Values(k), ", "))
			}
		}
		out = append(out, o)
	}
	kickoff := func(step, method string) string {
		before := tourJobIDs(srv)
		see(step, e.do(req{method: method, url: "/$export", token: tokenA, headers: asyncHdr}), "EXP-KICKOFF", "EXP-POLL-LOCATION")
		for _, id := range tourJobIDs(srv) {
			if !slices.Contains(before, id) {
				return id
			}
		}
		t.Fatalf("%s: no job was created", step)
		return ""
	}
	poll := func(id string) string { return "/$export-poll-status?_jobId=" + url.QueryEscape(id) }
	del := func(id, token string) response {
		return e.do(req{method: http.MethodDelete, url: poll(id), token: token})
	}
	report := func(op, token string) response {
		return e.do(req{method: http.MethodPost, url: "/" + op, token: token, headers: map[string]string{"Content-Type": "application/fhir+json"},
			body: `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"}]}`})
	}
	status := func(token string) response {
		return e.do(req{method: http.MethodPost, url: "/$get-report-job-status", token: token})
	}

	done := kickoff("kick-off by GET", http.MethodGet)
	// A kick-off by POST is judged on its own (a server may refuse it): the tour's jobs are started by GET.
	see("kick-off by POST", e.do(req{method: http.MethodPost, url: "/$export", token: tokenA, headers: asyncHdr}), "EXP-KICKOFF", "EXP-KICKOFF-POST", "EXP-POLL-LOCATION")
	cancelled := kickoff("kick-off of the job to cancel", http.MethodGet)
	shared := kickoff("kick-off for the cross-user checks", http.MethodGet)
	see("poll a running export", e.get(poll(done), tokenA), runningJudges...)
	see("poll a running export without a token", e.get(poll(done), ""), "EXP-POLL-TOKEN")
	// Another user's job is answered exactly as an unknown one, by design: the unknown-job answer.
	see("B polls A's export", e.get(poll(shared), tokenB), "EXP-CROSS-USER-POLL", "EXP-UNKNOWN-JOB")
	see("B cancels A's export", del(shared, tokenB), "EXP-CROSS-USER-POLL")
	see("A polls it afterwards", e.get(poll(shared), tokenA), append([]string{"EXP-CROSS-USER-POLL"}, runningJudges...)...)
	see("cancel a running export", del(cancelled, tokenA), "EXP-CANCEL")
	see("poll the cancelled export", e.get(poll(cancelled), tokenA), "EXP-CANCELLED-404")
	see("poll an unknown job", e.get(poll("00000000-0000-4000-8000-000000000000"), tokenA), "EXP-UNKNOWN-JOB")
	see("poll without _jobId", e.get("/$export-poll-status", tokenA), "EXP-MISSING-JOB", "EXP-MISSING-JOB-4XX")
	see("A executes a report", report("$execute-patient-usage-stats", tokenA), "RJS-LISTED")
	see("A schedules a report", report("$schedule-patient-usage-stats", tokenA), "RJS-LISTED")
	see("B executes a report", report("$execute-patient-usage-stats", tokenB), "RJS-CROSS-USER")
	see("A's report status, running", status(tokenA), statusJudges...)

	e.clock.Advance(DefaultExportDuration + DefaultReportDuration)
	// a poll of a finished job: its manifest, or the error status of an export that failed (EXP-POLL-ERROR);
	// requiresAccessToken is read by the requirements of the files' requests without the owner's token too
	see("poll the completed export", e.get(poll(done), tokenA), "EXP-POLL-200", "EXP-POLL-ERROR", "EXP-OUTPUT", "EXP-EXPIRES", "EXP-OUTPUT-TOKEN", "EXP-CROSS-USER")
	see("poll the completed export without a token", e.get(poll(done), ""), "EXP-POLL-TOKEN")
	see("cancel the completed export without a token", del(done, ""), "EXP-POLL-TOKEN")
	for _, o := range tourOutputs(srv, done) {
		see("download "+o.typ, e.do(req{method: http.MethodGet, url: "/Binary/" + o.binaryID, token: tokenA,
			headers: map[string]string{"Accept": "application/fhir+ndjson"}}), "EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-MODIFIED-AFTER")
		// the resources' meta.lastUpdated, in whichever form the file comes, is EXP-MODIFIED-AFTER's
		see("download "+o.typ+" without Accept", e.get("/Binary/"+o.binaryID, tokenA), "EXP-OUTPUT-ACCEPT", "EXP-OUTPUT", "EXP-MODIFIED-AFTER")
		// the harness's own Accept, which names the Binary too (HAPI then answers it, FUT's GET_Binary_export.md);
		// its NDJSON's Content-Type is EXP-OUTPUT-ACCEPT's too, as in the download above
		see("download "+o.typ+" as the harness asks", e.do(req{method: http.MethodGet, url: "/Binary/" + o.binaryID, token: tokenA,
			headers: map[string]string{"Accept": "application/fhir+ndjson, application/fhir+json;q=0.9"}}), "EXP-OUTPUT", "EXP-OUTPUT-ACCEPT", "EXP-MODIFIED-AFTER")
		see("download "+o.typ+" without a token", e.get("/Binary/"+o.binaryID, ""), "EXP-OUTPUT-TOKEN")
		see("B downloads "+o.typ, e.get("/Binary/"+o.binaryID, tokenB), "EXP-CROSS-USER")
	}
	see("poll the completed export again", e.get(poll(done), tokenA), "EXP-RETAINED", "EXP-POLL-200", "EXP-POLL-ERROR", "EXP-OUTPUT", "EXP-EXPIRES", "EXP-OUTPUT-TOKEN", "EXP-CROSS-USER")
	see("poll the cancelled export after its time", e.get(poll(cancelled), tokenA), "EXP-CANCELLED-404")
	see("DELETE the completed export", del(done, tokenA), "EXP-DELETE-DONE")
	// fut and hapi-8.0 still answer it with the manifest (HAPI), bulkdata with 404 (BDA2)
	see("poll the completed export after its DELETE", e.get(poll(done), tokenA), "EXP-DELETE-DONE", "EXP-RETAINED", "EXP-POLL-200", "EXP-POLL-ERROR", "EXP-OUTPUT", "EXP-EXPIRES", "EXP-OUTPUT-TOKEN", "EXP-CROSS-USER")
	see("A's report status, done", status(tokenA), statusJudges...)
	see("B's report status", status(tokenB), statusJudges...)
	see("A reads the executed report's Binary", e.get("/Binary/1", tokenA), "RJS-TERMINAL")
	// BDA2's abbreviations of _outputFormat, last: the jobs they start change no answer above
	for _, format := range []string{"application/ndjson", "ndjson"} {
		see("kick-off by GET with _outputFormat="+format, e.do(req{method: http.MethodGet, url: "/$export?_outputFormat=" + url.QueryEscape(format), token: tokenA, headers: asyncHdr}),
			"EXP-KICKOFF", "EXP-OUTPUT-FORMAT", "EXP-POLL-LOCATION")
	}
	// BDA2's repeated _type, after them for the same reason
	see("kick-off by GET with _type repeated", e.do(req{method: http.MethodGet, url: "/$export?_type=Patient&_type=Observation", token: tokenA, headers: asyncHdr}),
		"EXP-KICKOFF", "EXP-TYPE-REPEATED", "EXP-POLL-LOCATION")
	return out
}

func tourJobIDs(s *Server) []string {
	var ids []string
	for _, st := range s.storeList {
		st.mu.Lock()
		for id := range st.exports {
			ids = append(ids, id)
		}
		st.mu.Unlock()
	}
	return ids
}

func tourOutputs(s *Server, id string) []exportOutput {
	for _, st := range s.storeList {
		st.mu.Lock()
		j := st.exports[id]
		var out []exportOutput
		if j != nil {
			out = slices.Clone(j.outputs)
		}
		st.mu.Unlock()
		if j != nil {
			return out
		}
	}
	return nil
}

var (
	uuidRE     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	binaryIDRE = regexp.MustCompile(`\b[A-Za-z0-9]{32}\b`)
)

// normalizeIDs replaces the server's address and the random ids, which differ between two servers.
func normalizeIDs(root, s string) string {
	s = strings.ReplaceAll(s, root, "<server>")
	// The users' ids are UUIDs too, but fixed, and whose they are matters (rjs-userid-of-first-user).
	s = strings.NewReplacer(DemoUserIDA, "<user A>", DemoUserIDB, "<user B>").Replace(s)
	return binaryIDRE.ReplaceAllString(uuidRE.ReplaceAllString(s, "<uuid>"), "<binary-id>")
}

// diffTours lists the parts of the answers that differ, with the requirements that judge each.
func diffTours(want, got []observed) []tourDiff {
	var diffs []tourDiff
	if len(want) != len(got) {
		return []tourDiff{{where: "the tour's length", want: fmt.Sprint(len(want)), got: fmt.Sprint(len(got))}}
	}
	for i, w := range want {
		g := got[i]
		if w.status != g.status {
			diffs = append(diffs, tourDiff{w.step + ": status", w.judgedBy, fmt.Sprint(w.status), fmt.Sprint(g.status)})
		}
		diffs = append(diffs, diffBodies(w, g)...)
		names := map[string]bool{}
		for k := range w.header {
			names[k] = true
		}
		for k := range g.header {
			names[k] = true
		}
		for k := range names {
			if w.header[k] == g.header[k] {
				continue
			}
			// A header of the same answer is judged by its own requirements; in another answer (another
			// status), by the answer's.
			judges := w.judgedBy
			if narrow, ok := headerJudges[k]; ok && w.status == g.status {
				judges = slices.DeleteFunc(slices.Clone(narrow), func(id string) bool { return !slices.Contains(w.judgedBy, id) })
			}
			diffs = append(diffs, tourDiff{w.step + ": header " + k, judges, w.header[k], g.header[k]})
		}
	}
	return diffs
}

// bundleJudges are the requirements that judge each part of a report job status Bundle (README, "What it
// checks"): RJS-LISTED names the parts it finds a job by, RJS-STRUCTURE their value types and times.
var bundleJudges = map[string][]string{
	"type":        {"RJS-BUNDLE"},
	"entries":     {"RJS-LISTED", "RJS-STRUCTURE", "RJS-CROSS-USER"}, // RJS-STRUCTURE: each job listed once
	"fullUrl":     {"RJS-FULLURL"},
	"reportClass": {"RJS-LISTED", "RJS-STRUCTURE"},
	"userId":      {"RJS-LISTED", "RJS-STRUCTURE", "RJS-CROSS-USER"},
	"status":      {"RJS-LISTED", "RJS-STRUCTURE", "RJS-TERMINAL"},
	"binary":      {"RJS-LISTED", "RJS-STRUCTURE"},
	"parameters":  {"RJS-LISTED", "RJS-STRUCTURE"},
	"created":     {"RJS-LISTED", "RJS-STRUCTURE"},
	"started":     {"RJS-STRUCTURE"},
	"ended":       {"RJS-STRUCTURE", "RJS-TERMINAL"},
}

// bodyParts splits a report job status Bundle into the parts bundleJudges names (its entries by position);
// any other body is one part, "body".
func bodyParts(body string) map[string]string {
	var b bundle
	if json.Unmarshal([]byte(body), &b) != nil || b.ResourceType != "Bundle" {
		return map[string]string{"body": body}
	}
	parts := map[string]string{"type": b.Type, "entries": fmt.Sprint(len(b.Entry))}
	for i, e := range b.Entry {
		parts[fmt.Sprintf("entry %d fullUrl", i)] = e.FullURL
		for _, p := range e.Resource.Parameter {
			for _, pt := range p.Part {
				raw, _ := json.Marshal(pt)
				parts[fmt.Sprintf("entry %d %s", i, pt.Name)] = string(raw)
			}
		}
	}
	return parts
}

// diffBodies compares two answers' bodies part by part. When the entries differ in number, the entries are
// the difference, and their parts, no longer at the same positions, are not compared.
func diffBodies(w, g observed) []tourDiff {
	var diffs []tourDiff
	keys := map[string]bool{}
	for k := range w.body {
		keys[k] = true
	}
	for k := range g.body {
		keys[k] = true
	}
	for k := range keys {
		if w.body[k] == g.body[k] || (w.body["entries"] != g.body["entries"] && strings.HasPrefix(k, "entry ")) {
			continue
		}
		judges := w.judgedBy
		if k != "body" {
			name := k[strings.LastIndexByte(k, ' ')+1:]
			judges = slices.DeleteFunc(slices.Clone(bundleJudges[name]), func(id string) bool { return !slices.Contains(w.judgedBy, id) })
		}
		diffs = append(diffs, tourDiff{w.step + ": body " + k, judges, w.body[k], g.body[k]})
	}
	return diffs
}
