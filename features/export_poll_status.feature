@export
Feature: $export-poll-status: polling a system-level FHIR Bulk Data export
  FUT OperationDefinition -s-export-poll-status (v8.0.0), the FUT $export kick-off, and the HL7 FHIR Bulk Data
  Access IG v2 sections "Bulk Data Kick-off Request", "Bulk Data Status Request", "Bulk Data Delete Request" and
  "Bulk Data Output File Request". The harness follows only the Content-Location that a kick-off returns; it
  never builds a polling URL of its own, so it works with whatever polling URL a server hands out. Every
  requirement ID below is a row of features/REQUIREMENTS.md, with its source clause and severity. Where the
  sources disagree, a step names the behaviour ("the profile's ... answer") and features/PROFILES.md says what
  each profile (PROFILE=fut, bulkdata, hapi-8.0) accepts.

  Rule: EXP-KICKOFF: a system-level kick-off by GET with "Prefer: respond-async" answers 202 Accepted and an absolute Content-Location

    @EXP-KICKOFF
    Scenario: a kick-off by GET answers 202 Accepted with an absolute polling URL
      When user A kicks off a system export by GET
      Then the response status is 202
      And the response header "Content-Location" is an absolute URL
      And the response body, if any, is an OperationOutcome

  Rule: EXP-POLL-LOCATION: FUT's kick-off answers its polling location as [base]/$export-poll-status with the job's _jobId (not applicable in bulkdata)
    FUT-OD-POLL: "A complete URL including the '_jobId' is returned in the 'Content-Location' response header when
    initiating the export". The HL7 IG gives the polling location no form, so bulkdata does not check it.

    @EXP-POLL-LOCATION
    Scenario: a kick-off's Content-Location is FUT's $export-poll-status URL with a _jobId
      When user A kicks off a system export by POST
      Then the response status is 202
      And the response header "Content-Location" is FUT's polling location with a _jobId

  Rule: EXP-KICKOFF-POST: a kick-off by POST with a Parameters body answers as one by GET (FUT's documented form; optional in the HL7 IG)

    @EXP-KICKOFF-POST
    Scenario: a kick-off by POST answers 202 Accepted with an absolute polling URL
      When user A kicks off a system export by POST
      Then the response status is 202
      And the response header "Content-Location" is an absolute URL
      And the response body, if any, is an OperationOutcome

  Rule: EXP-OUTPUT-FORMAT: a kick-off whose _outputFormat is one of the HL7 IG's abbreviations of the NDJSON type answers as one with the full type

    @EXP-OUTPUT-FORMAT
    Scenario Outline: a kick-off by GET with _outputFormat "<format>" answers 202 Accepted with an absolute polling URL
      When user A kicks off a system export by GET with _outputFormat "<format>"
      Then the response status is 202
      And the response header "Content-Location" is an absolute URL
      And the response body, if any, is an OperationOutcome

      Examples:
        | format             |
        | application/ndjson |
        | ndjson             |

  Rule: EXP-TYPE-REPEATED: a kick-off whose _type is repeated, one type each, answers as one with the types comma-separated
    The HL7 IG: "The server SHALL treat the values provided as if they were comma delimited values within a single
    instance of the parameter." A refusal counts only when the same types, once and comma-separated, are accepted.

    @EXP-TYPE-REPEATED
    Scenario: a kick-off by GET with _type repeated answers 202 Accepted with an absolute polling URL
      When user A kicks off a system export by GET with _type repeated
      Then the response status is 202
      And the response header "Content-Location" is an absolute URL
      And the response body, if any, is an OperationOutcome

  Rule: EXP-POLL-202: while the job runs, the polling location answers 202 Accepted (FUT: with X-Progress) and no manifest; EXP-RETRY-AFTER: its Retry-After, when present, is one delay-seconds or HTTP-date; EXP-RETRY-AFTER-SENT: it should carry one

    @EXP-POLL-202 @EXP-PROGRESS-LENGTH
    Scenario: polling a running export answers 202, with the X-Progress the profile requires, and no manifest
      Given user A has kicked off a system export
      When user A polls the export status while it runs
      Then the response is the profile's "running" answer
      And the response carries no manifest

    @EXP-RETRY-AFTER @EXP-RETRY-AFTER-SENT
    Scenario: Retry-After on a running export is delta-seconds or an HTTP-date, and the server sends one
      Given user A has kicked off a system export
      When user A polls the export status while it runs
      Then the response status is 202
      And the response header "Retry-After", when present, is delta-seconds or an HTTP-date

  Rule: EXP-POLL-200: a finished export answers 200 OK, Content-Type application/json, and a valid manifest; EXP-POLL-ERROR: an export the server fails answers an error status whose body should be an OperationOutcome
    An export the server fails (the HL7 IG's error status, a 4xx or 5xx that is not transient) is allowed:
    every scenario that needed it completed is skipped, naming the answer, and its requirements read not checked.

    @EXP-POLL-200 @EXP-POLL-ERROR
    Scenario: a finished export answers 200 with a Bulk Data manifest
      Given user A has kicked off a system export
      When user A polls the export status until it completes
      Then the response status is 200
      And the response Content-Type is "application/json"
      And the response body is a valid export manifest

  Rule: EXP-EXPIRES: the complete status should carry an Expires header saying when its files stop being available

    @EXP-EXPIRES
    Scenario: a finished export's complete status says in an Expires header when its files expire
      Given user A has a completed system export
      Then the complete status carries an Expires header in the future

  Rule: EXP-OUTPUT: every output file downloads, with the token when requiresAccessToken is true, as NDJSON of its manifest type; EXP-MODIFIED-AFTER: it should hold no resource modified after the manifest's transactionTime

    @EXP-OUTPUT @EXP-MODIFIED-AFTER
    Scenario: every output file downloads as NDJSON resources of its manifest type, none modified after the transactionTime
      Given user A has a completed system export
      When user A downloads every output file of the manifest
      Then every output file holds only FHIR resources of its manifest type
      And no output line decoded as FHIR was modified after the manifest's transactionTime

  Rule: EXP-OUTPUT-ACCEPT: an output file requested without Accept, or with Accept application/fhir+ndjson, answers the NDJSON file itself

    @EXP-OUTPUT-ACCEPT
    Scenario: an output file requested without Accept, or asking for NDJSON, is the NDJSON file of its manifest type
      Given user A has a completed system export
      When user A downloads every output file of the manifest without an Accept header
      Then every output file is NDJSON of its manifest type
      When user A downloads every output file of the manifest with Accept "application/fhir+ndjson"
      Then every output file is NDJSON of its manifest type

  Rule: EXP-OUTPUT-TOKEN: with requiresAccessToken true an output file requested without a token is refused; with false it downloads without one
    BDA2 allows false for a file server of another access-control scheme: a file refused without a token is
    asked once more with user A's token, on an origin trusted with it; read so, the manifest's false is wrong;
    refused again, or on an origin not trusted, the file is not checked.

    @EXP-OUTPUT-TOKEN
    Scenario: an output file requested without a token answers as the manifest's requiresAccessToken says
      Given user A has a completed system export
      When every output file of the manifest is requested without a token
      Then each output file answers as the manifest's requiresAccessToken says

  Rule: EXP-POLL-TOKEN: a status request sent without a token is refused, as a kick-off without one would be
    HL7 Bulk Data IG "Privacy and Security Considerations": the Bulk Data Status Request SHALL be protected the
    same way as the Kick-off Request. Only the GET: the clause names the Status Request, so no DELETE is ever
    sent without a token. Not applicable in a run that sends no token at all.

    @EXP-POLL-TOKEN
    Scenario: a status request without a token is refused while the owner's own is answered
      Given user A has kicked off a system export
      When the export status is requested without a token, then by user A with the token
      Then the request without a token is refused, and user A's is answered

  Rule: EXP-RETAINED: a completed export stays readable: a second poll, some seconds later, answers the same manifest

    @EXP-RETAINED
    Scenario: a second poll of a completed export, some seconds later, answers the same manifest
      Given user A has a completed system export
      When user A polls the export status again some seconds later
      Then the response is the manifest the export completed with

  Rule: EXP-CANCEL: a DELETE on a running export cancels it: 202 Accepted (FUT: with an OperationOutcome); EXP-CANCELLED-404: then the profile's answer (FUT, HL7 IG: 404 with an OperationOutcome), and it never completes; in the HL7 IG a second DELETE answers 404 too

    @EXP-CANCEL
    Scenario: cancelling a running export answers 202, with the OperationOutcome the profile requires
      Given user A has kicked off a system export that is still running
      When user A cancels the export
      Then the response is the profile's "cancel-running" answer

    @EXP-CANCELLED-404
    Scenario: a cancelled export answers as the profile specifies (FUT: 404 with an OperationOutcome) and never completes
      Given user A has cancelled a running system export
      When user A polls the export status
      Then the response is the profile's "poll-cancelled" answer
      And the export never completes for user A
      And a second DELETE of the cancelled export by user A answers the profile's "delete-cancelled" answer

  Rule: EXP-DELETE-DONE: a DELETE on a finished export answers 404 Not Found with an OperationOutcome (FUT, HAPI); the HL7 IG lets the server release the files, 202 and then 404, or refuse with its error status and an OperationOutcome

    @EXP-DELETE-DONE
    Scenario: cancelling a finished export answers as the profile specifies, and so does polling it afterwards
      Given user A has a completed system export
      When user A cancels the export
      Then the response is the profile's "delete-finished" answer
      When user A polls the export status
      Then the response is the profile's "poll-after-delete-finished" answer, unless the DELETE was refused

  Rule: EXP-UNKNOWN-JOB: an unknown job id answers the profile's error (FUT: 404 with an OperationOutcome) and a missing _jobId an error with an OperationOutcome
    FUT's $export-poll-status?_jobId=<id> in fut and hapi-8.0; in bulkdata (the HL7 IG defines no polling URL)
    the polling location the kick-off returned with its job id (the part in which two kick-offs' locations
    differ) replaced, answered by any 4xx, an OperationOutcome expected (SHOULD); and no request without a job id.

    @EXP-UNKNOWN-JOB
    Scenario: polling an unknown job id answers the profile's error (FUT: 404 with an OperationOutcome)
      Given user A has kicked off a system export
      When user A polls the export status of an unknown job id
      Then the response is the profile's "unknown-job" answer

    @EXP-MISSING-JOB
    Scenario: polling without a job id answers an error with an OperationOutcome
      When user A polls the export status without a job id
      Then the response status is an error
      And the response body is an OperationOutcome

    @EXP-MISSING-JOB-4XX
    Scenario: polling without a job id is answered as the client's error, not the server's
      When user A polls the export status without a job id
      Then the response status is a client error

  Rule: EXP-CROSS-USER: an export's files are the exporting user's; another user cannot read them

    @EXP-CROSS-USER @cross-user
    Scenario: another user cannot read the export's output files
      Given user A has a completed system export
      When user B requests every output file of the manifest with their own token
      Then each output file is refused to user B

  Rule: EXP-CROSS-USER-POLL: another user should neither poll nor cancel an export
    FUT restricts the files, not the polling location; HAPI checks only the request's partition there.

    @EXP-CROSS-USER-POLL @cross-user
    Scenario: another user can neither poll nor cancel an export
      Given user A has kicked off a system export
      When user B polls the export status
      Then the response status is a client error
      When user B cancels the export
      Then the response status is a client error
      And the export is not cancelled for user A
