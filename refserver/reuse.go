package refserver

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Bulk export job reuse, as HAPI FHIR does it by default (JpaStorageSettings.enableBulkExportJobReuse;
// hapi-fhir #4154, #5157): a kick-off identical to an earlier one is answered with that job's polling
// location, running or already complete, instead of a new job. HAPI skips the reuse when the kick-off
// carries "Cache-Control: no-cache" (BulkDataExportProvider.shouldUseCache).
//
// "Identical" follows HAPI's JobCoordinatorImpl.startInstance: the same serialized job parameters — output
// format, resource types (a set), _since, _exportId (and _typeFilter, which this server does not support),
// the request URL without its query (since #5161, so a GET and a POST match) — among jobs QUEUED, IN_PROGRESS
// or COMPLETED, a completed one first. HAPI's parameters do not name the user: HAPI core reuses across users
// (inferno-reference-server #160 turned reuse off for that reason). Here reuse is scoped to the user on
// purpose: a job's files are its owner's only (FUT's Binary securityContext) and another user's job answers
// 404, so a cross-user reuse would hand out a polling location its caller cannot read.

// reusesExportJobs: FUT runs on HAPI with job reuse on; the HL7 IG has no such behaviour.
func (p Profile) reusesExportJobs() bool { return p != ProfileBulkData }

// exportReuseKey is what makes two kick-offs identical, apart from their user.
func exportReuseKey(base string, p exportParams) string {
	types := slices.Clone(p.types)
	slices.Sort(types)
	since := ""
	if !p.since.IsZero() {
		since = strconv.FormatInt(p.since.UnixMilli(), 10) // HAPI keeps _since as a java.util.Date
	}
	ignored := slices.Clone(p.ignored) // a lenient kick-off's error file says what it ignored
	slices.Sort(ignored)
	return strings.Join([]string{base + "/$export", p.outputFormat, strings.Join(types, ","), since, p.exportID, strings.Join(ignored, "\x00")}, "\n")
}

// noCache reports whether the request carries "Cache-Control: no-cache" (HAPI's CacheControlDirective).
func noCache(r *http.Request) bool {
	for _, h := range r.Header.Values("Cache-Control") {
		for _, d := range strings.Split(h, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(d), "=")
			if strings.EqualFold(strings.TrimSpace(name), "no-cache") {
				return true
			}
		}
	}
	return false
}

// reusableJobLocked returns the caller's job that an identical kick-off reuses, or nil when the profile does
// not reuse, the request says no-cache or no job matches: a completed job first, else a running one, the
// oldest of them. Cancelled and released jobs are never reused. Only the jobs of the caller's store with the
// same key are looked at (store.go). st.mu must be held.
func (s *Server) reusableJobLocked(st *userStore, r *http.Request, fresh *exportJob, now time.Time) *exportJob {
	if !s.cfg.Profile.reusesExportJobs() || noCache(r) {
		return nil
	}
	var best *exportJob
	var bestState exportState
	for _, j := range st.byReuseKey[fresh.reuseKey] {
		if !j.released.IsZero() {
			continue
		}
		state := j.state(now)
		if state == exportCancelled {
			continue
		}
		if best == nil || state == exportCompleted && bestState != exportCompleted ||
			state == bestState && (j.kickoff.Before(best.kickoff) || j.kickoff.Equal(best.kickoff) && j.id < best.id) {
			best, bestState = j, state
		}
	}
	return best
}
