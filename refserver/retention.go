package refserver

import (
	"time"
)

// Retention: a finished export job (completed or cancelled), its output Binaries, and a report job with its
// Binary are forgotten Config.Retention after they end (FUT documents 2 hours). Expiry is lazy, like the job
// lifecycles: every request that touches a user's jobs sweeps that user's store first (store.go), and sweeps a
// few other users' stores it can lock without waiting, so memory stays bounded by the jobs of the last
// retention period without a background goroutine.

// end is when an export job stopped running: its completion, or its cancellation.
func (j *exportJob) end() time.Time {
	if !j.cancelled.IsZero() {
		return j.cancelled
	}
	return j.completes
}

// stateSize counts what the server holds, for the tests that check memory returns to its baseline.
type stateSize struct {
	exportJobs, binaries, reportJobs, tokens int
}

func (s *Server) stateSize() stateSize {
	var out stateSize
	for _, st := range s.storeList {
		st.mu.Lock()
		out.exportJobs += len(st.exports)
		out.binaries += len(st.binaries)
		out.reportJobs += len(st.reports)
		st.mu.Unlock()
	}
	out.tokens = s.tokens.count()
	return out
}
