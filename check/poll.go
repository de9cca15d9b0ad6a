package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Poller repeats a request until the answer says the job is done, honouring Retry-After in both forms,
// treating 429 as "wait and go on", backing off exponentially (capped) when the server gives no delay, and
// giving up when the next poll would pass MaxWait.
type Poller struct {
	MaxWait        time.Duration
	InitialBackoff time.Duration // first delay when the server sends no Retry-After
	MaxBackoff     time.Duration // cap of the exponential backoff
	MinDelay       time.Duration // floor under any delay, so that "Retry-After: 0" cannot turn into a busy loop
	MaxDelay       time.Duration // cap on a Retry-After, so that a server cannot park the harness for a day
	Now            func() time.Time
	Wait           func(ctx context.Context, d time.Duration) error // blocks for d or until ctx ends
	Log            io.Writer
	Live           bool   // Log is a terminal: one line per job, updated in place while waiting
	Subject        string // what is being waited on, for the log and the give-up message
	// Since is when the wait began, if before this Poll: a job started ahead of the scenario that waits on
	// it. MaxWait then counts from Since, so that a job that never finishes costs one MaxWait in all, however
	// many scenarios wait on it one after another. The first poll is still sent.
	Since time.Time
	// Limit names what MaxWait is, for the log and the give-up message: "MAX_WAIT" (default), or a window of
	// the step's own, so that a 5-second watch does not read as "MAX_WAIT left 5s".
	Limit string
	// RequestTimeout bounds one request (REQUEST_TIMEOUT): a poll sent within its allowance past MaxWait
	// (answerAllowance) still gets that long for its answer.
	RequestTimeout time.Duration
}

// answerAllowance is how far past MaxWait a poll may be due and still be sent: Retry-After counts from each
// answer, so the time the answers take (and the harness judging them) pushes every poll later than the sum of
// the server's delays. Without it, FUT's "Retry-After: 120" fits five times into the default MAX_WAIT of 10
// minutes on paper but four times in fact, and a job that completes at 9 minutes is given up at 8. The
// allowance is that drift, the time of the wait not spent waiting as the server asked, up to 1% of MaxWait.
func answerAllowance(maxWait, elapsed, waited time.Duration) time.Duration {
	return min(max(elapsed-waited, 0), maxWait/100)
}

// PollAttempt is one line of the poll history a give-up message shows.
type PollAttempt struct {
	At       time.Time
	Status   int
	Progress string        // X-Progress, or a note
	Delay    time.Duration // how long the poller then waited; 0 for the answer it gave up on
	Err      error
}

// pollHistory keeps the first and the last attempts of a poll and counts those between: a give-up message
// shows the start and the end, and a run's memory and reports stay bounded however many polls there were.
type pollHistory struct {
	first, last []PollAttempt
	omitted     int
}

const keepAttempts = 5

func (h *pollHistory) add(a PollAttempt) {
	if len(h.first) < keepAttempts {
		h.first = append(h.first, a)
		return
	}
	if len(h.last) == keepAttempts {
		h.last = append(h.last[:0], h.last[1:]...)
		h.omitted++
	}
	h.last = append(h.last, a)
}

func (h *pollHistory) count() int { return len(h.first) + h.omitted + len(h.last) }

// Verdict is what a poll's answer means.
type Verdict int

const (
	Pending  Verdict = iota // not done: poll again after the server's Retry-After or the backoff
	Done                    // the answer the caller was waiting for
	Throttle                // 429 or a transient error: poll again, same as Pending
)

// DefaultMaxWait is the MaxWait of a Poller that sets none.
const DefaultMaxWait = 10 * time.Minute

// ErrGaveUp is returned when MaxWait runs out.
var ErrGaveUp = errors.New("gave up waiting")

// Poll calls do until judge says Done or returns an error. It returns the last exchange.
func (p Poller) Poll(ctx context.Context, do func(context.Context) (*Exchange, error), judge func(*Exchange) (Verdict, error)) (*Exchange, error) {
	p = p.withDefaults()
	start := p.Now()
	if !p.Since.IsZero() && p.Since.Before(start) {
		start = p.Since
	}
	deadline := start.Add(p.MaxWait)
	// The context bounds requests in real time; the deadline above decides in the poller's clock. It ends
	// once the last poll allowed (due by the deadline plus answerAllowance) has had its REQUEST_TIMEOUT. Past
	// the deadline already, the one poll is bounded by its request's own timeout.
	parent, began := ctx, p.Now()
	cancel := context.CancelFunc(func() {})
	if left := deadline.Sub(began); left > 0 {
		ctx, cancel = context.WithTimeout(ctx, left+p.MaxWait/100+p.RequestTimeout)
	}
	defer cancel()
	// The requests' own waits (a 429, a transient 5xx waited out inside one request) end where this wait
	// does: a throttled poll does not start a MAX_WAIT of its own. In the wall clock the requests read.
	ctx = WaitUntil(ctx, time.Now().Add(deadline.Sub(began)))
	var history pollHistory
	var logged logPace
	var waited time.Duration // the delays waited, as the server (or the backoff) asked
	backoff := p.InitialBackoff
	for n := 1; ; n++ {
		x, err := do(ctx)
		attempt := PollAttempt{At: p.Now(), Err: err}
		if x != nil {
			attempt.Status, attempt.Progress = x.Status, x.Header.Get("X-Progress")
		}
		if err != nil {
			history.add(attempt)
			if ctx.Err() != nil && parent.Err() == nil {
				return x, p.gaveUp(start, &history, "the last request was still unanswered at "+p.Limit)
			}
			return x, err
		}
		verdict, err := judge(x)
		if err != nil || verdict == Done {
			return x, err
		}
		delay, fromServer := p.delay(x, backoff)
		if !fromServer {
			backoff = min(backoff*2, p.MaxBackoff)
		}
		next := p.Now().Add(delay)
		status := pollStatus{subject: p.Subject, n: n, code: x.Status, progress: attempt.Progress}
		if next.After(deadline.Add(answerAllowance(p.MaxWait, p.Now().Sub(began), waited))) {
			history.add(attempt) // not waited after: the history says it gave up there
			p.logLine(status, delay, deadline)
			return x, p.gaveUp(start, &history, fmt.Sprintf("the next poll, in %s, would pass %s", delay.Round(time.Millisecond), p.Limit))
		}
		attempt.Delay = delay
		history.add(attempt)
		if err := p.waitVisibly(ctx, status, delay, deadline, logged.due(n, p.Now())); err != nil {
			if ctx.Err() != nil && parent.Err() == nil {
				return x, p.gaveUp(start, &history, p.Limit+" ran out while waiting")
			}
			return x, fmt.Errorf("%s: polling interrupted: %w", p.Subject, err)
		}
		waited += delay
	}
}

// waitVisibly waits for delay. On a terminal (Live) it keeps one line per job up to date every second: the
// last answer, polls so far, time to the next poll and to the limit; elsewhere (CI logs) it writes a
// timestamped line for the polls logPace lets through.
func (p Poller) waitVisibly(ctx context.Context, status pollStatus, delay time.Duration, deadline time.Time, log bool) error {
	if !p.Live {
		if log {
			p.logLine(status, delay, deadline)
		}
		return p.Wait(ctx, delay)
	}
	defer fmt.Fprint(p.Log, "\r\x1b[K")
	for left := delay; left > 0; {
		fmt.Fprint(p.Log, "\r\x1b[K"+status.line("  ", left.Round(time.Second), p.Limit, p.left(deadline)))
		step := min(left, time.Second)
		if err := p.Wait(ctx, step); err != nil {
			return err
		}
		left -= step
	}
	return nil
}

func (p Poller) logLine(status pollStatus, delay time.Duration, deadline time.Time) {
	fmt.Fprintln(p.Log, status.line(p.Now().UTC().Format("15:04:05")+"  ", delay.Round(time.Millisecond), p.Limit, p.left(deadline)))
}

// left is the time to the deadline for the log, never below zero: a wait that began past its deadline (Since)
// has none left, not a negative time.
func (p Poller) left(deadline time.Time) time.Duration {
	return max(deadline.Sub(p.Now()), 0).Round(time.Second)
}

// pollStatus is one poll's answer as the progress log shows it.
type pollStatus struct {
	subject  string
	n, code  int
	progress string
}

// maxLogLine bounds a progress line, so that a long polling URL or X-Progress never floods a console or CI log.
const maxLogLine = 120

// line puts what matters first (the job, the answer, the waits) and the server's X-Progress last, clipped to
// maxLogLine: a long polling URL keeps its end, where the job id is.
func (s pollStatus) line(prefix string, next time.Duration, limit string, left time.Duration) string {
	line := fmt.Sprintf("%s%s: poll %d answered %d; next poll in %s, %s left %s%s",
		prefix, clipSubject(s.subject, 40), s.n, s.code, next, limit, left, progressNote(s.progress))
	return Clip(line, maxLogLine)
}

// Clip keeps the first n runes of s, the last one an ellipsis when s is longer: a server's text quoted in a
// message stays readable.
func Clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// clipSubject keeps a subject's words and the end of its last one, the URL whose end names the job, n runes
// in all: "cancelled export …-a7b4-7376e9264be1".
func clipSubject(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	head, tail := "", s
	if i := strings.LastIndex(s, " "); i >= 0 {
		head, tail = s[:i+1], s[i+1:]
	}
	keep := n - utf8.RuneCountInString(head) - 1
	if keep < 8 {
		return Clip(s, n)
	}
	r := []rune(tail)
	return head + "…" + string(r[len(r)-keep:])
}

// logPace lets a log line through for every poll whose number is a power of two (1, 2, 4, 8, …) and at least
// every 30 seconds: a server that asks for a poll every 100 ms fills no log, a job of minutes still shows
// that the run is alive, and a short job writes as many lines on a loaded machine as on an idle one.
type logPace struct{ last time.Time }

func (l *logPace) due(n int, now time.Time) bool {
	if n&(n-1) == 0 || now.Sub(l.last) >= 30*time.Second {
		l.last = now
		return true
	}
	return false
}

// delay is the server's Retry-After when it sent a usable one, else the backoff.
func (p Poller) delay(x *Exchange, backoff time.Duration) (time.Duration, bool) {
	if v := x.Header.Get("Retry-After"); v != "" {
		if d, err := ParseRetryAfter(v, x.ResponseTime()); err == nil {
			return min(max(d, p.MinDelay), p.MaxDelay), true
		}
	}
	return max(backoff, p.MinDelay), false
}

func (p Poller) gaveUp(start time.Time, history *pollHistory, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v after %s (%s %s): %s", p.Subject, ErrGaveUp, p.Now().Sub(start).Round(time.Millisecond), p.Limit, p.MaxWait, why)
	if p.Limit == "MAX_WAIT" {
		// No source bounds how long a job may take (FUT's exports run for minutes): the bound is the run's own,
		// and a server whose jobs are slow, not stuck, passes with it raised.
		b.WriteString(" (a job that takes longer on this server needs MAX_WAIT raised)")
	}
	fmt.Fprintf(&b, "; poll history (%d polls):", history.count())
	line := func(n int, a PollAttempt) {
		fmt.Fprintf(&b, "\n  #%d at +%s: ", n, a.At.Sub(start).Round(time.Millisecond))
		switch {
		case a.Err != nil:
			fmt.Fprintf(&b, "error %v", a.Err)
		case a.Delay > 0:
			fmt.Fprintf(&b, "%d%s, then waited %s", a.Status, progressNote(a.Progress), a.Delay.Round(time.Millisecond))
		default:
			fmt.Fprintf(&b, "%d%s, then gave up", a.Status, progressNote(a.Progress))
		}
	}
	for i, a := range history.first {
		line(i+1, a)
	}
	if history.omitted > 0 {
		fmt.Fprintf(&b, "\n  … %d polls omitted …", history.omitted)
	}
	for i, a := range history.last {
		line(len(history.first)+history.omitted+i+1, a)
	}
	return &gaveUpError{msg: b.String()}
}

type gaveUpError struct{ msg string }

func (e *gaveUpError) Error() string { return e.msg }
func (e *gaveUpError) Unwrap() error { return ErrGaveUp }

func progressNote(progress string) string {
	if progress == "" {
		return ""
	}
	return fmt.Sprintf(" (X-Progress %q)", cutText(progress, 200))
}

func (p Poller) withDefaults() Poller {
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultMaxWait
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 30 * time.Second
	}
	if p.MinDelay <= 0 {
		p.MinDelay = 100 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 10 * time.Minute
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Wait == nil {
		p.Wait = sleepCtx
	}
	if p.Log == nil {
		p.Log = io.Discard
	}
	if p.Subject == "" {
		p.Subject = "job"
	}
	if p.Limit == "" {
		p.Limit = "MAX_WAIT"
	}
	return p
}

// ThrottleDelay is how long a 429 Too Many Requests asks the client to wait: its Retry-After (either form),
// floored at the Poller's default MinDelay so that "Retry-After: 0" cannot turn into a busy loop. False when
// x is no 429 or carries no usable Retry-After.
func ThrottleDelay(x *Exchange) (time.Duration, bool) {
	if x == nil || x.Status != 429 {
		return 0, false
	}
	d, err := ParseRetryAfter(x.Header.Get("Retry-After"), x.ResponseTime())
	if err != nil {
		return 0, false
	}
	return max(d, Poller{}.withDefaults().MinDelay), true
}

type waitDeadlineKey struct{}

// WaitUntil is ctx for the requests of a wait that ends at deadline (a Poller's MAX_WAIT, from the job's
// start): a request made with it that waits out a 429 or a transient 5xx stops waiting where the wait it is
// part of ends, and hands the answer back, instead of waiting a MAX_WAIT of its own. Unlike a context
// deadline it does not cut a request: the last poll still gets its REQUEST_TIMEOUT. An earlier deadline ctx
// carries already stays.
func WaitUntil(ctx context.Context, deadline time.Time) context.Context {
	if d, ok := WaitDeadline(ctx); ok && !deadline.Before(d) {
		return ctx
	}
	return context.WithValue(ctx, waitDeadlineKey{}, deadline)
}

// WaitDeadline is the end of the wait ctx's requests are part of (WaitUntil), if any.
func WaitDeadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Value(waitDeadlineKey{}).(time.Time)
	return d, ok
}

// WaitFor blocks for d or until ctx ends, whichever comes first.
func WaitFor(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, d) }

// sleepCtx is the only place the harness waits on the clock: between polls, for the delay the server asked.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
