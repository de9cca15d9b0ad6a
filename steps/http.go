package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ehealth-dk/fut-conformance/check"
)

// request sends one request as user and records the exchange in the world's transcript. A transport error,
// a timeout or an oversized body comes back as an error that names the request; the exchange is recorded
// either way.
//
// Throttling is never a failure: a 429 Too Many Requests (BDA2 lets a server answer so to any request that
// comes too soon) is waited out and the request sent again, after its Retry-After or, without a usable one, a
// backoff (throttleDelay), for as long as the wait fits in MAX_WAIT, the context and the wait the request is
// part of (check.WaitUntil: a poll's waits count within its job's MAX_WAIT, not one MAX_WAIT each); so is a
// 5xx whose OperationOutcome has the "transient" issue code, or a 503 with a Retry-After, at most
// maxTransientRetries times. Every attempt is in the transcript; the answer returned is the first one that is
// not a 429, or the last 429 when waiting longer would pass MAX_WAIT, for the caller to judge.
func (w *World) request(ctx context.Context, user, method, target string, header http.Header, body []byte) (*check.Exchange, error) {
	deadline := time.Now().Add(w.target.MaxWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if d, ok := check.WaitDeadline(ctx); ok && d.Before(deadline) {
		deadline = d // a poll's waits count within the MAX_WAIT of the job it waits on
	}
	transient, throttled := 0, 0 // transient 5xx answers and 429s retried so far
	for {
		x, err := w.requestOnce(ctx, user, method, target, header, body)
		if err != nil {
			return x, err
		}
		var delay time.Duration
		switch {
		case x.Status == http.StatusTooManyRequests:
			delay, _ = throttleDelay(x, throttled)
			throttled++
		case transient < maxTransientRetries && temporaryFailure(x):
			// BDA2: a transient failure (issue code "transient") is one to retry later; a few times only, so
			// that a server calling a lasting error transient costs seconds, not MAX_WAIT
			delay = transientDelay(x, transient)
			transient++
		default:
			return x, nil
		}
		if time.Now().Add(delay).After(deadline) {
			return x, nil
		}
		fmt.Fprintf(w.target.Log, "  %s %s: %s, Retry-After %q: asking again in %s\n", method, target, check.StatusPhrase(x.Status), x.Header.Get("Retry-After"), delay.Round(time.Millisecond))
		if err := check.WaitFor(ctx, delay); err != nil {
			return x, fmt.Errorf("%s %s: waiting out a %d: %w", method, target, x.Status, err)
		}
	}
}

// throttledAnswer is the skip of a step whose answer is a 429 Too Many Requests: World.request waited the 429s
// out for as long as MAX_WAIT allowed, and this one came when waiting longer would pass it. It is neither the
// answer a step checks nor a refusal of the request (a 429 is a 4xx, but no "client error" a step asks for:
// a job id refused, a user kept out), so no verdict is drawn from it, either way. nil for any other status.
func (w *World) throttledAnswer(x *check.Exchange) error {
	if x.Status != http.StatusTooManyRequests {
		return nil
	}
	return throttledSkip("the request", "a 429 asks the client to wait (RFC 6585 §4; BDA2 lets a server throttle any request so)",
		"the step has no answer to judge: nothing", throttleFix, x, nil, 0, w.target.MaxWait)
}

// throttleDelay is how long a 429 Too Many Requests asks to wait: its Retry-After (either form), or, without
// a usable one, a backoff from 1 s doubling to 30 s with n, the 429s retried so far (BDA2: a server SHOULD
// send Retry-After with its 429; one that does not is still throttling, not refusing). False for any other
// status.
func throttleDelay(x *check.Exchange, n int) (time.Duration, bool) {
	if x.Status != http.StatusTooManyRequests {
		return 0, false
	}
	if d, ok := check.ThrottleDelay(x); ok {
		return d, true
	}
	return min(time.Second<<min(n, 5), 30*time.Second), true
}

// temporaryFailure: a 5xx the server says will pass, by BDA2's "transient" issue code or as a 503 with a
// Retry-After (unavailableForNow); a wait on a job waits it out as a 429, within MAX_WAIT.
func temporaryFailure(x *check.Exchange) bool {
	return x.Status >= 500 && (check.HasTransientIssue(x.Body) || unavailableForNow(x))
}

// unavailableForNow: a 503 with a Retry-After is, by RFC 9110 (§15.6.4, §10.2.3), a temporary overload or
// maintenance the client is told to wait out: a gateway in front of the server (FUT's) answers so during a
// deployment, with no OperationOutcome to call it transient. Retried as a transient failure is, not judged.
func unavailableForNow(x *check.Exchange) bool {
	return x.Status == http.StatusServiceUnavailable && x.Header.Get("Retry-After") != ""
}

// maxTransientRetries bounds how often one request is sent again after a transient 5xx.
const maxTransientRetries = 3

// transientDelay is the wait before retry n (from 0) of a transient 5xx: its Retry-After, else 1 s, 2 s, 4 s.
func transientDelay(x *check.Exchange, n int) time.Duration {
	if d, err := check.ParseRetryAfter(x.Header.Get("Retry-After"), x.ResponseTime()); err == nil {
		return max(d, time.Second)
	}
	return time.Second << n
}

// requestOnce sends the request once.
func (w *World) requestOnce(ctx context.Context, user, method, target string, header http.Header, body []byte) (*check.Exchange, error) {
	token, err := w.token(user)
	if err != nil {
		return nil, err
	}
	header = header.Clone()
	if header == nil {
		header = http.Header{}
	}
	x := &check.Exchange{Method: method, URL: target, RequestHeader: header, RequestBody: body}
	switch {
	case token != "" && w.target.Trusts(target):
		header.Set("Authorization", "Bearer "+token)
	case token != "":
		x.TokenWithheld = untrustedNote(target)
		fmt.Fprintf(w.target.Log, "  %s %s: %s\n", method, target, x.TokenWithheld)
	}
	w.record(x)

	ctx, cancel := context.WithTimeout(ctx, w.target.RequestTimeout)
	defer cancel()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, reader)
	if err != nil {
		x.Err = err
		return x, fmt.Errorf("build request %s %s: %w", method, target, err)
	}
	req.Header = header.Clone()
	start, sent := time.Now(), w.target.now() // sent: by the clock token expiry is judged by
	resp, err := w.target.HTTPClient.Do(req)
	if err != nil {
		x.Duration = time.Since(start)
		x.Err = describeTransportError(err, ctx, w.target.RequestTimeout)
		return x, fmt.Errorf("%s %s: %w: %w", method, target, check.ErrTransport, x.Err)
	}
	defer resp.Body.Close()
	x.Status, x.Header = resp.StatusCode, resp.Header
	if u := resp.Request.URL.String(); u != req.URL.String() {
		x.Redirected = u
	}
	x.Body, err = io.ReadAll(io.LimitReader(resp.Body, w.target.MaxBodyBytes+1))
	x.Duration = time.Since(start)
	x.Received = start.Add(x.Duration)
	switch {
	case err != nil:
		x.Err = describeTransportError(err, ctx, w.target.RequestTimeout)
		return x, fmt.Errorf("%s %s: reading the response body: %w: %w", method, target, check.ErrTransport, x.Err)
	case int64(len(x.Body)) > w.target.MaxBodyBytes:
		x.Body = x.Body[:w.target.MaxBodyBytes]
		// MAX_BODY is the run's bound on an answer read whole, not a limit of the specification: a manifest of
		// tens of thousands of files is megabytes, so the message says which setting reads it.
		raise := "a larger MAX_BODY reads it"
		if resp.ContentLength > w.target.MaxBodyBytes {
			raise = fmt.Sprintf("MAX_BODY=%d reads it", resp.ContentLength)
		}
		x.Err = fmt.Errorf("%w: response body exceeds MAX_BODY (%d bytes), the harness's bound on an answer it reads whole; the rest was not read: if the answer is this large on purpose (a manifest of many thousands of files), %s", check.ErrMaxBody, w.target.MaxBodyBytes, raise)
		return x, fmt.Errorf("%s %s: %w", method, target, x.Err)
	}
	if x.TokenWithheld == "" {
		if x.Err = w.expiredCredential(x, token, sent); x.Err != nil {
			return x, x.Err
		}
	} else if refusesAnonymous(x.Status) {
		x.Err = fmt.Errorf("%w: %s %s answered %s to a request sent without user %s's token (%s): the answer to a caller without credentials, not the server's deviation", check.ErrTokenWithheld, method, target, check.StatusPhrase(x.Status), user, x.TokenWithheld)
		return x, x.Err
	}
	return x, nil
}

// refusesAnonymous: a status that refuses a request for want of credentials, 401 or 403 (RFC 9110 §15.5.2,
// §15.5.4). Such an answer to a request the harness sent without its token (an untrusted origin) judges
// nothing. A 404 is judged: the polling location of a cancelled, deleted or unknown job answers it, and a
// server that serves the location without a token means it.
func refusesAnonymous(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// untrustedNote says why a request went without its token and how to allow it.
func untrustedNote(target string) string {
	return fmt.Sprintf("token not sent: origin %s is not trusted (not the origin of TARGET, EXPORT_TARGET, REPORT_TARGET or TOKEN_URL; TRUSTED_ORIGINS=%s would allow it)", Origin(target), Origin(target))
}

var errRequestTimeout = errors.New("no complete response within REQUEST_TIMEOUT")

func describeTransportError(err error, ctx context.Context, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w (%s): %v", errRequestTimeout, timeout, err)
	}
	return err
}

// exportEndpoint is [base]/path of the service that exports; reportEndpoint of the reporting service. On FUT
// they are separate services, elsewhere both are BaseURL.
func (w *World) exportEndpoint(path string) string { return join(w.target.ExportBaseURL, path) }
func (w *World) reportEndpoint(path string) string { return join(w.target.ReportBaseURL, path) }

func join(base, path string) string { return base + "/" + strings.TrimLeft(path, "/") }

func fhirJSONHeader() http.Header {
	return http.Header{"Accept": {"application/fhir+json"}, "Content-Type": {"application/fhir+json"}}
}
