@report
Feature: $get-report-job-status: the report jobs a user has scheduled or executed
  FUT OperationDefinition -s-get-report-job-status (v3.3.0 to 8.0.0): "returns status for reports scheduled by
  the user (by schedule or execute)" as "a Bundle containing Parameters resources for each scheduled report".
  Report jobs are created by the FUT $execute-<report> and $schedule-<report> operations, which answer a
  placeholder Binary ("*NOT GENERATED YET*") that the job's binary reference later points at. The report type is
  REPORT (default patient-usage-stats). Every requirement ID below is a row of features/REQUIREMENTS.md.

  Rule: RJS-BUNDLE: a POST with an empty Parameters answers 200, application/fhir+json, and a Bundle of type collection

    @RJS-BUNDLE
    Scenario: the report job status is a collection Bundle of report-job Parameters
      When user A requests the report job status
      Then the response status is 200
      And the response Content-Type is "application/fhir+json"
      And the response body is a report job status Bundle

  Rule: RJS-LISTED: a report job started by the user appears in the user's status with the caller, class, status, parameters and creation time

    @RJS-LISTED
    Scenario Outline: a report started with $<variant> appears in the user's report job status
      When user A starts a report with $<variant> and anonymization "ANONYMIZED"
      Then the response status is 200
      And the response body is a Binary
      When user A requests the report job status
      Then the status lists the new report job for its caller with a reportClass, a status and a created time
      And the new report job's parameters hold anonymization "ANONYMIZED"
      And every report job in the status carries the caller's userId

      Examples:
        | variant  |
        | execute  |
        | schedule |

  Rule: RJS-STRUCTURE: every entry is a Parameters with exactly one reportJob whose parts have the specified names and types, in every state; a finished job carries ended; RJS-FULLURL: each entry's fullUrl should be an absolute URL or a urn:uuid: or urn:oid:

    @RJS-STRUCTURE @RJS-FULLURL
    Scenario: every listed report job is well-formed
      Given user A has started a report
      When user A requests the report job status
      Then every report job in the status is well-formed

    @RJS-STRUCTURE
    Scenario: a finished report job is well-formed and says when it ended
      Given user A has started a report
      When user A waits until the report job has finished
      Then every report job in the status is well-formed

  Rule: RJS-TERMINAL: a report job reaches DONE or FAILED within MAX_WAIT, and a DONE job's Binary holds the report

    @RJS-TERMINAL
    Scenario: a started report finishes and a DONE report's Binary is no longer the placeholder
      Given user A has started a report
      When user A waits until the report job has finished
      And user A reads the report's Binary if the job is DONE
      Then the report job's status is DONE or FAILED
      And the report's Binary is no longer the placeholder if the job is DONE

  Rule: RJS-CROSS-USER: the status lists only the caller's own report jobs

    @RJS-CROSS-USER @cross-user
    Scenario: another user's report job status never lists the first user's report job
      Given user A has started a report
      And user A has requested the report job status
      When user B requests the report job status
      Then the response status is 200
      And the response body is a report job status Bundle
      And the status does not list the report job of user A
      And every report job in the status carries one userId other than user A's

    @RJS-CROSS-USER @cross-user
    Scenario: another user's own report job is listed in that user's status with that user's userId
      Given user A has started a report
      And user A has requested the report job status
      When user B starts a report with $execute and anonymization "ANONYMIZED"
      Then the response status is 200
      And the response body is a Binary
      When user B requests the report job status
      Then the response status is 200
      And the response body is a report job status Bundle
      And the status lists the new report job for its caller with a reportClass, a status and a created time
      And the new report job's userId is not user A's
