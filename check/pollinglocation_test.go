package check

import "testing"

func TestCheckFUTPollingLocation(t *testing.T) {
	for value, ok := range map[string]bool{
		// FUT's recorded kick-off (POST_export.md): its public host, a UUID job id
		"https://task.local.ehealth.sundhed.dk/fhir/$export-poll-status?_jobId=5d2a1f4e-3b0c-4a8e-9f1d-2c7b6e0a9d13": true,
		"http://127.0.0.1:8080/fhir/%24export-poll-status?_jobId=42":                                                 true, // $ percent-encoded
		"http://x/fhir/$export-poll-status?_jobId=42&_pretty=true":                                                   true,
		"http://x/fhir/bulkstatus/42":                                                                                false, // SMART's form: no FUT polling location
		"http://x/fhir/$export-poll-status":                                                                          false,
		"http://x/fhir/$export-poll-status?job=42":                                                                   false,
		"http://x/fhir/$export-poll-status?_jobId=":                                                                  false,
		"http://x/fhir/$export-poll-status?_jobId=1&_jobId=2":                                                        false,
		"http://x/fhir/$export-poll-status/x?_jobId=42":                                                              false,
		"/fhir/$export-poll-status?_jobId=42":                                                                        false, // not absolute
		"http://x/fhir/$export-poll-status?_jobId=42&bad=%zz":                                                        false,
	} {
		if err := CheckFUTPollingLocation("EXP-POLL-LOCATION", "header Content-Location", value); (err == nil) != ok {
			t.Errorf("%q: got %v, want ok=%v", value, err, ok)
		}
	}
}
