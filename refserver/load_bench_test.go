package refserver

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The fairness benchmarks (make bench-load): the reference server's latency with 30,000 live jobs against
// 10, and user A's while user B floods. Requests go through the handler in process, without the network, so
// the figures are the server's own work and lock waits, not the loopback's. Samples are taken in alternating
// rounds (small, large, small, ...), so that a noisy machine slows both sides alike; each figure is a median.
// Goals (issue 11): the 30,000/10 ratios at most 1.5, A's poll under B's flood at most 2× unloaded.
const (
	benchManyJobs    = 30_000
	benchFewJobs     = 10
	benchRounds      = 10
	benchPollsRound  = 2_000
	benchKicksRound  = 300
	benchFlooders    = 4
	benchStatusEvery = 50
	benchFloodRound  = 300 * time.Millisecond
)

// benchUser is one user's token and a running job to poll.
type benchUser struct {
	token string
	poll  string // path and query of a running job's status
}

func benchCall(h http.Handler, method, target, token string, header map[string]string, body string) *httptest.ResponseRecorder {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
	}
	r.Header.Set("Authorization", "Bearer "+token)
	for k, v := range header {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func benchKickoff(b *testing.B, h http.Handler, token string) string {
	rec := benchCall(h, http.MethodGet, "/fhir/$export?_type=Patient", token, map[string]string{"Prefer": "respond-async", "Cache-Control": "no-cache"}, "") // a job of its own (reuse.go)
	if rec.Code != http.StatusAccepted {
		b.Fatalf("kick-off: %d %s", rec.Code, rec.Body)
	}
	loc := rec.Header().Get("Content-Location")
	return loc[strings.Index(loc, "/fhir/"):]
}

// benchLoadServer is a server whose user A holds jobs live export jobs; nothing expires during the benchmark.
func benchLoadServer(b *testing.B, jobs int) (http.Handler, benchUser) {
	b.Helper()
	srv, err := NewServer(Config{Clock: newManualClock(), MaxJobsPerUser: 2 * benchManyJobs, ExportDuration: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	u := benchUser{token: DemoTokenA}
	for range jobs {
		u.poll = benchKickoff(b, h, u.token)
	}
	return h, u
}

// sample times one call of f.
func sample(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func us(d time.Duration) string { return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond)) }

// BenchmarkLoadManyJobs compares a poll and a kick-off with 30,000 live jobs to the same with 10.
func BenchmarkLoadManyJobs(b *testing.B) {
	few, fewUser := benchLoadServer(b, benchFewJobs)
	many, manyUser := benchLoadServer(b, benchManyJobs)
	type side struct {
		h     http.Handler
		u     benchUser
		polls []time.Duration
		kicks []time.Duration
	}
	sides := []*side{{h: few, u: fewUser}, {h: many, u: manyUser}}
	for b.Loop() {
		for range benchRounds {
			for _, s := range sides {
				for range benchPollsRound {
					s.polls = append(s.polls, sample(func() {
						if rec := benchCall(s.h, http.MethodGet, s.u.poll, s.u.token, nil, ""); rec.Code != http.StatusAccepted {
							b.Fatalf("poll: %d", rec.Code)
						}
					}))
				}
				for range benchKicksRound {
					s.kicks = append(s.kicks, sample(func() { benchKickoff(b, s.h, s.u.token) }))
				}
			}
		}
	}
	fewPoll, manyPoll := median(sides[0].polls), median(sides[1].polls)
	fewKick, manyKick := median(sides[0].kicks), median(sides[1].kicks)
	pollRatio, kickRatio := float64(manyPoll)/float64(fewPoll), float64(manyKick)/float64(fewKick)
	b.ReportMetric(pollRatio, "poll-ratio")
	b.ReportMetric(kickRatio, "kickoff-ratio")
	b.Logf("poll ratio %.2f (goal ≤ 1.5): median %s with %d live jobs, %s with %d", pollRatio, us(manyPoll), benchManyJobs, us(fewPoll), benchFewJobs)
	b.Logf("kick-off ratio %.2f (goal ≤ 1.5): median %s with %d live jobs, %s with %d", kickRatio, us(manyKick), benchManyJobs, us(fewKick), benchFewJobs)
}

// BenchmarkLoadFlood compares user A's poll while user B floods the server to the same poll unloaded. B
// holds 30,000 export jobs and the most report jobs a user may, each with parameters at the per-job limit,
// and benchFlooders goroutines of B kick off and poll without pause, one call in benchStatusEvery asking for
// B's report job status (the largest answer a user can get, about 16 MiB). Each loaded round lasts at least
// benchFloodRound.
func BenchmarkLoadFlood(b *testing.B) {
	srv, err := NewServer(Config{Clock: newManualClock(), MaxJobsPerUser: 2 * benchManyJobs, ExportDuration: time.Hour, ReportDuration: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	a := benchUser{token: DemoTokenA}
	for range benchFewJobs {
		a.poll = benchKickoff(b, h, a.token)
	}
	victim := benchUser{token: DemoTokenB}
	for range benchManyJobs {
		victim.poll = benchKickoff(b, h, victim.token)
	}
	params := `{"resourceType":"Parameters","parameter":[{"name":"anonymization","valueString":"ANONYMIZED"},{"name":"note","valueString":"` +
		strings.Repeat("x", DefaultMaxJobRequestBytes-200) + `"}]}`
	fhirJSON := map[string]string{"Content-Type": "application/fhir+json"}
	for range DefaultMaxJobsPerUser {
		if rec := benchCall(h, http.MethodPost, "/fhir/$execute-patient-usage-stats", victim.token, fhirJSON, params); rec.Code != http.StatusOK {
			b.Fatalf("report: %d %s", rec.Code, rec.Body)
		}
	}

	pollA := func() time.Duration {
		return sample(func() {
			if rec := benchCall(h, http.MethodGet, a.poll, a.token, nil, ""); rec.Code != http.StatusAccepted {
				b.Fatalf("poll A: %d", rec.Code)
			}
		})
	}
	var unloaded, loaded []time.Duration
	var floodCalls atomic.Int64
	var statusBytes atomic.Int64
	for b.Loop() {
		for range benchRounds {
			for range benchPollsRound {
				unloaded = append(unloaded, pollA())
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for i := range benchFlooders {
				wg.Go(func() {
					for n := 0; ; n++ {
						select {
						case <-stop:
							return
						default:
						}
						switch {
						case (i+n)%benchStatusEvery == 0:
							rec := benchCall(h, http.MethodGet, "/fhir/$get-report-job-status", victim.token, nil, "")
							statusBytes.Store(int64(rec.Body.Len()))
						case n%2 == 0:
							benchKickoff(b, h, victim.token)
						default:
							benchCall(h, http.MethodGet, victim.poll, victim.token, nil, "")
						}
						floodCalls.Add(1)
					}
				})
			}
			for start, n := time.Now(), 0; n < benchPollsRound || time.Since(start) < benchFloodRound; n++ {
				loaded = append(loaded, pollA())
			}
			close(stop)
			wg.Wait()
		}
	}
	un, lo := median(unloaded), median(loaded)
	ratio := float64(lo) / float64(un)
	b.ReportMetric(ratio, "flood-ratio")
	b.Logf("flood ratio %.2f (goal ≤ 2): A's poll median %s while B floods, %s unloaded; B made %d calls (its report status %d KiB)",
		ratio, us(lo), us(un), floodCalls.Load(), statusBytes.Load()>>10)
}
