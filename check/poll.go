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
	// Limit names what MaxWait is, for the log and the give-up message: "MAX_WAIT" (default), or a window of
	// the step's own, so that a 5-second watch does not read as "MAX_WAIT left 5s".
	Limit string
}

// PollAttempt is one line of the poll history a give-up message shows.
type PollAttempt struct {
	At       time.Time
	Status   int
	Progress string // X-Progress, or a note
	Delay    time.Duration
	Err      error
}

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
	deadline := start.Add(p.MaxWait)
	// The context bounds requests in real time; the deadline above decides in the poller's clock.
	ctx, cancel := context.WithTimeout(ctx, p.MaxWait)
	defer cancel()
	var history []PollAttempt
	backoff := p.InitialBackoff
	for n := 1; ; n++ {
		x, err := do(ctx)
		attempt := PollAttempt{At: p.Now(), Err: err}
		if x != nil {
			attempt.Status, attempt.Progress = x.Status, x.Header.Get("X-Progress")
		}
		if err != nil {
			history = append(history, attempt)
			if ctx.Err() != nil && p.Now().After(deadline.Add(-time.Millisecond)) {
				return x, p.gaveUp(start, history, "the last request was still unanswered at "+p.Limit)
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
		attempt.Delay = delay
		history = append(history, attempt)
		next := p.Now().Add(delay)
		status := pollStatus{subject: p.Subject, n: n, code: x.Status, progress: attempt.Progress}
		if next.After(deadline) {
			p.logLine(status, delay, deadline)
			return x, p.gaveUp(start, history, fmt.Sprintf("the next poll, in %s, would pass %s", delay.Round(time.Millisecond), p.Limit))
		}
		if err := p.waitVisibly(ctx, status, delay, deadline); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return x, p.gaveUp(start, history, p.Limit+" ran out while waiting")
			}
			return x, fmt.Errorf("%s: polling interrupted: %w", p.Subject, err)
		}
	}
}

// waitVisibly waits for delay. On a terminal (Live) it keeps one line per job up to date every second: the
// last answer, polls so far, time to the next poll and to the limit; elsewhere (CI logs) it writes one
// timestamped line per poll.
func (p Poller) waitVisibly(ctx context.Context, status pollStatus, delay time.Duration, deadline time.Time) error {
	if !p.Live {
		p.logLine(status, delay, deadline)
		return p.Wait(ctx, delay)
	}
	defer fmt.Fprint(p.Log, "\r\x1b[K")
	for left := delay; left > 0; {
		fmt.Fprint(p.Log, "\r\x1b[K"+status.line("  ", left.Round(time.Second), p.Limit, deadline.Sub(p.Now()).Round(time.Second)))
		step := min(left, time.Second)
		if err := p.Wait(ctx, step); err != nil {
			return err
		}
		left -= step
	}
	return nil
}

func (p Poller) logLine(status pollStatus, delay time.Duration, deadline time.Time) {
	fmt.Fprintln(p.Log, status.line(p.Now().UTC().Format("15:04:05")+"  ", delay.Round(time.Millisecond), p.Limit, deadline.Sub(p.Now()).Round(time.Second)))
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
	return clipEnd(line, maxLogLine)
}

// clipEnd keeps the first n runes of s, the last one an ellipsis when s is longer.
func clipEnd(s string, n int) string {
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
		return clipEnd(s, n)
	}
	r := []rune(tail)
	return head + "…" + string(r[len(r)-keep:])
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

func (p Poller) gaveUp(start time.Time, history []PollAttempt, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v after %s (%s %s): %s; poll history:", p.Subject, ErrGaveUp, p.Now().Sub(start).Round(time.Millisecond), p.Limit, p.MaxWait, why)
	for i, a := range history {
		fmt.Fprintf(&b, "\n  #%d at +%s: ", i+1, a.At.Sub(start).Round(time.Millisecond))
		if a.Err != nil {
			fmt.Fprintf(&b, "error %v", a.Err)
		} else {
			fmt.Fprintf(&b, "%d%s, then waited %s", a.Status, progressNote(a.Progress), a.Delay.Round(time.Millisecond))
		}
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
	return fmt.Sprintf(" (X-Progress %q)", progress)
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
