package refserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fault injection: each fault is one minimal deviation from one requirement of features/REQUIREMENTS.md,
// selected by name in Config.Faults (or refserver -faults). The mutation runner (package mutation,
// `make mutation`) runs the suite against every fault and requires each one to be caught by the scenario
// tagged with its requirement.
//
// Most faults only rewrite an answer after the conformant handler has written it: they are rows of
// faultTable with the answer they target (an answer constant below, one specified answer of one route) and a
// rewrite of its status, headers or body, applied by a middleware (withFaults) that is installed only when
// such a fault is selected. A handler names the answer it writes with markAnswer, inside the writer of that
// answer. The few faults that change what the server holds or decides (a cancelled job that completes, a job
// listed for the wrong user, a job that never finishes) are rows without a rewrite, hooked by one line
// `if s.faulty(faultX)` where the deviation happens. With no fault selected the server is the conformant
// reference, and nothing is buffered.

// Fault describes one injectable deviation.
type Fault struct {
	Name        string // selects it in Config.Faults
	Requirement string // the requirement ID (scenario tag) it breaks
	Description string // the deviation, in one line
	// Profile is the profile (features/PROFILES.md) the mutation runner runs it in, server and harness alike:
	// one where its requirement is MUST or SHOULD, so that a run can kill it. Faults() gives ProfileFUT where
	// the table names none.
	Profile Profile
}

// answer names one specified answer of one route: the key under which the fault middleware finds the
// rewrites that target it.
type answer string

// The answers faults rewrite. Each is marked by the writer of that answer (markAnswer).
const (
	answerKickoff         answer = "GET|POST $export: 202 kick-off accepted"
	answerPollNoJobID     answer = "GET $export-poll-status: 400 without _jobId"
	answerPollUnknownJob  answer = "GET $export-poll-status: 404 unknown job"
	answerPollRunning     answer = "GET $export-poll-status: 202 running"
	answerPollComplete    answer = "GET $export-poll-status: 200 manifest"
	answerPollCancelled   answer = "GET $export-poll-status: 404 cancelled"
	answerCancelRunning   answer = "DELETE $export-poll-status: 202 cancelled"
	answerCancelFinished  answer = "DELETE $export-poll-status: 404 already completed"
	answerCancelReleased  answer = "DELETE [polling location]: 202 files released (bulkdata)"
	answerExportFile      answer = "GET Binary/{id}: 200 export file"
	answerReportJobStatus answer = "GET|POST $get-report-job-status: 200 Bundle"
	answerNone            answer = "" // not a fault's target
)

// reply is an answer as the handler wrote it, for a rewrite to change.
type reply struct {
	req    *http.Request
	base   string    // the FHIR base URL of links in the answer
	now    time.Time // the server's clock when the answer was written
	status int
	header http.Header
	body   []byte
}

// faultDef is one row of the fault table: a Fault, and either the answer it rewrites and how, or (on empty,
// rewrite nil) a hook `s.faulty(fault(name))` in a handler.
type faultDef struct {
	Fault
	on      answer
	rewrite func(*reply)
}

// fault names a hooked fault, for s.faulty.
type fault string

// The faults that change state, hooked in the handlers.
const (
	faultCancelledCompletes   fault = "cancelled-completes"
	faultExportCrossUser      fault = "export-cross-user"
	faultRJSScheduleNotListed fault = "rjs-schedule-not-listed"
	faultRJSNeverFinishes     fault = "rjs-never-finishes"
	faultRJSDonePlaceholder   fault = "rjs-done-placeholder"
	faultRJSDoneNotAReport    fault = "rjs-done-not-a-report"
	faultRJSDoneNotJSON       fault = "rjs-done-not-json"
	faultRJSCrossUserLeak     fault = "rjs-cross-user-leak"
	faultRJSUserIDOfFirstUser fault = "rjs-userid-of-first-user"
	// A hook, not a rewrite, so that an output file of any size stays streamed (writeExportFile).
	faultOutputBadLastLine fault = "output-bad-last-line"
	faultOutputNoToken     fault = "output-no-token"
	faultPollWithoutToken  fault = "poll-without-token"
	faultOutputCrossUser   fault = "output-cross-user"
	faultManifestForgotten fault = "manifest-forgotten"
	// A hook: a refused kick-off must start no job.
	faultKickoffPostRefused fault = "kickoff-post-refused"
	// A hook: a kick-off naming an abbreviation of the NDJSON type is refused before it starts a job.
	faultKickoffFormatAbbreviationRefused fault = "kickoff-format-abbreviation-refused"
	// A hook: every export file is held back as HAPI's externalized binary storage holds a large one.
	faultOutputExternalizedBinary fault = "output-externalized-binary"
	// A hook: a kick-off with _type repeated is refused before it starts a job.
	faultKickoffTypeRepeatedRefused fault = "kickoff-type-repeated-refused"
	// A hook: the DELETE's answer says the files are released, and they are not.
	faultDeleteDoneKept fault = "delete-done-kept"
	// A hook: the polling location names its job by another parameter than FUT's _jobId, and is served so.
	faultPollLocationJobParam fault = "poll-location-job-param"
)

func hook(f fault, requirement, description string) faultDef {
	return faultDef{Fault: Fault{Name: string(f), Requirement: requirement, Description: description}, on: answerNone}
}

func rewrite(name, requirement, description string, on answer, fn func(*reply)) faultDef {
	return faultDef{Fault: Fault{Name: name, Requirement: requirement, Description: description}, on: on, rewrite: fn}
}

// inProfile has the mutation runner run fault d in profile p rather than ProfileFUT: its requirement is
// weaker in fut (a MAY there can kill no fault).
func inProfile(p Profile, d faultDef) faultDef {
	d.Profile = p
	return d
}

var faultTable = []faultDef{
	rewrite("kickoff-no-content-location", "EXP-KICKOFF", "the kick-off answers 202 without a Content-Location header",
		answerKickoff, func(a *reply) { a.header.Del("Content-Location") }),
	rewrite("kickoff-relative-content-location", "EXP-KICKOFF", "the kick-off's Content-Location is a relative URL",
		answerKickoff, func(a *reply) { a.header.Set("Content-Location", relative(a, a.header.Get("Content-Location"))) }),
	rewrite("kickoff-200", "EXP-KICKOFF", "the kick-off answers 200 OK instead of 202 Accepted",
		answerKickoff, func(a *reply) { a.status = http.StatusOK }),
	hook(faultKickoffPostRefused, "EXP-KICKOFF-POST", "a kick-off by POST answers 405 Method Not Allowed (GET only, as the HL7 IG allows)"),
	// BDA2 "Query Parameters": the server SHALL accept application/ndjson and ndjson as well (Inferno's Bulk Data
	// test kit sends all three); MAY in fut and hapi-8.0 (FUT names the full type alone), where no run can kill it.
	inProfile(ProfileBulkData, hook(faultKickoffFormatAbbreviationRefused, "EXP-OUTPUT-FORMAT", "a kick-off whose _outputFormat is application/ndjson or ndjson answers 400: only application/fhir+ndjson is accepted (bulkdata)")),
	// FUT-OD-POLL: "A complete URL including the '_jobId' is returned in the 'Content-Location' response header";
	// n/a in bulkdata, whose IG gives the polling location no form.
	hook(faultPollLocationJobParam, "EXP-POLL-LOCATION", "the kick-off's polling location names its job as ?job=<id>, not FUT's ?_jobId=<id> (and is served so)"),
	// BDA2 "Bulk Data Kick-off Request": repeated values of a parameter SHALL be treated as one comma-delimited
	// list (SMART's Bulk Data Tester repeats _type; Oracle Health's Millennium is documented to refuse it); MAY
	// in fut and hapi-8.0 (FUT's _type is 0..1), where no run can kill it.
	inProfile(ProfileBulkData, hook(faultKickoffTypeRepeatedRefused, "EXP-TYPE-REPEATED", "a kick-off whose _type is given more than once answers 400: only one comma-separated _type is accepted (bulkdata)")),
	rewrite("no-x-progress", "EXP-POLL-202", "a running export's 202 carries no X-Progress header",
		answerPollRunning, func(a *reply) { a.header.Del("X-Progress") }),
	rewrite("manifest-while-running", "EXP-POLL-202", "a running export's 202 carries a manifest body",
		answerPollRunning, func(a *reply) {
			setJSON(a, contentTypeJSON, manifest{TransactionTime: fhirInstant(a.now), Request: a.base + "/$export", Output: []manifestOutput{}, Error: []manifestOutput{}})
		}),
	// A 404 names no job: not the error status of an export that failed (steps.failedStatus), whose
	// scenarios would be skipped, but a polling location that does not work.
	rewrite("running-404", "EXP-POLL-202", "a running export's polling location answers 404 with an OperationOutcome, as if it named no job",
		answerPollRunning, func(a *reply) {
			a.header.Del("X-Progress")
			a.header.Del("Retry-After")
			setOutcome(a, http.StatusNotFound, sevError, codeNotFound, "Unknown job")
		}),
	rewrite("long-x-progress", "EXP-PROGRESS-LENGTH", "X-Progress is 115 characters long (SHOULD: under 100)",
		answerPollRunning, func(a *reply) { a.header.Set("X-Progress", longXProgress) }),
	rewrite("bad-retry-after", "EXP-RETRY-AFTER", `Retry-After is "1.5s", neither delay-seconds nor an HTTP-date`,
		answerPollRunning, func(a *reply) { a.header.Set("Retry-After", "1.5s") }),
	// BDA2 "Bulk Data Status Request": "A server SHOULD supply a Retry-After header"; Microsoft's FHIR server
	// sends none (ExportResult.Accepted).
	rewrite("no-retry-after", "EXP-RETRY-AFTER-SENT", "a running export's 202 carries no Retry-After header (SHOULD: one)",
		answerPollRunning, func(a *reply) { a.header.Del("Retry-After") }),
	rewrite("manifest-content-type", "EXP-POLL-200", "the complete status is served as text/plain instead of application/json",
		answerPollComplete, func(a *reply) { a.header.Set("Content-Type", "text/plain; charset=utf-8") }),
	rewrite("manifest-no-error", "EXP-POLL-200", "the manifest lacks the required error array",
		answerPollComplete, func(a *reply) { editJSON(a, func(m map[string]json.RawMessage) { delete(m, "error") }) }),
	rewrite("manifest-relative-url", "EXP-POLL-200", "the manifest's output urls are relative",
		answerPollComplete, func(a *reply) {
			editManifest(a, func(m *manifest) {
				for i := range m.Output {
					m.Output[i].URL = relative(a, m.Output[i].URL)
				}
			})
		}),
	rewrite("manifest-deleted-not-bundle", "EXP-POLL-200", "the manifest lists an output file again under deleted, with its resource type instead of Bundle",
		answerPollComplete, func(a *reply) {
			editJSON(a, func(m map[string]json.RawMessage) {
				var out []manifestOutput
				if json.Unmarshal(m["output"], &out) == nil && len(out) > 0 {
					m["deleted"], _ = json.Marshal(out[:1])
				}
			})
		}),
	rewrite("manifest-relative-request", "EXP-POLL-200", "the manifest's request is the kick-off's path, not its full URL",
		answerPollComplete, func(a *reply) { editManifest(a, func(m *manifest) { m.Request = relative(a, m.Request) }) }),
	rewrite("manifest-bad-transaction-time", "EXP-POLL-200", `transactionTime is "2024-01-15 10:00:00", not a FHIR instant`,
		answerPollComplete, func(a *reply) {
			editManifest(a, func(m *manifest) {
				if t, err := time.Parse(fhirInstantLayout, m.TransactionTime); err == nil {
					m.TransactionTime = t.UTC().Format("2006-01-02 15:04:05")
				}
			})
		}),
	rewrite("manifest-duplicate-output", "EXP-POLL-200", "the manifest lists every output file twice",
		answerPollComplete, func(a *reply) { editManifest(a, func(m *manifest) { m.Output = append(m.Output, m.Output...) }) }),
	rewrite("manifest-request-poll-url", "EXP-POLL-200", "the manifest's request is the polling location, not the kick-off's URL",
		answerPollComplete, func(a *reply) {
			editManifest(a, func(m *manifest) { m.Request = a.base + "/" + path.Base(a.req.URL.Path) + "?" + a.req.URL.RawQuery })
		}),
	rewrite("manifest-stale-transaction-time", "EXP-POLL-200", "transactionTime is an hour before the kick-off: a manifest of an older query",
		answerPollComplete, func(a *reply) {
			editManifest(a, func(m *manifest) {
				if t, err := time.Parse(fhirInstantLayout, m.TransactionTime); err == nil {
					m.TransactionTime = fhirInstant(t.Add(-faultSkew))
				}
			})
		}),
	// EXP-EXPIRES is MAY in fut and hapi-8.0 (FUT and HAPI send no Expires), BDA2's SHOULD in bulkdata.
	inProfile(ProfileBulkData, rewrite("no-expires", "EXP-EXPIRES", "the complete status carries no Expires header (SHOULD in bulkdata)",
		answerPollComplete, func(a *reply) { a.header.Del("Expires") })),
	rewrite("output-wrong-type", "EXP-OUTPUT", "each output file holds the resources of another type than its manifest item",
		answerExportFile, func(a *reply) { editFileLines(a, func(m map[string]json.RawMessage, _ bool) { retype(m) }) }),
	rewrite("output-invalid-fhir", "EXP-OUTPUT", "the last line of each output file has an element FHIR R4 does not define: valid JSON of its type, not valid FHIR",
		answerExportFile, func(a *reply) {
			editFileLines(a, func(m map[string]json.RawMessage, last bool) {
				if last {
					m["shoeSize"] = json.RawMessage("42")
				}
			})
		}),
	// In bulkdata: the servers fut and hapi-8.0 emulate send no count (Profile.countsOutput).
	inProfile(ProfileBulkData, rewrite("output-count-mismatch", "EXP-OUTPUT", "each manifest count is one more than the resources in its file (bulkdata, whose manifest counts)",
		answerPollComplete, func(a *reply) {
			editManifest(a, func(m *manifest) {
				for i := range m.Output {
					if c := m.Output[i].Count; c != nil {
						m.Output[i].Count = new(*c + 1)
					}
				}
			})
		})),
	hook(faultOutputBadLastLine, "EXP-OUTPUT", "the last line of each output file is cut short: not JSON"),
	// BDA2 "Complete Status": the response SHOULD NOT include any resources modified after transactionTime. A
	// file is served after its manifest, so an hour after its serving is past transactionTime, and past the
	// harness's clock skew (check.TransactionTimeSkew), in every profile's transactionTime (kick-off or end).
	rewrite("output-modified-after-transaction", "EXP-MODIFIED-AFTER", "every resource of each output file carries a meta.lastUpdated an hour after the file is served: later than the manifest's transactionTime",
		answerExportFile, func(a *reply) {
			editFileLines(a, func(m map[string]json.RawMessage, _ bool) { setLastUpdated(m, a.now.Add(faultSkew)) })
		}),
	// HAPI FHIR with externalized binary storage and a Binary above autoInflateBinariesMaximumBytes (Smile CDR
	// recommends that storage for bulk export): in fut, whose manifest counts nothing, only a read of the
	// Binary tells the empty file from one that was kept back.
	hook(faultOutputExternalizedBinary, "EXP-OUTPUT", "every export file is kept back as HAPI's externalized binary storage keeps a large one: the file comes empty, its Binary without data, with the externalized-binary-id extension"),
	rewrite("output-content-type", "EXP-OUTPUT", "output files are served as text/plain, neither NDJSON nor a Binary",
		answerExportFile, func(a *reply) { a.header.Set("Content-Type", "text/plain; charset=utf-8") }),
	rewrite("output-generic-ndjson", "EXP-OUTPUT-ACCEPT", "NDJSON output files are served as application/ndjson, not application/fhir+ndjson",
		answerExportFile, func(a *reply) {
			if strings.HasPrefix(a.header.Get("Content-Type"), contentTypeNDJSON) {
				a.header.Set("Content-Type", "application/ndjson")
			}
		}),
	rewrite("output-default-binary", "EXP-OUTPUT-ACCEPT", "an output file requested without Accept answers the FHIR Binary JSON, not the file",
		answerExportFile, func(a *reply) {
			if len(a.req.Header.Values("Accept")) == 0 && strings.HasPrefix(a.header.Get("Content-Type"), contentTypeNDJSON) {
				setJSON(a, contentTypeFHIRJSON, binaryResource{ResourceType: "Binary", ID: path.Base(a.req.URL.Path),
					Meta: binaryMeta{LastUpdated: fhirInstant(a.now)}, ContentType: contentTypeNDJSON, Data: a.body})
			}
		}),
	rewrite("output-binary-content-type", "EXP-OUTPUT", "an output file requested with a FHIR JSON type in Accept (as HAPI matches one, at any q) answers a Binary whose contentType is text/plain, not the NDJSON it holds",
		answerExportFile, func(a *reply) {
			if strings.Contains(strings.Join(a.req.Header.Values("Accept"), ","), "application/fhir+json") && strings.HasPrefix(a.header.Get("Content-Type"), contentTypeNDJSON) {
				setJSON(a, contentTypeFHIRJSON, binaryResource{ResourceType: "Binary", ID: path.Base(a.req.URL.Path),
					Meta: binaryMeta{LastUpdated: fhirInstant(a.now)}, ContentType: "text/plain", Data: a.body})
			}
		}),
	rewrite("output-file-of-another-job", "EXP-OUTPUT", "an output file requested with a FHIR JSON type in Accept answers the Binary of another export job (its bulk-export-job-id names another job)",
		answerExportFile, func(a *reply) {
			if strings.Contains(strings.Join(a.req.Header.Values("Accept"), ","), "application/fhir+json") && strings.HasPrefix(a.header.Get("Content-Type"), contentTypeNDJSON) {
				setJSON(a, contentTypeFHIRJSON, binaryResource{ResourceType: "Binary", ID: path.Base(a.req.URL.Path),
					Meta: binaryMeta{LastUpdated: fhirInstant(a.now), Extension: []extValString{{URL: extBulkExportJobID, ValueString: newUUID()}}}, ContentType: contentTypeNDJSON, Data: a.body})
			}
		}),
	hook(faultOutputNoToken, "EXP-OUTPUT-TOKEN", "an export's output files download without any token, though the manifest requires one"),
	rewrite("manifest-requires-no-token", "EXP-OUTPUT-TOKEN", "the manifest says requiresAccessToken false, though its output files still need the bearer token (401 without it)",
		answerPollComplete, func(a *reply) { editManifest(a, func(m *manifest) { m.RequiresAccessToken = false }) }),
	hook(faultPollWithoutToken, "EXP-POLL-TOKEN", "the polling location answers a status request (GET) without a token, as the job's owner would be answered"),
	hook(faultManifestForgotten, "EXP-RETAINED", "a completed export answers its manifest once, then 404 to every later poll"),
	rewrite("export-fails-html", "EXP-POLL-ERROR", "the export fails: its polling location answers 500 with an HTML error page, no OperationOutcome, instead of the manifest",
		answerPollComplete, func(a *reply) {
			a.status = http.StatusInternalServerError
			a.header.Del("Expires")
			a.header.Set("Content-Type", "text/html; charset=utf-8")
			a.body = []byte("<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>")
		}),
	rewrite("export-fails-outcome-as-text", "EXP-POLL-ERROR", "the export fails: its polling location answers 500 with an OperationOutcome served as text/plain, instead of the manifest",
		answerPollComplete, func(a *reply) {
			a.header.Del("Expires")
			setOutcome(a, http.StatusInternalServerError, sevError, codeException, "Export job failed.")
			a.header.Set("Content-Type", "text/plain; charset=utf-8")
		}),
	rewrite("cancel-200", "EXP-CANCEL", "a DELETE on a running export cancels it but answers 200 instead of 202",
		answerCancelRunning, func(a *reply) { a.status = http.StatusOK }),
	rewrite("cancel-no-outcome", "EXP-CANCEL", "a DELETE on a running export answers 202 with an empty body",
		answerCancelRunning, func(a *reply) { setEmpty(a) }),
	rewrite("cancel-error-outcome", "EXP-CANCEL", "a DELETE on a running export cancels it but answers 202 with an OperationOutcome of severity error, saying it failed",
		answerCancelRunning, func(a *reply) {
			setOutcome(a, http.StatusAccepted, sevError, codeProcessing, "Job instance could not be cancelled.")
		}),
	rewrite("cancel-303", "EXP-CANCEL", "a DELETE on a running export cancels it but answers 303 See Other to its polling location instead of 202",
		answerCancelRunning, func(a *reply) {
			setEmpty(a)
			a.status = http.StatusSeeOther
			a.header.Set("Location", a.base+"/"+path.Base(a.req.URL.Path)+"?"+a.req.URL.RawQuery)
		}),
	hook(faultCancelledCompletes, "EXP-CANCELLED-404", "a cancelled export completes anyway once its time is up (404, then 200)"),
	rewrite("cancelled-410", "EXP-CANCELLED-404", "polling a cancelled export answers 410 Gone instead of 404",
		answerPollCancelled, func(a *reply) { a.status = http.StatusGone }),
	rewrite("delete-done-202", "EXP-DELETE-DONE", "a DELETE on a finished export answers 202 instead of 404",
		answerCancelFinished, func(a *reply) {
			setOutcome(a, http.StatusAccepted, sevInformation, codeInformational, "Job instance deleted.")
		}),
	rewrite("delete-done-no-outcome", "EXP-DELETE-DONE", "a DELETE on a finished export answers 404 with an empty body",
		answerCancelFinished, func(a *reply) { setEmpty(a) }),
	// BDA2 lets a server release a finished export's files on a DELETE (202, then 404) or refuse the DELETE
	// with its error status, an OperationOutcome in the body.
	inProfile(ProfileBulkData, hook(faultDeleteDoneKept, "EXP-DELETE-DONE", "a DELETE on a finished export answers 202, files released, and polls still answer 200 with the manifest (bulkdata)")),
	inProfile(ProfileBulkData, rewrite("delete-done-409-empty", "EXP-DELETE-DONE", "a DELETE on a finished export is refused with 409 and an empty body, the IG's error status without its OperationOutcome (bulkdata)",
		answerCancelReleased, func(a *reply) {
			setEmpty(a)
			a.status = http.StatusConflict
		})),
	// The DELETE asks for application/fhir+json: an OperationOutcome as application/json is no answer of FHIR's
	// content negotiation to it (operation-outcome-as-requested-json covers the polls, which ask for
	// application/json).
	inProfile(ProfileBulkData, rewrite("delete-done-409-json", "EXP-DELETE-DONE", "a DELETE on a finished export is refused with 409 and an OperationOutcome served as application/json, though the DELETE asked for application/fhir+json (bulkdata)",
		answerCancelReleased, func(a *reply) {
			setOutcome(a, http.StatusConflict, sevError, codeProcessing, "The export is complete and cannot be deleted.")
			a.header.Set("Content-Type", "application/json; charset=utf-8")
		})),
	inProfile(ProfileBulkData, rewrite("delete-done-500", "EXP-DELETE-DONE", "a DELETE on a finished export answers 500 with an OperationOutcome (bulkdata)",
		answerCancelReleased, func(a *reply) {
			setOutcome(a, http.StatusInternalServerError, sevError, codeException, "Could not delete the export.")
		})),
	rewrite("unknown-job-400", "EXP-UNKNOWN-JOB", "an unknown _jobId answers 400 instead of 404",
		answerPollUnknownJob, func(a *reply) {
			setOutcome(a, http.StatusBadRequest, sevError, codeInvalid, "Unknown job "+a.req.URL.Query().Get("_jobId"))
		}),
	rewrite("unknown-job-plain-body", "EXP-UNKNOWN-JOB", "an unknown _jobId answers 404 with a plain-text body, no OperationOutcome",
		answerPollUnknownJob, func(a *reply) {
			a.header.Set("Content-Type", "text/plain; charset=utf-8")
			a.body = []byte("job not found")
		}),
	rewrite("missing-job-500", "EXP-MISSING-JOB-4XX", "polling without _jobId answers 500 (as a crashing server would)",
		answerPollNoJobID, func(a *reply) {
			setOutcome(a, http.StatusInternalServerError, sevError, codeException, "java.lang.NullPointerException")
		}),
	rewrite("missing-job-202", "EXP-MISSING-JOB", "polling without _jobId answers 202 Accepted",
		answerPollNoJobID, func(a *reply) {
			a.status = http.StatusAccepted
			setEmpty(a)
		}),
	hook(faultExportCrossUser, "EXP-CROSS-USER-POLL", "another user can poll and cancel an export (the owner is not checked)"),
	hook(faultOutputCrossUser, "EXP-CROSS-USER", "another user can read an export's output files with their own token"),
	rewrite("rjs-searchset", "RJS-BUNDLE", "the status Bundle is of type searchset instead of collection",
		answerReportJobStatus, func(a *reply) { editBundle(a, func(b *bundle) { b.Type = "searchset" }) }),
	rewrite("rjs-content-type", "RJS-BUNDLE", "the status is served as application/json instead of application/fhir+json",
		answerReportJobStatus, func(a *reply) { a.header.Set("Content-Type", contentTypeJSON) }),
	hook(faultRJSScheduleNotListed, "RJS-LISTED", "a report started with $schedule is never listed"),
	rewrite("rjs-params-dropped", "RJS-LISTED", "a report job's parameters part drops what was sent",
		answerReportJobStatus, func(a *reply) {
			editParts(a, func(p *part) {
				if p.Name == "parameters" {
					p.Resource = &sentParams{ResourceType: "Parameters"}
				}
			})
		}),
	rewrite("rjs-binary-as-string", "RJS-STRUCTURE", "the binary part is a valueString instead of a valueReference",
		answerReportJobStatus, func(a *reply) {
			editParts(a, func(p *part) {
				if p.Name == "binary" && p.ValueReference != nil {
					p.ValueString, p.ValueReference = p.ValueReference.Reference, nil
				}
			})
		}),
	rewrite("rjs-created-after-started", "RJS-STRUCTURE", "created is an hour after started",
		answerReportJobStatus, func(a *reply) {
			editCreated(a, func(t time.Time) string { return fhirDateTime(t.Add(faultSkew)) })
		}),
	rewrite("rjs-bad-created", "RJS-STRUCTURE", `created is "2023-10-12 09:51", not a FHIR dateTime`,
		answerReportJobStatus, func(a *reply) {
			editCreated(a, func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") })
		}),
	rewrite("rjs-done-no-ended", "RJS-STRUCTURE", "a finished (DONE or FAILED) report job carries no ended part",
		answerReportJobStatus, func(a *reply) {
			editBundle(a, func(b *bundle) {
				for _, e := range b.Entry {
					for i := range e.Resource.Parameter {
						p := &e.Resource.Parameter[i]
						if finished(p.Part) {
							p.Part = slices.DeleteFunc(p.Part, func(x part) bool { return x.Name == "ended" })
						}
					}
				}
			})
		}),
	rewrite("rjs-duplicate-entry", "RJS-STRUCTURE", "every report job is listed twice, in two entries of one fullUrl",
		answerReportJobStatus, func(a *reply) {
			editBundle(a, func(b *bundle) { b.Entry = append(b.Entry, b.Entry...) })
		}),
	rewrite("rjs-bare-fullurl", "RJS-FULLURL", "entry.fullUrl is a bare UUID, as FUT's example (SHOULD)",
		answerReportJobStatus, func(a *reply) {
			editBundle(a, func(b *bundle) {
				for i := range b.Entry {
					b.Entry[i].FullURL = strings.TrimPrefix(b.Entry[i].FullURL, "urn:uuid:")
				}
			})
		}),
	hook(faultRJSNeverFinishes, "RJS-TERMINAL", "a report job stays RUNNING for ever"),
	hook(faultRJSDonePlaceholder, "RJS-TERMINAL", "a DONE report's Binary still holds the *NOT GENERATED YET* placeholder"),
	hook(faultRJSDoneNotAReport, "RJS-TERMINAL", "a DONE report's Binary holds a line of text, not the zip archive of JSON files a report is"),
	hook(faultRJSDoneNotJSON, "RJS-TERMINAL", "a DONE report's Binary is a zip archive whose file is CSV, not the JSON files a report holds"),
	hook(faultRJSCrossUserLeak, "RJS-CROSS-USER", "every user's status lists every user's report jobs"),
	hook(faultRJSUserIDOfFirstUser, "RJS-CROSS-USER", "every report job's userId is the first configured user's (user A's), whoever started it"),
}

// Faults returns the table of injectable faults, in the order of the requirements they break.
func Faults() []Fault {
	out := make([]Fault, len(faultTable))
	for i, f := range faultTable {
		out[i] = f.Fault
		if out[i].Profile == "" {
			out[i].Profile = ProfileFUT
		}
	}
	return out
}

// faultSet is the faults a server runs with.
type faultSet map[fault]bool

// parseFaults validates names against the table; an unknown name is an error listing the known ones.
func parseFaults(names []string) (faultSet, error) {
	set := faultSet{}
	var unknown []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.ContainsFunc(faultTable, func(f faultDef) bool { return f.Name == n }) {
			unknown = append(unknown, n)
			continue
		}
		set[fault(n)] = true
	}
	if len(unknown) > 0 {
		known := make([]string, len(faultTable))
		for i, f := range faultTable {
			known[i] = f.Name
		}
		return nil, fmt.Errorf("unknown fault %s; known faults: %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return set, nil
}

// faulty reports whether the hooked fault f is injected.
func (s *Server) faulty(f fault) bool { return s.faults[f] }

// withFaults applies the selected faults' rewrites to the answers they target. Without a selected rewrite it
// returns h itself: the conformant server never buffers an answer.
func (s *Server) withFaults(h http.Handler) http.Handler {
	rewrites := map[answer][]func(*reply){}
	for _, f := range faultTable {
		if f.rewrite != nil && s.faults[fault(f.Name)] {
			rewrites[f.on] = append(rewrites[f.on], f.rewrite)
		}
	}
	if len(rewrites) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &answerRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		a := &reply{req: r, base: s.baseURL(r), now: s.cfg.Clock.Now(), status: rec.status, header: rec.header, body: rec.body.Bytes()}
		if a.status == 0 {
			a.status = http.StatusOK
		}
		for _, fn := range rewrites[rec.answer] {
			fn(a)
		}
		for k, vs := range a.header {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(a.body)))
		w.WriteHeader(a.status)
		_, _ = w.Write(a.body)
	})
}

// answerRecorder holds an answer for the fault rewrites, and which answer it is.
type answerRecorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	answer answer
}

func (rec *answerRecorder) Header() http.Header { return rec.header }

func (rec *answerRecorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *answerRecorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec.body.Write(b)
}

// markAnswer names the answer about to be written, for the faults that rewrite it. Without a fault
// middleware it does nothing.
func markAnswer(w http.ResponseWriter, a answer) {
	for w != nil {
		if rec, ok := w.(*answerRecorder); ok {
			rec.answer = a
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter }) // a wrapper between, e.g. redirectOutcomeWriter
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// relative turns an absolute link of the server into one relative to the FHIR base.
func relative(a *reply, link string) string { return strings.TrimPrefix(link, a.base+"/") }

func setJSON(a *reply, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		return
	}
	a.header.Set("Content-Type", contentType)
	a.body = body
}

func setEmpty(a *reply) {
	a.header.Del("Content-Type")
	a.body = nil
}

func setOutcome(a *reply, status int, severity, code, diagnostics string) {
	a.status = status
	setJSON(a, contentTypeFHIRJSON, operationOutcome{ResourceType: "OperationOutcome", Issue: []ooIssue{{Severity: severity, Code: code, Diagnostics: diagnostics}}})
}

// editJSON edits the answer's JSON object body; a body that is not one is left alone.
func editJSON(a *reply, edit func(map[string]json.RawMessage)) {
	var m map[string]json.RawMessage
	if json.Unmarshal(a.body, &m) != nil {
		return
	}
	edit(m)
	setJSON(a, a.header.Get("Content-Type"), m)
}

func editManifest(a *reply, edit func(*manifest)) {
	var m manifest
	if json.Unmarshal(a.body, &m) != nil {
		return
	}
	edit(&m)
	setJSON(a, a.header.Get("Content-Type"), m)
}

func editBundle(a *reply, edit func(*bundle)) {
	var b bundle
	if json.Unmarshal(a.body, &b) != nil {
		return
	}
	edit(&b)
	setJSON(a, a.header.Get("Content-Type"), b)
}

// editParts edits every part of every report job in the status Bundle.
func editParts(a *reply, edit func(*part)) {
	editBundle(a, func(b *bundle) {
		for _, e := range b.Entry {
			for _, p := range e.Resource.Parameter {
				for i := range p.Part {
					edit(&p.Part[i])
				}
			}
		}
	})
}

// editCreated rewrites every report job's created dateTime.
func editCreated(a *reply, format func(time.Time) string) {
	editParts(a, func(p *part) {
		if t, err := time.Parse(fhirDateTimeLayout, p.ValueDateTime); p.Name == "created" && err == nil {
			p.ValueDateTime = format(t)
		}
	})
}

// editFileLines edits each resource of an export file, served as NDJSON or as a Binary holding it; last
// says the resource is the file's last.
func editFileLines(a *reply, edit func(m map[string]json.RawMessage, last bool)) {
	lines := func(data []byte) []byte {
		var out bytes.Buffer
		read := 0
		for line := range bytes.Lines(data) {
			read += len(line)
			var m map[string]json.RawMessage
			if json.Unmarshal(line, &m) != nil {
				out.Write(line)
				continue
			}
			edit(m, len(bytes.TrimSpace(data[read:])) == 0)
			b, _ := json.Marshal(m)
			out.Write(append(b, '\n'))
		}
		return out.Bytes()
	}
	var bin binaryResource
	if strings.HasPrefix(a.header.Get("Content-Type"), "application/fhir+json") && json.Unmarshal(a.body, &bin) == nil {
		bin.Data = lines(bin.Data)
		setJSON(a, a.header.Get("Content-Type"), bin)
		return
	}
	a.body = lines(a.body)
}

// setLastUpdated sets a resource's meta.lastUpdated, keeping the rest of its meta.
func setLastUpdated(m map[string]json.RawMessage, at time.Time) {
	meta := map[string]json.RawMessage{}
	_ = json.Unmarshal(m["meta"], &meta) // a resource without meta gets one
	meta["lastUpdated"], _ = json.Marshal(fhirInstant(at))
	m["meta"], _ = json.Marshal(meta)
}

// retype gives a resource another type than its own: Observation for a Patient, Patient for anything else.
func retype(m map[string]json.RawMessage) {
	other := `"Patient"`
	if string(m["resourceType"]) == other {
		other = `"Observation"`
	}
	m["resourceType"] = json.RawMessage(other)
}

// finished tells a report job's parts of a DONE or FAILED job.
func finished(parts []part) bool {
	return slices.ContainsFunc(parts, func(p part) bool { return p.Name == "status" && (p.ValueString == "DONE" || p.ValueString == "FAILED") })
}

// longXProgress is a 115-character X-Progress (EXP-PROGRESS-LENGTH asks for under 100).
const longXProgress = "Build in progress - Status set to IN_PROGRESS - resources are being exported, files are being written, please wait."

// faultSkew is how far a wrong timestamp is off.
const faultSkew = time.Hour

// allReportJobs is every user's report jobs, for a status that leaks them; it takes each user's lock in turn.
func (s *Server) allReportJobs() []*reportJob {
	var all []*reportJob
	for _, st := range s.storeList {
		st.mu.Lock()
		all = append(all, st.reports...)
		st.mu.Unlock()
	}
	return all
}
