package refserver

import (
	"container/heap"
	"sync"
	"time"
)

// Jobs are held per user: each configured user has a userStore with its own lock, its export jobs by id,
// its Binaries by id and its report jobs in creation order. No request takes a lock another user's request
// needs (except the faults that leak across users on purpose), and none scans every job: a lookup is a map
// access, and retention pops the jobs whose time has passed from a heap ordered by expiry.
//
// Every decision about a job's state reads the clock while holding its user's lock, so the times the
// requests of one user see are ordered like the requests themselves: a job one request saw complete is
// complete for every later request (a DELETE then answers 404 and cannot cancel it).

// userStore is one user's jobs and files.
type userStore struct {
	mu       sync.Mutex
	exports  map[string]*exportJob // by job id
	expiries exportHeap            // the export jobs, earliest retention end first
	binaries map[string]*binary    // by Binary id: export files and report Binaries
	reports  []*reportJob          // creation order; they all run equally long, so the expired ones are a prefix

	byReuseKey map[string]map[string]*exportJob // export jobs by reuse key, then id (reuse.go)
}

func newUserStore() *userStore {
	return &userStore{exports: make(map[string]*exportJob), binaries: make(map[string]*binary),
		byReuseKey: make(map[string]map[string]*exportJob)}
}

// addExportLocked stores a new export job. st.mu must be held.
func (s *Server) addExportLocked(st *userStore, j *exportJob) {
	st.exports[j.id] = j
	heap.Push(&st.expiries, j)
	same := st.byReuseKey[j.reuseKey]
	if same == nil {
		same = make(map[string]*exportJob)
		st.byReuseKey[j.reuseKey] = same
	}
	same[j.id] = j
}

// forgetExportLocked drops an export job whose retention has ended, with its files. st.mu must be held.
func forgetExportLocked(st *userStore, j *exportJob) {
	for _, o := range j.outputs {
		delete(st.binaries, o.binaryID)
	}
	for _, o := range j.errors {
		delete(st.binaries, o.binaryID)
	}
	delete(st.exports, j.id)
	if same := st.byReuseKey[j.reuseKey]; same != nil {
		delete(same, j.id)
		if len(same) == 0 {
			delete(st.byReuseKey, j.reuseKey)
		}
	}
}

// store returns the user's store. Stores are created for every configured user in NewServer and the map is
// never written afterwards, so reading it needs no lock.
func (s *Server) store(userID string) *userStore { return s.stores[userID] }

// lock takes the user's lock, reads the clock under it, and forgets what has expired. The caller unlocks.
func (s *Server) lock(st *userStore) time.Time {
	st.mu.Lock()
	now := s.cfg.Clock.Now()
	s.sweepStoreLocked(st, now)
	return now
}

// sweepStoreLocked forgets the store's export jobs (and their files) and report jobs (and their Binaries)
// whose retention has passed. Its cost is the number of jobs it forgets. st.mu must be held.
func (s *Server) sweepStoreLocked(st *userStore, now time.Time) {
	for len(st.expiries) > 0 && !now.Before(s.exportExpiry(st.expiries[0])) {
		forgetExportLocked(st, heap.Pop(&st.expiries).(*exportJob))
	}
	n := 0
	for n < len(st.reports) && !now.Before(st.reports[n].endsAt(s.cfg.ReportDuration).Add(s.cfg.Retention)) {
		delete(st.binaries, st.reports[n].binaryID)
		n++
	}
	if n > 0 {
		clear(st.reports[:n]) // the array keeps the prefix until the next reallocation; not the jobs
		st.reports = st.reports[n:]
		if len(st.reports) == 0 {
			st.reports = nil
		}
	}
}

// sweepOthers forgets the expired jobs of up to sweepOthersPerRequest other users, so that a user who stops
// calling does not hold memory for ever. It never waits: a store whose lock is taken is skipped.
func (s *Server) sweepOthers(self *userStore) {
	n := len(s.storeList)
	if n <= 1 {
		return
	}
	start := int(s.sweepCursor.Add(sweepOthersPerRequest)) % n
	for i := 0; i < min(sweepOthersPerRequest, n); i++ {
		st := s.storeList[(start+i)%n]
		if st == self || !st.mu.TryLock() {
			continue
		}
		s.sweepStoreLocked(st, s.cfg.Clock.Now())
		st.mu.Unlock()
	}
}

// sweepOthersPerRequest bounds the work one request does for other users' retention.
const sweepOthersPerRequest = 4

// oldestExportExpiry is when the store's first export job is forgotten (zero: it holds none).
func (s *Server) oldestExportExpiry(st *userStore) time.Time {
	if len(st.expiries) == 0 {
		return time.Time{}
	}
	return s.exportExpiry(st.expiries[0])
}

// exportExpiry is when an export job's retention ends.
func (s *Server) exportExpiry(j *exportJob) time.Time { return j.end().Add(s.cfg.Retention) }

// exportHeap orders export jobs by the end of their retention. Its key, the job's end, changes only
// under the store's lock (a cancellation), followed by heap.Fix.
type exportHeap []*exportJob

func (h exportHeap) Len() int           { return len(h) }
func (h exportHeap) Less(a, b int) bool { return h[a].end().Before(h[b].end()) }
func (h exportHeap) Swap(a, b int) {
	h[a], h[b] = h[b], h[a]
	h[a].heapIndex = a
	h[b].heapIndex = b
}
func (h *exportHeap) Push(x any) {
	j := x.(*exportJob)
	j.heapIndex = len(*h)
	*h = append(*h, j)
}
func (h *exportHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.heapIndex = -1
	return j
}
