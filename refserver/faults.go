package refserver

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Fault injection: each fault is one minimal deviation from one requirement of features/REQUIREMENTS.md,
// selected by name in Config.Faults (or refserver -faults). A fault is hooked by a one-line
// `if s.faulty(faultX) {...}` at the one place in the handlers where the deviation happens; with no fault
// selected every hook is false and the server is the conformant reference. The mutation runner
// (package mutation, `make mutation`) runs the suite against every fault and requires each one to be caught
// by the scenario tagged with its requirement.

// Fault describes one injectable deviation.
type Fault struct {
	Name        string // selects it in Config.Faults
	Requirement string // the requirement ID (scenario tag) it breaks
	Description string // the deviation, in one line
}

type fault string

// The faults, one constant each; the table below describes them.
const (
	faultKickoffNoContentLocation   fault = "kickoff-no-content-location"
	faultKickoffRelativeLocation    fault = "kickoff-relative-content-location"
	faultKickoff200                 fault = "kickoff-200"
	faultNoXProgress                fault = "no-x-progress"
	faultManifestWhileRunning       fault = "manifest-while-running"
	faultLongXProgress              fault = "long-x-progress"
	faultBadRetryAfter              fault = "bad-retry-after"
	faultManifestContentType        fault = "manifest-content-type"
	faultManifestNoError            fault = "manifest-no-error"
	faultManifestRelativeURL        fault = "manifest-relative-url"
	faultManifestBadTransactionTime fault = "manifest-bad-transaction-time"
	faultNoExpires                  fault = "no-expires"
	faultOutputWrongType            fault = "output-wrong-type"
	faultOutputCountMismatch        fault = "output-count-mismatch"
	faultOutputContentType          fault = "output-content-type"
	faultCancel200                  fault = "cancel-200"
	faultCancelNoOutcome            fault = "cancel-no-outcome"
	faultCancelledCompletes         fault = "cancelled-completes"
	faultCancelled410               fault = "cancelled-410"
	faultDeleteDone202              fault = "delete-done-202"
	faultDeleteDoneNoOutcome        fault = "delete-done-no-outcome"
	faultUnknownJob400              fault = "unknown-job-400"
	faultUnknownJobPlainBody        fault = "unknown-job-plain-body"
	faultMissingJob500              fault = "missing-job-500"
	faultMissingJob202              fault = "missing-job-202"
	faultExportCrossUser            fault = "export-cross-user"
	faultRJSSearchset               fault = "rjs-searchset"
	faultRJSContentType             fault = "rjs-content-type"
	faultRJSScheduleNotListed       fault = "rjs-schedule-not-listed"
	faultRJSParamsDropped           fault = "rjs-params-dropped"
	faultRJSBinaryAsString          fault = "rjs-binary-as-string"
	faultRJSCreatedAfterStarted     fault = "rjs-created-after-started"
	faultRJSBadCreated              fault = "rjs-bad-created"
	faultRJSBareFullURL             fault = "rjs-bare-fullurl"
	faultRJSNeverFinishes           fault = "rjs-never-finishes"
	faultRJSDonePlaceholder         fault = "rjs-done-placeholder"
	faultRJSCrossUserLeak           fault = "rjs-cross-user-leak"
)

var faultTable = []Fault{
	{string(faultKickoffNoContentLocation), "EXP-KICKOFF", "the kick-off answers 202 without a Content-Location header"},
	{string(faultKickoffRelativeLocation), "EXP-KICKOFF", "the kick-off's Content-Location is a relative URL"},
	{string(faultKickoff200), "EXP-KICKOFF", "the kick-off answers 200 OK instead of 202 Accepted"},
	{string(faultNoXProgress), "EXP-POLL-202", "a running export's 202 carries no X-Progress header"},
	{string(faultManifestWhileRunning), "EXP-POLL-202", "a running export's 202 carries a manifest body"},
	{string(faultLongXProgress), "EXP-PROGRESS-LENGTH", "X-Progress is 115 characters long (SHOULD: under 100)"},
	{string(faultBadRetryAfter), "EXP-RETRY-AFTER", `Retry-After is "1.5s", neither delay-seconds nor an HTTP-date`},
	{string(faultManifestContentType), "EXP-POLL-200", "the complete status is served as text/plain instead of application/json"},
	{string(faultManifestNoError), "EXP-POLL-200", "the manifest lacks the required error array"},
	{string(faultManifestRelativeURL), "EXP-POLL-200", "the manifest's output urls are relative"},
	{string(faultManifestBadTransactionTime), "EXP-POLL-200", `transactionTime is "2024-01-15 10:00:00", not a FHIR instant`},
	{string(faultNoExpires), "EXP-EXPIRES", "the complete status carries no Expires header (SHOULD)"},
	{string(faultOutputWrongType), "EXP-OUTPUT", "each output file holds the resources of another type than its manifest item"},
	{string(faultOutputCountMismatch), "EXP-OUTPUT", "each manifest count is one more than the resources in its file"},
	{string(faultOutputContentType), "EXP-OUTPUT", "output files are served as text/plain, neither NDJSON nor a Binary"},
	{string(faultCancel200), "EXP-CANCEL", "a DELETE on a running export cancels it but answers 200 instead of 202"},
	{string(faultCancelNoOutcome), "EXP-CANCEL", "a DELETE on a running export answers 202 with an empty body"},
	{string(faultCancelledCompletes), "EXP-CANCELLED-404", "a cancelled export completes anyway once its time is up (404, then 200)"},
	{string(faultCancelled410), "EXP-CANCELLED-404", "polling a cancelled export answers 410 Gone instead of 404"},
	{string(faultDeleteDone202), "EXP-DELETE-DONE", "a DELETE on a finished export answers 202 instead of 404"},
	{string(faultDeleteDoneNoOutcome), "EXP-DELETE-DONE", "a DELETE on a finished export answers 404 with an empty body"},
	{string(faultUnknownJob400), "EXP-UNKNOWN-JOB", "an unknown _jobId answers 400 instead of 404"},
	{string(faultUnknownJobPlainBody), "EXP-UNKNOWN-JOB", "an unknown _jobId answers 404 with a plain-text body, no OperationOutcome"},
	{string(faultMissingJob500), "EXP-MISSING-JOB", "polling without _jobId answers 500 (as a crashing server would)"},
	{string(faultMissingJob202), "EXP-MISSING-JOB", "polling without _jobId answers 202 Accepted"},
	{string(faultExportCrossUser), "EXP-CROSS-USER", "another user can poll and cancel an export (the owner is not checked)"},
	{string(faultRJSSearchset), "RJS-BUNDLE", "the status Bundle is of type searchset instead of collection"},
	{string(faultRJSContentType), "RJS-BUNDLE", "the status is served as application/json instead of application/fhir+json"},
	{string(faultRJSScheduleNotListed), "RJS-LISTED", "a report started with $schedule is never listed"},
	{string(faultRJSParamsDropped), "RJS-LISTED", "a report job's parameters part drops what was sent"},
	{string(faultRJSBinaryAsString), "RJS-STRUCTURE", "the binary part is a valueString instead of a valueReference"},
	{string(faultRJSCreatedAfterStarted), "RJS-STRUCTURE", "created is an hour after started"},
	{string(faultRJSBadCreated), "RJS-STRUCTURE", `created is "2023-10-12 09:51", not a FHIR dateTime`},
	{string(faultRJSBareFullURL), "RJS-FULLURL", "entry.fullUrl is a bare UUID, as FUT's example (SHOULD)"},
	{string(faultRJSNeverFinishes), "RJS-TERMINAL", "a report job stays RUNNING for ever"},
	{string(faultRJSDonePlaceholder), "RJS-TERMINAL", "a DONE report's Binary still holds the *NOT GENERATED YET* placeholder"},
	{string(faultRJSCrossUserLeak), "RJS-CROSS-USER", "every user's status lists every user's report jobs"},
}

// Faults returns the table of injectable faults, in the order of the requirements they break.
func Faults() []Fault { return slices.Clone(faultTable) }

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
		if !slices.ContainsFunc(faultTable, func(f Fault) bool { return f.Name == n }) {
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

// faulty reports whether fault f is injected.
func (s *Server) faulty(f fault) bool { return s.faults[f] }

// otherType is the dataset's next resource type after typ, for a file that holds the wrong type.
func (s *Server) otherType(typ string) string {
	types := s.dataset.types
	i := slices.Index(types, typ)
	return types[(i+1)%len(types)]
}

// withoutKey renders v as a JSON object without key, for a manifest that lacks a required field.
func withoutKey(v any, key string) any {
	raw, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return v
	}
	delete(m, key)
	return m
}

// setPart replaces the part of the same name.
func setPart(parts []part, p part) {
	for i := range parts {
		if parts[i].Name == p.Name {
			parts[i] = p
		}
	}
}

// allReportJobsLocked is every user's report jobs, for a status that leaks them. s.mu must be held.
func (s *Server) allReportJobsLocked() []*reportJob {
	var all []*reportJob
	for _, jobs := range s.reportJobs {
		all = append(all, jobs...)
	}
	return all
}

// longXProgress is a 115-character X-Progress (EXP-PROGRESS-LENGTH asks for under 100).
const longXProgress = "Build in progress - Status set to IN_PROGRESS - resources are being exported, files are being written, please wait."

// faultSkew is how far a wrong timestamp is off.
const faultSkew = time.Hour
