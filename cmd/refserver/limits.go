package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/net/netutil"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// A flood of slow clients must not hold the server: a request's headers and body must arrive within the read
// timeout, and at most maxConns connections are served at once (netutil.LimitListener: the next one waits in
// the kernel's backlog until one closes).
const (
	defaultMaxConns    = 256
	defaultReadTimeout = 30 * time.Second
	readHeaderTimeout  = 10 * time.Second
	idleTimeout        = 2 * time.Minute
	// maxHeaderBytes is net/http's own limit; the handler answers 431 with an OperationOutcome from
	// refserver.MaxRequestHeaderBytes on, and refserver.OutcomeListener turns net/http's own 431 into one.
	maxHeaderBytes = 1 << 20
)

type connLimits struct {
	maxConns    int
	readTimeout time.Duration
}

type limitFlags struct {
	maxJobs, maxJobBytes, maxConns, readTimeout *string
}

func addLimitFlags(fs *flag.FlagSet, env func(name, def string) string) limitFlags {
	return limitFlags{
		maxJobs:     fs.String("max-jobs-per-user", env("MAX_JOBS_PER_USER", strconv.Itoa(refserver.DefaultMaxJobsPerUser)), "export jobs, and report jobs, one user may hold, running or within retention; 429 beyond (env MAX_JOBS_PER_USER)"),
		maxJobBytes: fs.String("max-job-request-bytes", env("MAX_JOB_REQUEST_BYTES", strconv.Itoa(refserver.DefaultMaxJobRequestBytes)), "bytes one job keeps of its request (export URL and _type list, report parameters); 413 beyond (env MAX_JOB_REQUEST_BYTES)"),
		maxConns:    fs.String("max-conns", env("MAX_CONNS", strconv.Itoa(defaultMaxConns)), "connections served at once; more wait to be accepted (env MAX_CONNS)"),
		readTimeout: fs.String("read-timeout", env("READ_TIMEOUT", defaultReadTimeout.String()), "the longest a request's headers and body may take to arrive, Go duration (env READ_TIMEOUT)"),
	}
}

// apply puts the parsed limits into o.
func (f limitFlags) apply(o *options) []error {
	var errs []error
	positive := func(name, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("-%s: must be a positive whole number, got %q", name, v))
		}
		return n
	}
	o.cfg.MaxJobsPerUser = positive("max-jobs-per-user", *f.maxJobs)
	o.cfg.MaxJobRequestBytes = int64(positive("max-job-request-bytes", *f.maxJobBytes))
	o.conns.maxConns = positive("max-conns", *f.maxConns)
	d, err := time.ParseDuration(*f.readTimeout)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("-read-timeout: %q is not a Go duration (e.g. 30s)", *f.readTimeout))
	case d <= 0:
		errs = append(errs, fmt.Errorf("-read-timeout: must be positive, got %s", *f.readTimeout))
	}
	o.conns.readTimeout = d
	return errs
}

// listener limits ln to maxConns connections and, for plain HTTP, answers net/http's own errors with
// OperationOutcomes (under TLS it sees only ciphertext, so it is left out).
func (l connLimits) listener(ln net.Listener, plain bool) net.Listener {
	if plain {
		ln = refserver.OutcomeListener(ln)
	}
	return netutil.LimitListener(ln, l.maxConns)
}

// server is the http.Server with the read deadlines.
func (l connLimits) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       l.readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}
