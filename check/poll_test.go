package check

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 12, 5, 11, 33, 54, 0, time.UTC)
	cases := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"120", 120 * time.Second, false},
		{" 0 ", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, false},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, false},
		{"Fri, 05 Dec 2025 11:35:24 GMT", 90 * time.Second, false},
		{"-5", 0, true},
		{"1.5", 0, true},
		{"soon", 0, true},
		{"", 0, true},
		{"-0", 0, true},
		{"1 20", 0, true},
	}
	for _, c := range cases {
		got, err := ParseRetryAfter(c.in, now)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

// delay-seconds is 1*DIGIT (RFC 9110 §10.2.3), with no upper bound: a value of years, or beyond what any
// integer type holds, is a valid Retry-After that asks for a very long wait, not a deviation from
// EXP-RETRY-AFTER. It saturates, as RFC 9111 §1.2.2 has a cache read a delta-seconds too large to represent.
func TestParseRetryAfterSaturatesAHugeDelay(t *testing.T) {
	now := time.Date(2025, 12, 5, 11, 33, 54, 0, time.UTC)
	for _, v := range []string{"31622400", "99999999999", "99999999999999999999", "0000000000000000000000000120"} {
		d, err := ParseRetryAfter(v, now)
		if err != nil {
			t.Errorf("ParseRetryAfter(%q): %v; want a valid delay-seconds", v, err)
			continue
		}
		if v == "0000000000000000000000000120" {
			if d != 120*time.Second {
				t.Errorf("ParseRetryAfter(%q) = %s, want 2m0s", v, d)
			}
		} else if d < 366*24*time.Hour {
			t.Errorf("ParseRetryAfter(%q) = %s, want at least the 366 days asked for", v, d)
		}
	}
}

// fakeClock drives a Poller without waiting: Wait advances the clock by the delay asked for.
type fakeClock struct {
	now   time.Time
	waits []time.Duration
}

func (c *fakeClock) poller(maxWait time.Duration) Poller {
	return Poller{
		MaxWait: maxWait,
		Now:     func() time.Time { return c.now },
		Wait: func(ctx context.Context, d time.Duration) error {
			c.waits = append(c.waits, d)
			c.now = c.now.Add(d)
			return ctx.Err()
		},
	}
}

func answers(list ...*Exchange) func(context.Context) (*Exchange, error) {
	i := 0
	return func(context.Context) (*Exchange, error) {
		x := list[min(i, len(list)-1)]
		i++
		return x, nil
	}
}

func answer(status int, header ...string) *Exchange {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return &Exchange{Method: "GET", URL: "http://t/poll", Status: status, Header: h}
}

func judgeStatus(x *Exchange) (Verdict, error) {
	switch x.Status {
	case 200:
		return Done, nil
	case 429:
		return Throttle, nil
	case 202:
		return Pending, nil
	}
	return Done, errors.New("unexpected")
}

func TestPollerHonoursRetryAfterInBothFormsAndThrottling(t *testing.T) {
	c := &fakeClock{now: time.Date(2025, 12, 5, 11, 0, 0, 0, time.UTC)}
	date := c.now.Add(30 * time.Second).Format(http.TimeFormat)
	x, err := c.poller(time.Hour).Poll(context.Background(), answers(
		answer(202, "Retry-After", "120"),
		answer(429, "Retry-After", "7"),
		answer(202, "Retry-After", date, "Date", c.now.Format(http.TimeFormat)),
		answer(200),
	), judgeStatus)
	if err != nil || x.Status != 200 {
		t.Fatalf("Poll = %v, %v; want the 200", x, err)
	}
	want := []time.Duration{120 * time.Second, 7 * time.Second, 30 * time.Second}
	if len(c.waits) != len(want) {
		t.Fatalf("waits %v, want %v", c.waits, want)
	}
	for i := range want {
		if c.waits[i] != want[i] {
			t.Errorf("wait %d = %v, want %v", i, c.waits[i], want[i])
		}
	}
}

func TestPollerBacksOffExponentiallyWithACapWithoutRetryAfter(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	p := c.poller(time.Hour)
	p.InitialBackoff, p.MaxBackoff = time.Second, 5*time.Second
	list := []*Exchange{}
	for range 6 {
		list = append(list, answer(202))
	}
	_, err := p.Poll(context.Background(), answers(append(list, answer(200))...), judgeStatus)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{1, 2, 4, 5, 5, 5}
	for i, w := range want {
		if c.waits[i] != w*time.Second {
			t.Errorf("wait %d = %v, want %v", i, c.waits[i], w*time.Second)
		}
	}
}

func TestPollerGivesUpBeforeMaxWaitWithTheHistory(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	p := c.poller(5 * time.Minute)
	p.Subject = "export X"
	_, err := p.Poll(context.Background(), answers(answer(202, "Retry-After", "120", "X-Progress", "still going")), judgeStatus)
	if !errors.Is(err, ErrGaveUp) {
		t.Fatalf("err = %v, want ErrGaveUp", err)
	}
	if got := c.now.Sub(time.Unix(0, 0)); got > 5*time.Minute {
		t.Errorf("waited %v, more than MAX_WAIT", got)
	}
	for _, want := range []string{"export X", "MAX_WAIT 5m0s", "#3", `X-Progress "still going"`, "would pass MAX_WAIT", "needs MAX_WAIT raised"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("give-up message lacks %q:\n%v", want, err)
		}
	}
}

func TestPollerFloorsAZeroRetryAfterAndCapsAHugeOne(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	p := c.poller(time.Hour)
	p.MaxDelay = time.Minute
	_, err := p.Poll(context.Background(), answers(answer(202, "Retry-After", "0"), answer(202, "Retry-After", "86400"), answer(200)), judgeStatus)
	if err != nil {
		t.Fatal(err)
	}
	if c.waits[0] != 100*time.Millisecond || c.waits[1] != time.Minute {
		t.Errorf("waits %v, want [100ms 1m0s]", c.waits)
	}
}

func TestPollerStopsOnAJudgedViolationAndOnCancellation(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	if _, err := c.poller(time.Hour).Poll(context.Background(), answers(answer(500)), judgeStatus); err == nil || err.Error() != "unexpected" {
		t.Errorf("a judged error must end polling, got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := Poller{MaxWait: time.Hour}
	_, err := p.Poll(ctx, answers(answer(202, "Retry-After", "1")), judgeStatus)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled context must end polling with context.Canceled, got %v", err)
	}
}

func TestPollerShowsWaitingLiveOnATerminalAndAsTimestampedLinesElsewhere(t *testing.T) {
	for _, live := range []bool{true, false} {
		c := &fakeClock{now: time.Date(2025, 12, 5, 11, 0, 0, 0, time.UTC)}
		var log strings.Builder
		p := c.poller(time.Hour)
		p.Log, p.Live, p.Subject = &log, live, "export E"
		if _, err := p.Poll(context.Background(), answers(answer(202, "Retry-After", "3", "X-Progress", "half way"), answer(200)), judgeStatus); err != nil {
			t.Fatal(err)
		}
		out := log.String()
		if live {
			if strings.Count(out, "\r\x1b[K") < 3 || !strings.Contains(out, "next poll in 2s") || strings.Contains(out, "\n") {
				t.Errorf("live: want one line rewritten every second, got %q", out)
			}
			if len(c.waits) != 3 {
				t.Errorf("live: want the 3s wait in 1s steps, got %v", c.waits)
			}
		} else if out != "11:00:00  export E: poll 1 answered 202; next poll in 3s, MAX_WAIT left 1h0m0s (X-Progress \"half way\")\n" {
			t.Errorf("plain: got %q", out)
		}
	}
}

// A wait bounded by a window of the step's own says so, not "MAX_WAIT", and a long polling URL or X-Progress
// never makes a log line longer than 120 characters: the URL keeps its end (the job id), X-Progress is clipped.
func TestPollerLogNamesItsLimitAndStaysShort(t *testing.T) {
	c := &fakeClock{now: time.Date(2025, 12, 5, 11, 0, 0, 0, time.UTC)}
	var log strings.Builder
	p := c.poller(5 * time.Second)
	long := "http://fut.example/fhir/$export-poll-status?_jobId=" + strings.Repeat("0", 60) + "JOB-END"
	p.Log, p.Subject, p.Limit = &log, "cancelled export "+long, "cancel watch"
	_, _ = p.Poll(context.Background(), answers(answer(202, "Retry-After", "1", "X-Progress", strings.Repeat("still going ", 20)), answer(200)), judgeStatus)
	line := strings.TrimSuffix(log.String(), "\n")
	if n := utf8.RuneCountInString(line); n > 120 || !strings.Contains(line, "JOB-END") || !strings.HasSuffix(line, "…") {
		t.Errorf("log line of %d runes, want at most 120 keeping the job id and clipping X-Progress: %q", n, line)
	}
	if !strings.Contains(line, "cancel watch left 5s") || strings.Contains(line, "MAX_WAIT") {
		t.Errorf("the log must name the watch window, not MAX_WAIT: %q", line)
	}
}

// Finding 6 of issue 11: a poll the harness gave up on at once was shown as "then waited 10m0s".
func TestPollerHistorySaysItGaveUpAtOnce(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	_, err := c.poller(time.Minute).Poll(context.Background(), answers(answer(202, "Retry-After", "3600")), judgeStatus)
	if !errors.Is(err, ErrGaveUp) || len(c.waits) != 0 {
		t.Fatalf("err = %v, waits %v; want an immediate give-up", err, c.waits)
	}
	if strings.Contains(err.Error(), "then waited") || !strings.Contains(err.Error(), "#1 at +0s: 202, then gave up") {
		t.Errorf("the history misstates the wait:\n%v", err)
	}
}

// A server asking for a poll every 100 ms for MAX_WAIT: the give-up message keeps the first and last polls
// with a count of the others, and the log gets a bounded number of lines.
func TestPollerHistoryAndLogStayBoundedOverManyPolls(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	var log strings.Builder
	p := c.poller(10 * time.Minute)
	p.Log = &log
	_, err := p.Poll(context.Background(), answers(answer(202, "Retry-After", "0")), judgeStatus)
	if !errors.Is(err, ErrGaveUp) || len(c.waits) < 5000 {
		t.Fatalf("err = %v after %d waits; want a give-up after about 6000 polls", err, len(c.waits))
	}
	if n := strings.Count(err.Error(), "\n"); n > 2*keepAttempts+1 || !strings.Contains(err.Error(), "polls omitted") || !strings.Contains(err.Error(), "(6001 polls)") {
		t.Errorf("the history is not bounded (%d lines):\n%.2000s", n, err)
	}
	if lines := strings.Count(log.String(), "\n"); lines > 50 {
		t.Errorf("%d log lines for one job, want at most 50", lines)
	}
}

// The progress log of a job: polls 1, 2, 4, 8, … and one at least every 30 s, whatever the server's pace.
func TestLogPaceWritesPowersOfTwoAndEvery30Seconds(t *testing.T) {
	var pace logPace
	start := time.Unix(0, 0)
	var due []int
	for n := 1; n <= 40; n++ { // a poll a second
		if pace.due(n, start.Add(time.Duration(n)*time.Second)) {
			due = append(due, n)
		}
	}
	if want := []int{1, 2, 4, 8, 16, 32}; !slices.Equal(due, want) {
		t.Errorf("polls a second apart logged at %v, want %v", due, want)
	}
	pace, due = logPace{}, nil
	for n := 1; n <= 40; n++ { // a poll every 20 s: 30 s pass between the powers of two
		if pace.due(n, start.Add(time.Duration(n)*20*time.Second)) {
			due = append(due, n)
		}
	}
	if want := []int{1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40}; !slices.Equal(due, want) {
		t.Errorf("polls 20 s apart logged at %v, want %v", due, want)
	}
}

// A job started before its scenario waits on it (Since): MAX_WAIT counts from the job's start, so scenarios
// that wait one after another on a job that never finishes cost one MAX_WAIT in all; the first poll is sent
// even when MAX_WAIT has already passed.
func TestPollerCountsMaxWaitFromSince(t *testing.T) {
	for _, c := range []struct {
		ago   time.Duration
		polls int
	}{{0, 11}, {8 * time.Second, 3}, {20 * time.Second, 1}} {
		clock := &fakeClock{now: time.Unix(1000, 0)}
		p := clock.poller(10 * time.Second)
		log := &strings.Builder{}
		p.Log = log
		if c.ago > 0 {
			p.Since = clock.now.Add(-c.ago)
		}
		polls := 0
		_, err := p.Poll(context.Background(), func(context.Context) (*Exchange, error) {
			polls++
			return answer(202, "Retry-After", "1"), nil
		}, judgeStatus)
		if !errors.Is(err, ErrGaveUp) || polls != c.polls {
			t.Errorf("started %s before: %d polls, %v; want %d polls, then gave up", c.ago, polls, err, c.polls)
		}
		// the log's time left is never negative: a wait that began past its limit has none left
		if line := log.String(); strings.Contains(line, "left -") || !strings.Contains(line, "MAX_WAIT left 0s") {
			t.Errorf("started %s before: the log's time left, want 0s at the give-up:\n%s", c.ago, line)
		}
	}
}

// Retry-After counts from each answer, so the time the answers take pushes every poll a little later. FUT
// answers "Retry-After: 120" and MAX_WAIT is 10 minutes by default: five waits of 120 s fit, and a job that
// completes within MAX_WAIT is seen at the sixth poll, although the answers' own time puts that poll a few
// hundred milliseconds past MAX_WAIT. Before, the harness gave up after the fifth poll, at 8 minutes.
func TestPollerDoesNotLoseTheLastPollToTheAnswersOwnTime(t *testing.T) {
	c := &fakeClock{now: time.Unix(0, 0)}
	p := c.poller(10 * time.Minute)
	p.RequestTimeout = 30 * time.Second
	polls := 0
	x, err := p.Poll(context.Background(), func(context.Context) (*Exchange, error) {
		polls++
		c.now = c.now.Add(50 * time.Millisecond) // each answer takes 50 ms
		if polls == 6 {
			return answer(200), nil
		}
		return answer(202, "Retry-After", "120"), nil
	}, judgeStatus)
	if err != nil || x.Status != 200 || polls != 6 {
		t.Fatalf("Poll = %v after %d polls; want the 200 of the sixth poll, five waits of 120 s within MAX_WAIT", err, polls)
	}
	if want := []time.Duration{120 * time.Second, 120 * time.Second, 120 * time.Second, 120 * time.Second, 120 * time.Second}; !slices.Equal(c.waits, want) {
		t.Errorf("waits %v, want %v: never shorter than the server asked", c.waits, want)
	}

	// The allowance is the answers' own time, not more: a delay that passes MAX_WAIT by more is not waited.
	c = &fakeClock{now: time.Unix(0, 0)}
	polls = 0
	_, err = c.poller(10*time.Minute).Poll(context.Background(), func(context.Context) (*Exchange, error) {
		polls++
		c.now = c.now.Add(50 * time.Millisecond)
		return answer(202, "Retry-After", "121"), nil
	}, judgeStatus)
	if !errors.Is(err, ErrGaveUp) || polls != 5 {
		t.Errorf("Retry-After 121: %d polls, %v; want a give-up after the fifth (605 s would pass MAX_WAIT by 5 s)", polls, err)
	}
}

// A request still unanswered when the wait's bound ends is the give-up, with the history; one cut by the
// caller's context (Ctrl-C) is the interruption, not a give-up.
func TestPollerTellsAGiveUpFromAnInterruption(t *testing.T) {
	hang := func(ctx context.Context) (*Exchange, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	_, err := Poller{MaxWait: 200 * time.Millisecond}.Poll(context.Background(), hang, judgeStatus)
	if !errors.Is(err, ErrGaveUp) || !strings.Contains(err.Error(), "still unanswered at MAX_WAIT") {
		t.Errorf("a request unanswered at MAX_WAIT: %v, want the give-up", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = Poller{MaxWait: time.Hour}.Poll(ctx, hang, judgeStatus)
	if errors.Is(err, ErrGaveUp) || !errors.Is(err, context.Canceled) {
		t.Errorf("a request cut by the caller: %v, want context.Canceled, no give-up", err)
	}
}

// A Poller hands its requests the end of its wait (WaitUntil), in the wall clock the requests read, so that a
// request's own waits (429s) end with the poll's MAX_WAIT; an earlier end already in the context stays.
func TestAPollersRequestsKnowWhereItsWaitEnds(t *testing.T) {
	c := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := c.poller(time.Hour)
	p.Since = c.now.Add(-30 * time.Minute) // half of MAX_WAIT gone before this Poll
	var got time.Time
	before := time.Now()
	_, err := p.Poll(context.Background(), func(ctx context.Context) (*Exchange, error) {
		got, _ = WaitDeadline(ctx)
		return &Exchange{Status: 200}, nil
	}, func(*Exchange) (Verdict, error) { return Done, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(before.Add(30*time.Minute)) || got.After(time.Now().Add(30*time.Minute)) {
		t.Fatalf("the requests' wait ends at %s, want 30 minutes from now (%s)", got, before.Add(30*time.Minute))
	}
	early := before.Add(time.Minute)
	ctx := WaitUntil(WaitUntil(context.Background(), early), early.Add(time.Hour))
	if d, ok := WaitDeadline(ctx); !ok || !d.Equal(early) {
		t.Fatalf("nested waits end at %s, want the earlier %s", d, early)
	}
}
