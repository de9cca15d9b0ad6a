package refserver

import (
	"time"
)

// Retention: a finished export job (completed or cancelled), its output Binaries, and a report job with its
// Binary are forgotten Config.Retention after they end (FUT documents 2 hours). Expiry is lazy, like the job
// lifecycles: every request that touches jobs sweeps first, so memory stays bounded by the jobs of the last
// retention period without a background goroutine.

// exportEnd is when an export job stopped running: its completion, or its cancellation.
func (s *Server) exportEnd(j *exportJob) time.Time {
	if !j.cancelled.IsZero() {
		return j.cancelled
	}
	return j.completesAt(s.cfg.ExportDuration)
}

// exportExpired reports whether an export job's retention has passed.
func (s *Server) exportExpired(j *exportJob, now time.Time) bool {
	return !now.Before(s.exportEnd(j).Add(s.cfg.Retention))
}

// sweepReportsLocked forgets report jobs (and their Binaries) whose retention has passed. Jobs of one user
// are kept in creation order and all run equally long, so the expired ones are a prefix. s.mu must be held.
func (s *Server) sweepReportsLocked(now time.Time) {
	for owner, jobs := range s.reportJobs {
		n := 0
		for n < len(jobs) && !now.Before(jobs[n].endsAt(s.cfg.ReportDuration).Add(s.cfg.Retention)) {
			delete(s.binaries, jobs[n].binaryID)
			n++
		}
		switch {
		case n == len(jobs):
			delete(s.reportJobs, owner)
		case n > 0:
			s.reportJobs[owner] = append([]*reportJob(nil), jobs[n:]...)
		}
	}
}

// stateSize counts what the server holds, for the tests that check memory returns to its baseline.
type stateSize struct {
	exportJobs, binaries, reportJobs, tokens int
}

func (s *Server) stateSize() stateSize {
	s.mu.Lock()
	out := stateSize{exportJobs: len(s.exportJobs), binaries: len(s.binaries)}
	for _, jobs := range s.reportJobs {
		out.reportJobs += len(jobs)
	}
	s.mu.Unlock()
	out.tokens = s.tokens.count()
	return out
}
