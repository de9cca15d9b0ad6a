package steps

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// jobPool holds the run's asynchronous jobs that scenarios wait on, so that their waits overlap instead of
// adding up. Scenarios that only read a completed export share one per user; scenarios that change a
// completed export (DELETE after completion) each own one, started ahead; reports a scenario waits on are
// started ahead too. Everything a pooled job sent and received is adopted into the transcript of each
// scenario that uses it, and judged again there, so that every scenario keeps its own verdict, warnings and
// transcript. A job started for no scenario is never started: the plan comes from the selected scenarios.
//
// The pool also bounds the export jobs the harness keeps in flight (MAX_JOBS): every kick-off, a scenario's own
// or a pooled one, takes a slot, freed when the job completes, fails, is cancelled or its scenario ends.
//
// When the run ends, endRun cancels on the server the pooled exports the run leaves there.
type jobPool struct {
	target   *Target
	reqs     map[string]features.Requirement // the job worlds judge as the scenarios do
	profiles features.Profiles
	slots    chan struct{}
	start    sync.Once
	ctx      context.Context
	stop     context.CancelFunc // ends ctx: the pool's polling stops with the run
	// kickoffCtx is the context of the pooled kick-offs' requests, which the run's end does not cut short: a
	// kick-off cut short may have started a job whose polling location the harness then never learns, to
	// delete it. endRun ends it, once the cleanup has waited for the answers.
	kickoffCtx  context.Context
	endKickoffs context.CancelFunc

	mu      sync.Mutex
	shared  map[string]*pooledExport   // per user: one completed export, read by many scenarios
	owned   map[string][]*pooledExport // per user: completed exports started ahead, each for one scenario
	reports map[string][]*pooledReport // per user: report jobs started ahead, each for one scenario
	// cancelled: per user, exports kicked off and cancelled at once ahead, each for one scenario that watches
	// a cancelled export never complete
	cancelled map[string][]*pooledExport
	exports   []*pooledExport // every export the pool kicked off, for the end of the run
}

// pooledExport is one export job the pool kicked off and waits on. kicked closes once the kick-off has an
// answer, done once polling ended; the fields are written before the channel closes and only read after.
type pooledExport struct {
	user     string
	kicked   chan struct{}
	kickoffs []*check.Exchange // every kick-off request, 429s included; the last is the answer
	sendErr  error             // the kick-off got no answer to judge (transport error, 429 past MAX_WAIT, no slot)
	pollURL  string
	done     chan struct{}
	polls    []*check.Exchange
	omitted  int // polls dropped from the middle of polls (World.record)
	err      error
	// taken: a scenario took this export as its own (ownedExport); guarded by the pool's mu. A shared
	// export is never a scenario's own: many read it.
	taken bool

	// manifest is check.CheckManifest of the final answer, checked once (manifestOnce): a shared export's
	// manifest is read by most scenarios of a run, and at hundreds of thousands of files one check takes
	// seconds and hundreds of MB.
	manifestOnce sync.Once
	manifest     *check.Manifest
	manifestErr  error

	// reported holds the deviations that scenarios adopting the job met in what they all read alike (its
	// in-progress answers, its manifest), by requirement and text; guarded by reportedMu (failedEarlier).
	reportedMu sync.Mutex
	reported   map[string]bool
}

// failedEarlier says whether err, a deviation in what every scenario adopting the job reads alike (its
// in-progress answers, its completed manifest compared with its kick-off), was met by an earlier scenario
// that read the job, which failed on it; it notes the deviation as met by this one either way. A shared
// export's polls and manifest are the same answers in every scenario that reads it, so one deviation (FUT's
// X-Progress missing, Medplum's manifest request without the kick-off's query) fails the first of them (in
// file order EXP-POLL-200's, or the first the run's TAGS select), and the later ones judge their own
// requirements instead of all ending blocked by it: one deviation, one failure. A deviation of the scenario's
// own requirement (its tags) is never passed over; a job one scenario reads alone (EXP-DELETE-DONE's) always
// fails it.
func (j *pooledExport) failedEarlier(err error, w *World) bool {
	v, ok := err.(*check.Violation) // the checks' violations, never wrapped
	if !ok {
		return false
	}
	req := cmp.Or(v.Requirement, w.primaryRequirement())
	key := req + "\x00" + v.Subject + "\x00" + v.Expected + "\x00" + v.Got
	j.reportedMu.Lock()
	defer j.reportedMu.Unlock()
	met := j.reported[key]
	if j.reported == nil {
		j.reported = map[string]bool{}
	}
	j.reported[key] = true
	return met && !slices.Contains(w.scenarioReqs, req)
}

// checkedManifest is check.CheckManifest(req, the job's final answer), checked once whatever the number of
// scenarios that read it; they share the manifest, which no step changes. The check is run for req "": its
// req only names the requirement of the violations it returns (check.Violationf), filled in here. A
// violation is each caller's own copy, since the step bindings fill in a scenario's requirement.
func (j *pooledExport) checkedManifest(req string) (*check.Manifest, error) {
	j.manifestOnce.Do(func() { j.manifest, j.manifestErr = check.CheckManifest("", j.polls[len(j.polls)-1]) })
	if v, ok := j.manifestErr.(*check.Violation); ok { // CheckManifest's violations are never wrapped
		own := *v
		own.Requirement = cmp.Or(own.Requirement, req)
		return j.manifest, &own
	}
	return j.manifest, j.manifestErr
}

// pooledReport is one report job the pool started; the scenario waits on it itself.
type pooledReport struct {
	ready chan struct{}
	x     *check.Exchange
	err   error
}

// DefaultMaxJobs is how many export jobs the harness keeps in flight when MaxJobs is unset.
const DefaultMaxJobs = 4

func newJobPool(t *Target, reqs map[string]features.Requirement, profiles features.Profiles) *jobPool {
	ctx := t.RunContext
	if ctx == nil {
		ctx = context.Background()
	}
	kickoffCtx, endKickoffs := context.WithCancel(context.WithoutCancel(ctx))
	ctx, stop := context.WithCancel(ctx)
	return &jobPool{target: t, reqs: reqs, profiles: profiles, slots: make(chan struct{}, t.MaxJobs), ctx: ctx, stop: stop,
		kickoffCtx: kickoffCtx, endKickoffs: endKickoffs,
		shared: map[string]*pooledExport{}, owned: map[string][]*pooledExport{}, reports: map[string][]*pooledReport{},
		cancelled: map[string][]*pooledExport{}}
}

// scenarioNeeds is what one scenario asks of the pool, read from its steps before it runs.
type scenarioNeeds struct {
	sharedExport  string // user whose shared completed export the scenario reads, or ""
	ownedExport   string // user who needs a completed export of the scenario's own, or ""
	waitedReports string // user whose report the scenario starts and waits on, or ""
	// cancelledExport: user whose cancelled export the scenario watches never complete, or "". The pool
	// cancels one at the start of the run, and runs the user's shared export beside it for the time a job
	// takes: by the time the shared one has completed, a cancelled job that went on would have too.
	cancelledExport string
	// otherKickoff: user whose polling location the scenario compares with another kick-off's, or "" (the
	// unknown-job request in bulkdata, check.UnknownJobURL).
	otherKickoff string
}

var (
	stepCompleted   = regexp.MustCompile(`^user (A|B) has a completed system export$`)
	stepPollsToDone = regexp.MustCompile(`^user (A|B) polls the export status until it completes$`)
	stepKickedOff   = regexp.MustCompile(`^user (A|B) has kicked off a system export$`)
	stepChanges     = regexp.MustCompile(`^user (A|B) cancels the export$`)
	stepRunning     = regexp.MustCompile(`while it runs$|that is still running$|kicks off a system export by`)
	stepCancelled   = regexp.MustCompile(`^user (A|B) has cancelled a running system export$`)
	stepNeverDone   = regexp.MustCompile(`^the export never completes for user (A|B)$`)
	stepReport      = regexp.MustCompile(`^user (A|B) has started a report$`)
	stepReportWait  = regexp.MustCompile(`^user (A|B) waits until the report job has finished$`)
	stepUnknownJob  = regexp.MustCompile(`^user (A|B) polls the export status of an unknown job id$`)
	stepNoTokenPoll = regexp.MustCompile(`^the export status is requested without a token, then by user (A|B) with the token$`)
)

// needsOf reads a scenario's steps in the run's profile: a scenario whose export must be seen running, or
// that cancels it, never shares one. In bulkdata the unknown-job request is derived from two kick-offs'
// polling locations: the scenario reads the shared export's, and another one the pool has, so that it holds
// no job slot (MAX_JOBS) of its own while it waits for the other kick-off to be answered.
func needsOf(profile string, steps []string) scenarioNeeds {
	var n scenarioNeeds
	changes, running := false, false
	completedBy, pollsBy, reportBy, waitsBy, unknownBy := "", "", "", "", ""
	noToken := false
	for _, s := range steps {
		switch {
		case stepNoTokenPoll.MatchString(s):
			noToken = true
		case stepUnknownJob.MatchString(s):
			unknownBy = stepUnknownJob.FindStringSubmatch(s)[1]
		case stepChanges.MatchString(s):
			changes = true
		case stepRunning.MatchString(s):
			running = true
		case stepCompleted.MatchString(s):
			completedBy = stepCompleted.FindStringSubmatch(s)[1]
		case stepPollsToDone.MatchString(s):
			pollsBy = stepPollsToDone.FindStringSubmatch(s)[1]
		case stepReport.MatchString(s):
			reportBy = stepReport.FindStringSubmatch(s)[1]
		case stepReportWait.MatchString(s):
			waitsBy = stepReportWait.FindStringSubmatch(s)[1]
		}
	}
	kicker := ""
	for _, s := range steps {
		if m := stepKickedOff.FindStringSubmatch(s); m != nil {
			kicker = m[1]
			break
		}
	}
	switch {
	case running:
	case completedBy != "" && changes:
		n.ownedExport = completedBy
	case completedBy != "":
		n.sharedExport = completedBy
	case !changes && pollsBy != "" && pollsBy == kicker:
		n.sharedExport = pollsBy
	case !changes && unknownBy != "" && unknownBy == kicker && !definesFUTPollOperation(profile):
		n.sharedExport, n.otherKickoff = unknownBy, unknownBy
	case !changes && noToken && kicker != "":
		// a status request without a token is a GET, read-only: the user's shared export serves, running or not
		n.sharedExport = kicker
	}
	if reportBy != "" && reportBy == waitsBy {
		n.waitedReports = reportBy
	}
	cancelledBy, watchedBy := "", ""
	for _, s := range steps {
		if m := stepCancelled.FindStringSubmatch(s); m != nil {
			cancelledBy = m[1]
		}
		if m := stepNeverDone.FindStringSubmatch(s); m != nil {
			watchedBy = m[1]
		}
	}
	if cancelledBy != "" && cancelledBy == watchedBy {
		n.cancelledExport = cancelledBy
	}
	return n
}

// prefetch starts, once per run, every job the selected scenarios will wait on, all at the same time.
func (p *jobPool) prefetch() {
	p.start.Do(func() {
		var others []string
		for _, steps := range p.target.Selected {
			n := needsOf(p.target.Profile, steps)
			if u := n.otherKickoff; u != "" && p.hasUser(u) {
				others = append(others, u)
			}
			if u := n.sharedExport; u != "" && p.hasUser(u) {
				p.sharedExport(u)
			}
			if u := n.ownedExport; u != "" && p.hasUser(u) {
				p.mu.Lock()
				p.owned[u] = append(p.owned[u], p.startExport(u))
				p.mu.Unlock()
			}
			if u := n.cancelledExport; u != "" && p.hasUser(u) {
				p.sharedExport(u) // the time a job takes, for the watch
				p.mu.Lock()
				p.cancelled[u] = append(p.cancelled[u], p.startCancelled(u))
				p.mu.Unlock()
			}
			if u := n.waitedReports; u != "" && p.hasUser(u) {
				p.mu.Lock()
				p.reports[u] = append(p.reports[u], p.startReport(u))
				p.mu.Unlock()
			}
		}
		// Last, once the exports other scenarios need are planned: one of them may serve as the other kick-off.
		for _, u := range others {
			p.mu.Lock()
			if len(p.exportsOf(u)) < 2 {
				p.startExport(u)
			}
			p.mu.Unlock()
		}
	})
}

// exportsOf are the exports the pool kicked off for user, in the order it did. p.mu must be held.
func (p *jobPool) exportsOf(user string) []*pooledExport {
	var out []*pooledExport
	for _, j := range p.exports {
		if j.user == user {
			out = append(out, j)
		}
	}
	return out
}

// otherPollURL is the polling location of a kick-off of user's other than not (a location the scenario
// already has): of an export the pool started for any scenario, else of one it starts now, which the end of
// the run deletes like every pooled export no scenario took. "" when no other kick-off got one.
func (p *jobPool) otherPollURL(ctx context.Context, user, not string) (string, error) {
	p.mu.Lock()
	jobs := p.exportsOf(user)
	p.mu.Unlock()
	for started := false; ; started = true {
		for _, j := range jobs {
			if err := await(ctx, j.kicked); err != nil {
				return "", err
			}
			if j.pollURL != "" && j.pollURL != not {
				return j.pollURL, nil
			}
		}
		if started {
			return "", nil
		}
		p.mu.Lock()
		jobs = []*pooledExport{p.startExport(user)}
		p.mu.Unlock()
	}
}

// hasUser: a user without credentials is the scenario's skip to report, not the pool's.
func (p *jobPool) hasUser(user string) bool {
	_, ok := p.target.Credentials[user]
	return ok
}

// sharedExport is the user's one completed export for the scenarios that only read it, started on first use.
func (p *jobPool) sharedExport(user string) *pooledExport {
	p.mu.Lock()
	defer p.mu.Unlock()
	j, ok := p.shared[user]
	if !ok {
		j = p.startExport(user)
		p.shared[user] = j
	}
	return j
}

// ownedExport is a completed export for one scenario that changes it: one started ahead, else a new one.
func (p *jobPool) ownedExport(user string) *pooledExport {
	return p.take(p.owned, user, p.startExport)
}

// cancelledExport is an export the pool kicked off and cancelled for one scenario: one started ahead, else a
// new one.
func (p *jobPool) cancelledExport(user string) *pooledExport {
	return p.take(p.cancelled, user, p.startCancelled)
}

// take is the first of the user's exports started ahead in queue, else one start starts now; a scenario's own
// from then on.
func (p *jobPool) take(queue map[string][]*pooledExport, user string, start func(string) *pooledExport) *pooledExport {
	p.mu.Lock()
	defer p.mu.Unlock()
	var j *pooledExport
	if q := queue[user]; len(q) > 0 {
		j, queue[user] = q[0], q[1:]
	} else {
		j = start(user)
	}
	j.taken = true
	return j
}

// startCancelled kicks off an export for user, polls it once and, while it runs, cancels it, in the
// background: polls holds that poll and the DELETE's answer. p.mu must be held.
func (p *jobPool) startCancelled(user string) *pooledExport {
	return p.startPooled(user, func(jw *World, j *pooledExport) {
		n := len(jw.exchanges)
		if j.err = jw.pollsExportStatus(p.ctx, user); j.err == nil && jw.last.Status == http.StatusAccepted {
			j.err = jw.cancelsExport(p.ctx, user)
		}
		j.polls = jw.exchanges[n:]
	})
}

// startedReport is a report job started ahead for the user, or nil when none is left.
func (p *jobPool) startedReport(user string) *pooledReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	if q := p.reports[user]; len(q) > 0 {
		p.reports[user] = q[1:]
		return q[0]
	}
	return nil
}

// jobWorld is a World that runs one pooled job's requests. It collects no findings: the scenarios that adopt
// the job judge its answers again, each for itself.
func (p *jobPool) jobWorld() *World {
	t := *p.target
	t.Findings = nil
	t.LiveProgress = false // several jobs wait at once: one line per poll, not one line redrawn
	return &World{target: &t, requirements: p.reqs, profiles: p.profiles, scenario: "job pool", forPool: true}
}

// startExport kicks off an export for user and polls it to completion, in the background. p.mu must be held.
func (p *jobPool) startExport(user string) *pooledExport {
	return p.startPooled(user, func(jw *World, j *pooledExport) {
		n := len(jw.exchanges)
		j.err = jw.pollUntilComplete(p.ctx, user) // an export the server failed: an *exportFailedError
		j.polls, j.omitted = jw.exchanges[n:], jw.omitted
	})
}

// startPooled kicks off an export for user in the background and, once a job is accepted, goes on with it as
// then says: kicked closes with the kick-off's answer, done once then has returned (at once after a refused
// kick-off, which the scenarios judge themselves). p.mu must be held.
func (p *jobPool) startPooled(user string, then func(jw *World, j *pooledExport)) *pooledExport {
	j := &pooledExport{user: user, kicked: make(chan struct{}), done: make(chan struct{})}
	p.exports = append(p.exports, j)
	go func() {
		jw := p.jobWorld()
		defer jw.releaseJob()
		defer close(j.done)
		j.sendErr = jw.kicksOffExport(p.kickoffCtx, user, kickoffMethod(p.target.Profile))
		j.kickoffs, j.pollURL = jw.exchanges, jw.export.pollURL
		close(j.kicked)
		if j.sendErr != nil || jw.checkKickoff() != nil {
			return
		}
		then(jw, j)
	}()
	return j
}

func (p *jobPool) startReport(user string) *pooledReport {
	r := &pooledReport{ready: make(chan struct{})}
	go func() {
		defer close(r.ready)
		jw := p.jobWorld()
		r.err = jw.sendReportStart(p.ctx, user, "execute", defaultAnonymization)
		if len(jw.exchanges) > 0 {
			r.x = jw.exchanges[len(jw.exchanges)-1]
		}
	}()
	return r
}

// EndRunWait bounds the end-of-run cleanup as a whole (endRun): its DELETEs go out in parallel, each within
// REQUEST_TIMEOUT too, and none keeps a finished or interrupted run waiting longer than this.
const EndRunWait = 5 * time.Second

// endRun ends the pool's polling, then cancels, best effort, every pooled export the run leaves on the server:
// one no scenario took (a fail-fast or interrupted run, a scenario that failed before its first step), one
// still running or never seen complete (not one the server failed: no job runs there), and the shared
// completed exports, which the scenarios that read them
// no longer need now that the last one has ended (on FUT a DELETE of a completed export changes nothing: its
// files stay their 2 hours). A completed export a scenario took as its own is left to that scenario, which
// deletes it itself. Each DELETE goes to the export's polling location with its user's token, only to a
// trusted origin. Nothing here judges an answer or adds a finding: a DELETE that fails is one line on Log.
//
// It must be called once the last scenario has ended. ctx is the caller's: the wait is bounded by EndRunWait
// from a context of its own, since the run's may be cancelled already (an interrupt ends the run, and its
// jobs are cleaned up all the same), but a ctx cancelled during the cleanup (Ctrl-C) ends it.
func (p *jobPool) endRun(ctx context.Context) {
	p.stop()
	defer p.endKickoffs()
	type left struct {
		j *pooledExport
		// scenarioOwns: a scenario took the export as its own; if it completed, the scenario dealt with it.
		scenarioOwns bool
	}
	p.mu.Lock()
	jobs := make([]left, len(p.exports))
	for i, j := range p.exports {
		jobs[i] = left{j, j.taken}
	}
	p.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), EndRunWait)
	defer cancel()
	if ctx.Err() == nil {
		defer context.AfterFunc(ctx, cancel)()
	}
	var wg sync.WaitGroup
	for _, l := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.cancelLeft(cctx, l.j, l.scenarioOwns)
		}()
	}
	wg.Wait()
}

// cancelLeft sends the DELETE of endRun for one pooled export, unless the export is no job on the server, a
// job the server failed, or a completed one its scenario owns.
func (p *jobPool) cancelLeft(ctx context.Context, j *pooledExport, scenarioOwns bool) {
	// Once the pool's polling has stopped, kicked and done close at once; j.pollURL and j.err are read only
	// after they have (see pooledExport).
	if await(ctx, j.kicked) != nil || j.pollURL == "" {
		return // no kick-off answered with a polling location: nothing the harness can name
	}
	ended := await(ctx, j.done) == nil
	if completed := ended && j.err == nil; completed && scenarioOwns {
		return
	}
	var failed *exportFailedError
	if ended && errors.As(j.err, &failed) {
		return // the server failed the export: no job runs there (HAPI answers a FAILED job's DELETE 500, cancelling nothing)
	}
	jw := p.jobWorld()
	if !p.target.Trusts(j.pollURL) {
		fmt.Fprintln(p.target.Log, jw.text(fmt.Sprintf("  export %s left on the server at the end of the run: origin %s is not trusted with the token", j.pollURL, Origin(j.pollURL))))
		return
	}
	x, err := jw.request(ctx, j.user, http.MethodDelete, j.pollURL, http.Header{"Accept": {"application/fhir+json"}}, nil)
	failure := ""
	switch {
	case err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		failure = fmt.Sprintf("no answer within EndRunWait (%s), the bound of the end-of-run cleanup", EndRunWait)
	case err != nil && ctx.Err() != nil:
		failure = "interrupted"
	case err != nil:
		failure = err.Error()
	case x.Status >= 400 && x.Status != http.StatusNotFound && x.Status != http.StatusGone:
		// 404 or 410: the job is gone, or completed on a server that keeps its files (FUT): nothing to do.
		failure = "answered " + check.StatusPhrase(x.Status)
	}
	if failure != "" {
		fmt.Fprintln(p.target.Log, jw.text(fmt.Sprintf("  could not delete export %s at the end of the run: %s", j.pollURL, failure)))
	}
}

// acquire takes a slot for one export job in flight, waiting at most MAX_WAIT for one to be freed. Once the
// run has ended (endRun), no new job starts.
func (p *jobPool) acquire(ctx context.Context) (func(), error) {
	if err := p.ctx.Err(); err != nil {
		return nil, fmt.Errorf("the run has ended: %w", err)
	}
	timer := time.NewTimer(p.target.MaxWait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.ctx.Done():
		return nil, fmt.Errorf("the run has ended: %w", p.ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("no export job slot freed within MAX_WAIT (%s): MAX_JOBS=%d jobs are in flight and none ended", p.target.MaxWait, cap(p.slots))
	}
	var once sync.Once
	return func() { once.Do(func() { <-p.slots }) }, nil
}

// await blocks until ch closes or ctx ends.
func await(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a pooled job: %w", ctx.Err())
	}
}

// kickoffSince is a distinct _since for each kick-off: an instant in the 1970s (long before any FHIR data was
// written, so the export's content is unchanged) with a random millisecond part (one in 3·10^11), so that no
// two kick-offs, of this run or of another, are the same request to a server that reuses jobs on other grounds
// than Cache-Control.
func kickoffSince() string {
	const decade = 10 * 365 * 24 * time.Hour
	offset := time.Duration(rand.Int64N(int64(decade/time.Millisecond))) * time.Millisecond
	return time.Unix(0, 0).UTC().Add(offset).Format("2006-01-02T15:04:05.000Z07:00")
}

// detach copies a violation shared by the scenarios of a pooled job, because a scenario's failure report
// fills in a violation's requirement.
func detach(err error) error {
	var v *check.Violation
	if errors.As(err, &v) {
		c := *v
		return &c
	}
	return err
}
