// Package refserver is a small, standard-library-only reference implementation
// of the FUT (eHealth Infrastructure, FHIR R4 on HAPI FHIR >= 8.6) operations
// the conformance harness checks, following the HL7 Bulk Data Access IG v2
// where it agrees with FUT.
//
// Routes ([base] is Config.BasePath, default /fhir; all but healthz and
// metadata need "Authorization: Bearer <token>" of a configured user or one
// the token endpoint issued; the token endpoint authenticates clients):
//
//	GET    /healthz                              200 "ok"
//	POST   /oauth2/token                         OAuth2 client credentials token endpoint (oauth2.go)
//	GET    [base]/metadata                       CapabilityStatement
//	GET    [base]/$export                        kick-off (query _outputFormat, _type, _since); needs Prefer: respond-async
//	POST   [base]/$export                        kick-off (optional Parameters body)
//	GET    [base]/$export-poll-status?_jobId=    202 + X-Progress + Retry-After, 200 manifest, 404 cancelled/unknown
//	                                             (429 + Retry-After when polled too early, with Config.Throttle)
//	POST   [base]/$export-poll-status            the same, _jobId in the query or a Parameters body (fut, hapi-8.0)
//	DELETE [base]/$export-poll-status?_jobId=    202 + OperationOutcome while running, else 404
//	GET, DELETE [base]/<PollPath>/{id}           the same, instead, with Config.PollPath (e.g. bulkstatus)
//	GET    [base]/Binary/{id}                    export file (NDJSON or Binary JSON by Accept) or report Binary; owner only
//	POST   [base]/$execute-<report>              report job; answers the placeholder Binary
//	POST   [base]/$schedule-<report>             same as $execute-<report>
//	GET    [base]/$get-report-job-status         collection Bundle of the caller's report jobs
//	POST   [base]/$get-report-job-status         same, optional Parameters body
//
// Every error, including unknown paths (404), wrong methods (405 with Allow),
// headers too large (431) and the mux's redirects of unclean paths, is an
// OperationOutcome.
//
// Job lifecycles are computed lazily from the configured Clock, so no
// goroutines run in the background and a test can drive jobs by advancing a
// manual clock. Finished exports, their files and report jobs are kept for
// Config.Retention (default 2 hours, retention.go).
package refserver

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Server is the reference server. Create it with NewServer and serve
// Handler(). It is safe for concurrent use.
type Server struct {
	cfg     Config
	users   map[string]User // by token
	dataset *dataset
	mux     *http.ServeMux
	handler http.Handler

	stores      map[string]*userStore // by user id, one per configured user; read-only after NewServer (store.go)
	storeList   []*userStore          // the same stores, for sweeping other users' in turn
	sweepCursor atomic.Uint64
	reportSeq   atomic.Int64 // report Binary ids

	tokens *tokenStore // OAuth2 clients and issued tokens (oauth2.go)
	// assertions are the jtis of the client assertions accepted and not yet expired (assertion.go).
	assertions *assertionLog
	faults     faultSet // injected deviations (faults.go); empty: conformant
}

// NewServer validates cfg, applies defaults, loads the export dataset and
// builds the routes.
func NewServer(cfg Config) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, fmt.Errorf("refserver config: %w", err)
	}
	faults, err := parseFaults(cfg.Faults)
	if err != nil {
		return nil, fmt.Errorf("refserver config: %w", err)
	}
	ds, err := loadDataset(cfg)
	if err != nil {
		return nil, fmt.Errorf("refserver data: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		users:      make(map[string]User, len(cfg.Users)),
		dataset:    ds,
		stores:     make(map[string]*userStore, len(cfg.Users)),
		tokens:     newTokenStore(cfg),
		assertions: newAssertionLog(),
		faults:     faults,
	}
	for _, u := range cfg.Users {
		s.users[u.Token] = u
		if s.stores[u.ID] == nil {
			st := newUserStore()
			s.stores[u.ID] = st
			s.storeList = append(s.storeList, st)
		}
	}
	s.routes()
	return s, nil
}

// Handler returns the whole HTTP surface: "GET /healthz" (no auth) and
// everything under the FHIR base path.
func (s *Server) Handler() http.Handler { return s.handler }

// reportOpPattern is the one wildcard route; its handler parses
// "$execute-<report>" and "$schedule-<report>".
func (s *Server) reportOpPattern() string { return "POST " + s.cfg.BasePath + "/{op}" }

// routes is the single route table.
func (s *Server) routes() {
	b := s.cfg.BasePath
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("POST "+TokenPath, s.oauthToken)
	mux.HandleFunc("GET "+b+"/metadata", s.metadata)
	mux.HandleFunc("GET "+b+"/.well-known/smart-configuration", s.smartConfiguration)
	mux.HandleFunc("GET "+b+"/$export", s.authed(s.exportKickoff))
	mux.HandleFunc("POST "+b+"/$export", s.authed(s.exportKickoff))
	poll := b + "/$export-poll-status"
	if s.cfg.PollPath != "" { // an independent Bulk Data server's shape; FUT's operation is then not served
		poll = b + "/" + s.cfg.PollPath + "/{id}"
	}
	mux.HandleFunc("GET "+poll, s.exportPollGet)
	if s.cfg.PollPath == "" && s.cfg.Profile.pollsByPost() {
		mux.HandleFunc("POST "+poll, s.authed(s.exportPollStatus))
	}
	mux.HandleFunc("DELETE "+poll, s.authed(s.exportCancel))
	mux.HandleFunc("GET "+b+"/Binary/{id}", s.binaryGet)
	mux.HandleFunc("GET "+b+"/$get-report-job-status", s.authed(s.getReportJobStatus))
	mux.HandleFunc("POST "+b+"/$get-report-job-status", s.authed(s.getReportJobStatus))
	mux.HandleFunc(s.reportOpPattern(), s.reportOperation)
	s.mux = mux
	s.handler = s.withFaults(http.HandlerFunc(s.serve))
}

// serve dispatches through the mux, but answers the mux's own fallbacks (404
// and 405) with OperationOutcomes, and turns a panic into a 500
// OperationOutcome.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			writeError(w, http.StatusInternalServerError, codeException, fmt.Sprintf("internal error: %v", v))
		}
	}()
	if n := requestHeaderBytes(r); n > MaxRequestHeaderBytes {
		writeError(w, http.StatusRequestHeaderFieldsTooLarge, codeTooCostly,
			fmt.Sprintf("The request line and headers take %d bytes; this server reads at most %d", n, MaxRequestHeaderBytes))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.fallback(w, r)
		return
	}
	// url.Values drops a pair it cannot decode (a bad percent-encoding, a ';' separator) without a word: a
	// kick-off would export every type instead of its _type, a poll would name no job. The token endpoint
	// answers its own RFC 6749 error (ParseForm reads the query too).
	if _, err := url.ParseQuery(r.URL.RawQuery); err != nil && r.URL.Path != TokenPath {
		writeError(w, http.StatusBadRequest, codeInvalid, "The query string is malformed ("+err.Error()+"): percent-encode '%', ';' and non-ASCII characters in parameter values")
		return
	}
	s.mux.ServeHTTP(&redirectOutcomeWriter{ResponseWriter: w}, r)
}

// MaxRequestHeaderBytes is the largest request line plus headers the handler answers; larger requests get 431
// with an OperationOutcome. An http.Server serving the handler should allow more (its MaxHeaderBytes), so
// that its own plain-text 431 is reached only far beyond this.
const MaxRequestHeaderBytes = 64 << 10

// requestHeaderBytes approximates the size of r's request line and headers as sent.
func requestHeaderBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + len(r.Host)
}

// redirectOutcomeWriter turns the mux's own redirects (a path that is not clean, such as /fhir//metadata,
// answered 301 or 307 with an HTML body) into the same redirect with an OperationOutcome body. The handlers
// never redirect, so any 3xx comes from the mux.
type redirectOutcomeWriter struct {
	http.ResponseWriter
	redirected bool
}

func (w *redirectOutcomeWriter) WriteHeader(code int) {
	if code < 300 || code > 399 || w.redirected {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.redirected = true
	w.Header().Del("Content-Type")
	writeOperationOutcome(w.ResponseWriter, code, sevInformation, codeInformational,
		"The path is not in canonical form; the resource is at "+w.Header().Get("Location"))
}

// Unwrap gives the writer underneath (http.ResponseController and markAnswer look through it).
func (w *redirectOutcomeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *redirectOutcomeWriter) Write(b []byte) (int, error) {
	if w.redirected { // the mux's HTML body, replaced by the OperationOutcome
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// fallback answers a request no route takes: 405 with an Allow header when
// the path exists for other methods, 404 otherwise.
func (s *Server) fallback(w http.ResponseWriter, r *http.Request) {
	if allowed := s.allowedMethods(r); len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, codeNotSupported,
			fmt.Sprintf("Method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
		return
	}
	writeError(w, http.StatusNotFound, codeNotFound, fmt.Sprintf("Unknown path %s", r.URL.Path))
}

// allowedMethods lists the methods some route takes for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		_, pattern := s.mux.Handler(probe)
		if pattern == "" || m == http.MethodHead && strings.HasSuffix(pattern, "/$export") { // exportKickoff refuses HEAD
			continue
		}
		if pattern == s.reportOpPattern() {
			if _, _, ok := parseReportOp(lastSegment(r.URL.Path)); !ok {
				continue
			}
		}
		allowed = append(allowed, m)
	}
	return slices.Compact(allowed)
}

func lastSegment(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeBody(w, http.StatusOK, "text/plain; charset=utf-8", []byte("ok"))
}

// baseURL is the absolute FHIR base URL for links in responses: Config.PublicBaseURL; else the request's
// Host when it names a loopback host (a client on this machine, or a port Docker maps to loopback); else the
// address the connection was accepted on. An arbitrary Host is never reflected into a link.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicBaseURL != "" {
		return s.cfg.PublicBaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + linkHost(r) + s.cfg.BasePath
}

// linkHost is the host[:port] links are built with when no public base URL is configured.
func linkHost(r *http.Request) string {
	if loopbackHost(r.Host) {
		return r.Host
	}
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()).String()
		}
	}
	return "localhost" // no connection (a handler called directly): a name that leads nowhere else
}

// loopbackHost reports whether host is "localhost" or a loopback IP (IPv6 in brackets), with an optional
// numeric port: a well-formed authority that leads back to this machine.
func loopbackHost(host string) bool {
	h, port, err := net.SplitHostPort(host)
	switch {
	case err == nil:
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return false
		}
	case strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]"):
		h = host[1 : len(host)-1]
	case strings.Contains(host, ":"):
		return false
	default:
		h = host
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Zone() == "" && ip.IsLoopback() && (ip.Is4() || strings.HasPrefix(host, "["))
}
