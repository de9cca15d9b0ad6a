package check

import (
	"net/url"
	"path"
	"strings"
)

// CheckAbsoluteURL requires an absolute http(s) URL, such as a Content-Location or a manifest's file URL.
func CheckAbsoluteURL(req, subject, value string) error {
	if value == "" {
		return Violationf(req, subject, "an absolute http(s) URL", "nothing")
	}
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Violationf(req, subject, "an absolute http(s) URL", "%q", value)
	}
	return nil
}

// CheckMediaType compares media types only: parameters such as charset are tolerated.
func CheckMediaType(req string, x *Exchange, want string) error {
	if x.MediaType() != strings.ToLower(want) {
		got := x.Header.Get("Content-Type")
		if got == "" {
			got = "no Content-Type"
		}
		return Violationf(req, "Content-Type of "+x.Method+" "+x.URL, want+" (parameters such as charset allowed)", "%s", got)
	}
	return nil
}

// CheckFUTPollingLocation holds a kick-off's Content-Location to the form FUT's OperationDefinitions give it:
// FUT-OD-POLL, "A complete URL including the '_jobId' is returned in the 'Content-Location' response header when
// initiating the export", the operation's URL being [base]/$export-poll-status; HAPI, on which FUT runs, writes
// serverBase + "/$export-poll-status?_jobId=" + the job's id (BulkExportJobService.
// writePollingLocationToResponseHeaders). So: an absolute URL whose path ends in the segment
// $export-poll-status and whose query holds exactly one non-empty _jobId. Its host and base path are not
// compared with the target's: FUT's recorded kick-off (POST_export.md) names its public host, a proxy may
// name another.
func CheckFUTPollingLocation(req, subject, value string) error {
	if err := CheckAbsoluteURL(req, subject, value); err != nil {
		return err
	}
	const want = "FUT's polling location, [base]/$export-poll-status?_jobId=<the job's id> (FUT-OD-POLL: \"A complete URL including the '_jobId' is returned in the 'Content-Location' response header\")"
	u, _ := url.Parse(value)
	if path.Base(u.Path) != "$export-poll-status" {
		return Violationf(req, subject, want, "%q, whose path does not end in $export-poll-status", value)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Violationf(req, subject, want, "%q, whose query does not parse: %v", value, err)
	}
	switch ids := q["_jobId"]; {
	case len(ids) == 0:
		return Violationf(req, subject, want, "%q, without a _jobId", value)
	case len(ids) > 1:
		return Violationf(req, subject, want, "%q, with %d _jobId parameters", value, len(ids))
	case strings.TrimSpace(ids[0]) == "":
		return Violationf(req, subject, want, "%q, whose _jobId is empty", value)
	}
	return nil
}
