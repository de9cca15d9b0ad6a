package refserver

import (
	"fmt"
	"net/http"
	"time"
)

// Profile selects which source's behaviour the server emulates where the sources disagree (the harness's
// features/PROFILES.md): the same behaviours, switched in one place each.
type Profile string

const (
	// ProfileFUT is FUT's OperationDefinitions as HAPI FHIR ≥ 8.6 serves them (the default).
	ProfileFUT Profile = "fut"
	// ProfileBulkData is the HL7 Bulk Data Access IG v2 alone: no X-Progress (it is a MAY), a DELETE on a
	// finished export answers 202 and releases it, after which polling answers 404.
	ProfileBulkData Profile = "bulkdata"
	// ProfileHAPI80 is FUT as deployed on HAPI FHIR 8.0: a cancelled job keeps answering 202 with
	// "Status set to CANCELLED", and a repeated DELETE keeps answering "successfully cancelled".
	ProfileHAPI80 Profile = "hapi-8.0"
)

// Profiles lists the emulations, for flags and error messages.
var Profiles = []Profile{ProfileFUT, ProfileBulkData, ProfileHAPI80}

func (p Profile) valid() bool {
	for _, known := range Profiles {
		if p == known {
			return true
		}
	}
	return false
}

// providerErrorCode is the issue code of the Bulk Export provider's own error OperationOutcomes: HAPI ≤ 8.4
// leaves it out (addIssue(..., code=null)), fixed in 8.6.0.
func (p Profile) providerErrorCode(code string) string {
	if p == ProfileHAPI80 {
		return ""
	}
	return code
}

// crashesWithoutJobID: HAPI reads a missing _jobId from the request's Parameters body, which a GET or a
// DELETE has none of, and answers the NullPointerException with a 500 and an OperationOutcome
// (BulkDataExportProvider.exportPollStatus, read from the code: the digest's B3). Emulated in hapi-8.0 only,
// where the harness reports it (EXP-MISSING-JOB-4XX is MAY there); fut keeps HAPI's POST answer, 400.
// A POST crashes alike when its body is empty and has no Content-Type: OperationMethodBinding.invokeServer
// loads the body with ResourceParameter.loadResourceFromRequest, which returns null for a blank body without
// a Content-Type, and that null is the request's resource the provider reads.
func (p Profile) crashesWithoutJobID() bool { return p == ProfileHAPI80 }

// countsOutput: the HL7 IG lets each manifest item carry its resource count ("count", optional), and the
// SMART reference server sends it; HAPI never does (its BulkExportResponseJson items have type and url only,
// the digest's D1 point 7), nor FUT's recorded manifest (GET_export-poll-status_200.md). Sent in bulkdata
// only, so that fut and hapi-8.0 answer as the servers they emulate: a client for FUT that reads a manifest
// item as type and url alone (Trifork's hapi-fhir-export-client, with a strict Jackson ObjectMapper) works.
func (p Profile) countsOutput() bool { return p == ProfileBulkData }

// exceptionCode is the issue code of an error HAPI answers for an exception thrown in the provider or the
// framework (an unknown job's ResourceNotFoundException HAPI-2040, a missing _jobId's InvalidRequestException
// HAPI-2227, a crash's InternalErrorException HAPI-0389, a body that does not parse, HAPI-0450): HAPI's
// ExceptionHandlingInterceptor.populateDetails (RestfulServer's DEFAULT_EXCEPTION_HANDLER) writes one issue,
// severity error, code "processing", diagnostics the exception's message, whatever the exception. Emulated in
// hapi-8.0; fut and bulkdata keep the more precise code.
func (p Profile) exceptionCode(code string) string {
	if p == ProfileHAPI80 {
		return codeProcessing
	}
	return code
}

// hapiMessage is diagnostics as HAPI words an exception's message in hapi-8.0: prefixed with its HAPI-####
// code (ca.uhn.fhir.i18n.Msg.code).
func (p Profile) hapiMessage(code, msg string) string {
	if p == ProfileHAPI80 {
		return "HAPI-" + code + ": " + msg
	}
	return msg
}

// jobRef is how HAPI's cancel messages name a job: JpaJobPersistenceImpl.cancelInstance ("Job instance <" +
// id + "> successfully cancelled.") and BulkDataExportProvider.handleDeleteRequest ("Job instance <" + id +
// "> was already cancelled or has completed.  Nothing to do.") put the id in angle brackets. Emulated in
// hapi-8.0, the version whose code was read.
func (p Profile) jobRef(id string) string {
	if p == ProfileHAPI80 {
		return "<" + id + ">"
	}
	return id
}

// deleteContentType is the Content-Type of a DELETE's OperationOutcome: HAPI's handleDeleteRequest sets
// none (the digest's C1; FUT's gateway may add one), emulated in hapi-8.0, where the harness tolerates it
// as a known deviation.
func (p Profile) deleteContentType() string {
	if p == ProfileHAPI80 {
		return ""
	}
	return contentTypeFHIRJSON
}

// pollsByPost: $export-poll-status is a FHIR operation, and HAPI declares it idempotent and delete-enabled, so
// it serves GET, DELETE and POST, a POST's _jobId read from the query or from a Parameters body
// (BulkDataExportProvider.exportPollStatus; BulkDataExportProviderTest
// testOperationExportPollStatus_POST_ExistingId_Accepted and _POST_NonExistingId_NotFound). HAPI's own
// generic client invokes an operation by POST. The HL7 IG's polling location is polled by GET only.
func (p Profile) pollsByPost() bool { return p != ProfileBulkData }

// transactionTime is a completed export's manifest transactionTime. The HL7 IG: "the server's time when the
// query is run", and HAPI ≥ 8.2 writes the job's start time (hapi-fhir #6841, PR #6842: "We use the job-end
// time for transactionTime instead of job-start time. This violates the spec"). HAPI ≤ 8.1, FUT's 8.0 among
// them, writes the job's end time (BulkDataExportProvider: setTransactionTime(info.getEndTime()); FUT's
// 8.0 example has a transactionTime after its Binaries' lastUpdated).
func (p Profile) transactionTime(kickoff, completed time.Time) time.Time {
	if p == ProfileHAPI80 {
		return completed
	}
	return kickoff
}

// dropsBlankFilters: HAPI drops blank _typeFilter and _typePostFetchFilterUrl values and exports as if they
// were not sent (dropBlankFilters); the HL7 IG says nothing of an empty value, so bulkdata answers the
// parameter as any it does not support (400 without Prefer: handling=lenient).
func (p Profile) dropsBlankFilters() bool { return p != ProfileBulkData }

// sendsXProgress: FUT promises X-Progress; the HL7 IG only allows it.
func (p Profile) sendsXProgress() bool { return p != ProfileBulkData }

// writeCancelledPoll answers a poll of a cancelled export.
func (s *Server) writeCancelledPoll(w http.ResponseWriter, id string, cancelled time.Time) {
	if s.cfg.Profile == ProfileHAPI80 { // HAPI ≤ 8.4: the CANCELLED state is reported as progress
		w.Header().Set("X-Progress", "Build in progress - Status set to CANCELLED at "+fhirInstant(cancelled))
		w.Header().Set("Retry-After", retryAfterSeconds(s.cfg.RetryAfter))
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	markAnswer(w, answerPollCancelled)
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Job instance %s was cancelled.  No status to report.", id))
}

// writeCancelOfCancelled answers a DELETE of an already cancelled export.
func (s *Server) writeCancelOfCancelled(w http.ResponseWriter, id string) {
	if s.cfg.Profile == ProfileHAPI80 { // HAPI ≤ 8.4: the cancel flag is set again, "successfully"
		s.writeCancelled(w, id)
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Job instance %s was already cancelled.  Nothing to do.", id))
}

// releaseFinishedLocked handles a DELETE of a completed export. In the HL7 IG it is the client saying it is
// done with the files (202, then 404 for good); FUT and HAPI answer 404 and keep the manifest. It reports
// whether the export was released. Its store's lock must be held.
func (s *Server) releaseFinishedLocked(j *exportJob, now time.Time) bool {
	if s.cfg.Profile != ProfileBulkData {
		return false
	}
	j.released = now
	return true
}
