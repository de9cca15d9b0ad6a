package harness

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/container"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// Preflight checks, before any scenario and before any report is written, that the run can happen at all:
// each service the selected features use answers (DNS, connection, TLS), is a FHIR R4 base (GET
// [base]/metadata returns a CapabilityStatement), and accepts each user's credentials. A misconfiguration
// then ends the run as "could not run" with its cause and its fix, instead of failing every scenario and
// charging the server with requirements it may well meet.
//
// Which request proves the credentials: not the metadata, which HAPI FHIR (and so FUT) serves without
// authentication, so that a wrong token would pass. Instead a request of the run's profile that the service
// must authenticate, and that the profile's sources define:
//   - fut and hapi-8.0, export service: GET $export-poll-status for a job id that cannot exist (FUT's
//     operation; an authenticated caller gets 404, or a 4xx for the id; an unauthenticated one 401 or 403);
//   - bulkdata, export service: the HL7 IG defines no read-only request a server must authenticate (its
//     polling location is known only from a kick-off, and FUT's operation is not the IG's), so the probe is
//     the scenarios' own kick-off, and a job it starts is cancelled at once with the IG's Bulk Data Delete
//     Request on its Content-Location;
//   - reporting service: POST $get-report-job-status (the caller's own job list).
// Only the status is read; any answer but 401/403 lets the run go on, and the scenarios judge it.

// Preflight is what the harness learnt of the target before the first scenario.
type Preflight struct {
	Services []ServiceCheck
	// Warnings are the disagreements between the CapabilityStatements and what the run exercises.
	Warnings []string
}

// ServiceCheck is one FHIR base the run uses, as its CapabilityStatement describes it.
type ServiceCheck struct {
	Role        string   // "export", "report", or "export and report" when one base serves both
	BaseURL     string   // the FHIR base
	FHIRVersion string   // CapabilityStatement.fhirVersion
	Software    string   // CapabilityStatement.software: name and version
	Operations  []string // operations declared, without "$", sorted
	Users       []string // the users ("A", "B") whose credentials the service accepted
}

// PreflightError is a run that cannot happen as configured. It names no requirement: nothing was checked.
type PreflightError struct {
	Cause string // what went wrong, and where
	Fix   string // what to change
}

func (e *PreflightError) Error() string { return "could not run: " + e.Cause + "\n  fix: " + e.Fix }

// exercised lists, per feature, the operations its scenarios call in profile: a CapabilityStatement that does
// not declare one of them is reported (the scenarios still decide whether the server serves it). The HL7 IG
// (bulkdata) defines no $export-poll-status, only the polling location a kick-off returns, which the
// scenarios follow there; "" is every profile's operations.
func exercised(feature, report, profile string) []string {
	if feature == "export" && profile == "bulkdata" {
		return []string{"export"}
	}
	if feature == "export" {
		return []string{"export", "export-poll-status"}
	}
	return []string{"get-report-job-status", "execute-" + report, "schedule-" + report}
}

type preflighter struct {
	cfg    Config
	target steps.Target
}

// service is one FHIR base and the features that use it.
type service struct {
	base, variable string
	features       []string
	imageBase      string // the base path inside a vendor's container (IMAGE_BASE), whose URL base is
}

// named is the variable that gives the service's base and its value, for messages: TARGET=https://x/fhir,
// or for a vendor's image IMAGE_BASE=/fhir (http://127.0.0.1:32768/fhir), the URL the harness made of it.
func (s service) named() string {
	if s.imageBase != "" {
		return fmt.Sprintf("%s=%s (%s)", s.variable, s.imageBase, s.base)
	}
	return s.variable + "=" + s.base
}

// value is what the service's variable should hold to make base the FHIR base: the URL, or for a vendor's
// image its path.
func (s service) value(base string) string {
	if s.imageBase == "" {
		return base
	}
	u, err := url.Parse(base)
	if err != nil || u.Path == "" {
		return "/"
	}
	return u.Path
}

func preflight(ctx context.Context, cfg Config, t steps.Target) (*Preflight, error) {
	p := preflighter{cfg: cfg, target: t}
	var services []service
	for _, f := range []string{"export", "report"} {
		if len(cfg.Features) > 0 && !slices.Contains(cfg.Features, f) {
			continue
		}
		base := t.ExportBaseURL
		if f == "report" {
			base = t.ReportBaseURL
		}
		if i := slices.IndexFunc(services, func(s service) bool { return s.base == base }); i >= 0 {
			services[i].features = append(services[i].features, f)
			continue
		}
		s := service{base: base, variable: cfg.baseVariable(f), features: []string{f}}
		if s.variable == "IMAGE_BASE" {
			s.imageBase = cmp.Or(cfg.ImageBase, container.DefaultBasePath)
		}
		services = append(services, s)
	}
	out := &Preflight{}
	for _, s := range services {
		check, warnings, err := p.service(ctx, s)
		if err != nil {
			return out, err
		}
		out.Services = append(out.Services, check)
		out.Warnings = append(out.Warnings, warnings...)
	}
	out.Warnings = append(out.Warnings, p.tokenLifetimes(p.cfg.now())...)
	return out, swapped(out.Services)
}

// tokenLifetimes warns of a static token that expires, by its JWT exp claim, within MAX_WAIT: a run waits up
// to that long for one job, and a static token cannot be renewed. Its 401s after that are errors of the run,
// not the server's (steps: World.expiredCredential), but the requirements they reach are left unchecked.
func (p preflighter) tokenLifetimes(now time.Time) []string {
	if p.cfg.authMode() != "static" {
		return nil
	}
	var out []string
	for _, c := range []struct{ name, token string }{{"TOKEN", p.cfg.Token}, {"TOKEN_B", p.cfg.TokenB}} {
		exp, ok := check.TokenExpiry(c.token)
		switch {
		case !ok || exp.Sub(now) >= p.target.MaxWait:
			continue
		case !exp.After(now): // the preflight's requests were answered all the same
			out = append(out, fmt.Sprintf("%s expired at %s by its exp claim, yet the server accepted it: a server that checks exp would refuse every request",
				c.name, exp.Format(time.RFC3339)))
			continue
		}
		out = append(out, fmt.Sprintf("%s expires at %s by its exp claim, in %s, within MAX_WAIT (%s), the wait for one job: requests after it get 401s, which end their scenarios as errors of the run; a token that outlives the run, or TOKEN_URL with CLIENT_ID (renewed by the harness), checks everything",
			c.name, exp.Format(time.RFC3339), exp.Sub(now).Round(time.Second), p.target.MaxWait))
	}
	return out
}

// swapped refuses EXPORT_TARGET and REPORT_TARGET given the wrong way round: each service's
// CapabilityStatement declares none of its own feature's operations and the other's declares them. Run so,
// every scenario would charge a server with an operation it was never meant to serve.
func swapped(services []ServiceCheck) error {
	if len(services) != 2 {
		return nil
	}
	serves := func(c ServiceCheck, feature string) bool {
		return slices.ContainsFunc(exercised(feature, "", ""), func(op string) bool {
			return slices.Contains(c.Operations, op)
		})
	}
	export, report := services[0], services[1]
	if export.Role != "export" || report.Role != "report" || serves(export, "export") || serves(report, "report") ||
		!serves(export, "report") || !serves(report, "export") {
		return nil
	}
	return &PreflightError{
		Cause: fmt.Sprintf("EXPORT_TARGET=%s declares the reporting operations and none of the export's, and REPORT_TARGET=%s the other way round", export.BaseURL, report.BaseURL),
		Fix:   "swap EXPORT_TARGET and REPORT_TARGET",
	}
}

func (p preflighter) service(ctx context.Context, s service) (ServiceCheck, []string, error) {
	check := ServiceCheck{Role: strings.Join(s.features, " and "), BaseURL: s.base}
	cs, err := p.capabilities(ctx, s)
	if err != nil {
		return check, nil, err
	}
	check.FHIRVersion, check.Operations = cs.FHIRVersion, cs.operations()
	check.Software = strings.TrimSpace(cs.Software.Name + " " + cs.Software.Version)
	if err := p.reportDeclared(s, cs); err != nil {
		return check, nil, err
	}
	var warnings []string
	for _, f := range s.features {
		for _, op := range exercised(f, p.target.Report, p.target.Profile) {
			if !cs.declares(op) {
				warnings = append(warnings, fmt.Sprintf("the CapabilityStatement of %s does not declare $%s, which the %s feature exercises", s.base, op, f))
			}
		}
	}
	tokens := map[string]string{}
	for _, user := range []string{"A", "B"} {
		if src, ok := p.target.Credentials[user]; !ok || (user == "B" && src == nil) {
			continue // no user B: the cross-user scenarios are skipped, visibly
		}
		token, err := p.token(user)
		if err != nil {
			return check, nil, err
		}
		for _, f := range s.features {
			if err := p.probe(ctx, s, f, user, token, cs); err != nil {
				return check, nil, err
			}
			if f == "export" && user == "A" {
				if err := p.exportTypes(ctx, s, token); err != nil {
					return check, nil, err
				}
			}
		}
		if user == "B" && token != "" && token == tokens["A"] {
			return check, nil, &PreflightError{
				Cause: fmt.Sprintf("%s was issued the same access token as %s: the cross-user scenarios need two users", p.credential("B"), p.credential("A")),
				Fix:   "give user B a client of its own (CLIENT_ID_B, CLIENT_SECRET_B), or leave it unset to skip the cross-user scenarios, visibly",
			}
		}
		tokens[user] = token
		check.Users = append(check.Users, user)
	}
	return check, warnings, nil
}

// reportDeclared refuses a REPORT of the user's choosing that the service's CapabilityStatement leaves out
// while it lists the reports it does serve: a misspelt report type, which would otherwise fail RJS-LISTED
// against a server that answers its unknown operation with 404. The default report is FUT's, and a server
// that leaves it, or every report, out of its statement only gets the warning below: the scenarios judge it.
func (p preflighter) reportDeclared(s service, cs capabilityStatement) error {
	report := p.target.Report
	if !slices.Contains(s.features, "report") || report == steps.DefaultReport ||
		cs.declares("execute-"+report) || cs.declares("schedule-"+report) {
		return nil
	}
	var reports []string
	for _, op := range cs.operations() {
		for _, prefix := range []string{"execute-", "schedule-"} {
			if r, ok := strings.CutPrefix(op, prefix); ok && r != "" && !slices.Contains(reports, r) {
				reports = append(reports, r)
			}
		}
	}
	if len(reports) == 0 {
		return nil
	}
	fix := "set REPORT to one of them, or leave it unset for " + steps.DefaultReport
	if near := nearest(report, reports); near != "" {
		fix = "did you mean REPORT=" + near + "? " + fix
	}
	return &PreflightError{
		Cause: fmt.Sprintf("REPORT=%s: the CapabilityStatement of %s declares neither $execute-%s nor $schedule-%s; its reports are %s",
			report, s.base, report, report, strings.Join(reports, ", ")),
		Fix: fix,
	}
}

// capabilityStatement is the part of a CapabilityStatement the preflight reads.
type capabilityStatement struct {
	ResourceType string `json:"resourceType"`
	FHIRVersion  string `json:"fhirVersion"`
	Software     struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	} `json:"software"`
	Rest []struct {
		Operation []capabilityOperation `json:"operation"`
		Resource  []struct {
			Operation []capabilityOperation `json:"operation"`
		} `json:"resource"`
	} `json:"rest"`
}

type capabilityOperation struct {
	Name       string `json:"name"`
	Definition string `json:"definition"`
}

func (cs capabilityStatement) all() []capabilityOperation {
	var ops []capabilityOperation
	for _, r := range cs.Rest {
		ops = append(ops, r.Operation...)
		for _, res := range r.Resource {
			ops = append(ops, res.Operation...)
		}
	}
	return ops
}

func (cs capabilityStatement) operations() []string {
	var names []string
	for _, op := range cs.all() {
		if n := strings.TrimPrefix(op.Name, "$"); n != "" && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// declares reports whether the statement lists the operation, by name ("export-poll-status" or
// "$export-poll-status") or by its definition's canonical (FUT's ".../OperationDefinition/-s-export-poll-status").
func (cs capabilityStatement) declares(op string) bool {
	for _, o := range cs.all() {
		def := o.Definition[strings.LastIndex(o.Definition, "/")+1:]
		if strings.TrimPrefix(o.Name, "$") == op || def == op || strings.HasSuffix(def, "-"+op) {
			return true
		}
	}
	return false
}

// capabilities fetches and checks the CapabilityStatement of s, with user A's credentials (the token goes to
// the target's own origin; a server that protects its metadata gets what it needs).
func (p preflighter) capabilities(ctx context.Context, s service) (capabilityStatement, error) {
	var cs capabilityStatement
	token, err := p.token("A")
	if err != nil {
		return cs, err
	}
	resp, body, err := p.do(ctx, http.MethodGet, s.base+"/metadata", token, nil, p.target.MaxBodyBytes, nil)
	if err != nil {
		return cs, p.unreachable(s, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return cs, p.rejected(s, "A", token, "GET "+s.base+"/metadata", resp.Status)
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &cs) != nil || cs.ResourceType != "CapabilityStatement" {
		got := resp.Status
		if ct := resp.Header.Get("Content-Type"); ct != "" {
			got += ", " + ct
		}
		if resp.StatusCode == http.StatusOK {
			got += ", not a CapabilityStatement"
		}
		return cs, &PreflightError{
			Cause: fmt.Sprintf("%s is not a FHIR base URL: GET %s/metadata answered %s", s.named(), s.base, got),
			Fix:   p.suggestBase(ctx, s, token),
		}
	}
	if cs.FHIRVersion != "" && !strings.HasPrefix(cs.FHIRVersion, "4.0.") {
		return cs, &PreflightError{
			Cause: fmt.Sprintf("%s serves FHIR %s; the harness checks FHIR R4 (4.0.x)", s.named(), cs.FHIRVersion),
			Fix:   fmt.Sprintf("point %s at the server's FHIR R4 base", s.variable),
		}
	}
	return cs, nil
}

// suggestBase says what the FHIR base probably is: a candidate whose metadata is a CapabilityStatement
// when one is found, otherwise what the variable should hold.
func (p preflighter) suggestBase(ctx context.Context, s service, token string) string {
	u, _ := url.Parse(s.base)
	if u.Scheme == "http" && s.imageBase == "" && speaksTLS(ctx, u, p.target.RequestTimeout) {
		// Go, nginx, Apache and Tomcat answer a plain-HTTP request on their TLS port 400 ("Client sent an HTTP
		// request to an HTTPS server"): the scheme is wrong, not the path.
		return speaksHTTPS(s, u.Host)
	}
	path := strings.TrimRight(u.Path, "/")
	var candidates []string
	if i := strings.Index(path+"/", "/fhir/"); i >= 0 && path != path[:i+5] {
		candidates = append(candidates, u.Scheme+"://"+u.Host+path[:i+5]) // a path below the base
	}
	if stripped, ok := strings.CutSuffix(path, "/metadata"); ok {
		candidates = append(candidates, u.Scheme+"://"+u.Host+stripped)
	}
	if !strings.HasSuffix(path, "/fhir") {
		candidates = append(candidates, strings.TrimRight(s.base, "/")+"/fhir")
	}
	for _, c := range candidates {
		resp, body, err := p.do(ctx, http.MethodGet, c+"/metadata", token, nil, p.target.MaxBodyBytes, nil)
		var cs capabilityStatement
		if err == nil && resp.StatusCode == http.StatusOK && json.Unmarshal(body, &cs) == nil && cs.ResourceType == "CapabilityStatement" {
			return fmt.Sprintf("did you mean %s=%s? GET %s/metadata answers with a CapabilityStatement", s.variable, s.value(c), c)
		}
	}
	hint, example := fmt.Sprintf("%s is the FHIR base URL, the one whose /metadata is the server's CapabilityStatement", s.variable), "https://fut.example/fhir"
	if s.imageBase != "" {
		hint, example = "IMAGE_BASE is the FHIR base path in the container, the one whose /metadata is the server's CapabilityStatement", "/fhir"
	}
	if len(candidates) > 0 {
		return fmt.Sprintf("did you mean %s=%s? %s, e.g. %s", s.variable, s.value(candidates[len(candidates)-1]), hint, example)
	}
	return hint + ": check the path"
}

// speaksHTTPS is the fix for an http:// base whose host speaks TLS.
func speaksHTTPS(s service, host string) string {
	return fmt.Sprintf("the server speaks HTTPS (TLS) at %s: did you mean %s=%s?", host, s.variable, "https://"+strings.TrimPrefix(s.base, "http://"))
}

// speaksTLS tells whether u's host and port complete a TLS handshake (or answer it with a TLS alert, as a
// server requiring a client certificate may). Only the handshake is made: no request, no token; the
// certificate is not judged here, the run's own requests do that.
func speaksTLS(ctx context.Context, u *url.URL, timeout time.Duration) bool {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(timeout, 5*time.Second))
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname()}} // a probe that sends nothing
	conn, err := d.DialContext(ctx, "tcp", host)
	if err == nil {
		_ = conn.Close()
		return true
	}
	var alert tls.AlertError
	return errors.As(err, &alert)
}

// probe sends the service's authenticated request for one feature as user, and refuses a 401 or 403. In
// bulkdata, kicking off at the system level (EXPORT_KICKOFF unset), it also refuses a server without a
// system-level export (noSystemExport).
func (p preflighter) probe(ctx context.Context, s service, feature, user, token string, cs capabilityStatement) error {
	// A random job id: one no server has issued.
	method, target, body := http.MethodGet, s.base+"/$export-poll-status?_jobId="+check.NewUUID(), []byte(nil)
	header := http.Header{}
	switch {
	case feature == "report":
		method, target, body = http.MethodPost, s.base+"/$get-report-job-status", []byte(`{"resourceType":"Parameters"}`)
	case p.target.Profile == "bulkdata":
		target, header = steps.KickoffGET(s.base, p.target.ExportKickoff, p.target.ExportTypes)
	}
	resp, _, err := p.do(ctx, method, target, token, body, 0, header)
	if err != nil {
		return p.unreachable(s, err)
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return p.rejected(s, user, token, method+" "+target, resp.Status)
	}
	if loc := resp.Header.Get("Content-Location"); resp.StatusCode == http.StatusAccepted && feature == "export" && loc != "" {
		p.cancel(ctx, target, loc, token)
	}
	if feature == "export" && p.target.Profile == "bulkdata" && cmp.Or(p.target.ExportKickoff, steps.DefaultExportKickoff) == steps.DefaultExportKickoff {
		return noSystemExport(s, method+" "+target, resp, cs)
	}
	return nil
}

// noSystemExport refuses, in bulkdata, a server that offers no system-level export when the run kicks off
// there ([base]/$export, EXPORT_KICKOFF's default): the HL7 IG makes that endpoint one of three a server may offer
// ("Endpoint - All Patients", "Endpoint - Group of Patients", "Endpoint - System Level Export"; its "Server
// Capability Documentation" asks "Does the server support system-wide (or all-patients, or Group-level)
// export?"). So a kick-off there answered 404 Not Found or 405 Method Not Allowed, by a server whose
// CapabilityStatement declares no system-level $export, is no deviation to charge EXP-KICKOFF with (CMS's
// AB2D exports at Patient and Group level only, and its Spring controllers answer [base]/$export 404): the
// run ends, checking nothing. A server that declares a system-level $export and answers it 404 is judged by
// the scenarios, as is any other answer. EXPORT_KICKOFF=Patient/$export or Group/<id>/$export runs the
// scenarios against the level the server does export.
func noSystemExport(s service, request string, resp *http.Response, cs capabilityStatement) error {
	if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
		return nil
	}
	if cs.declaresSystemExport() {
		return nil
	}
	return &PreflightError{
		Cause: fmt.Sprintf("%s offers no system-level export: %s answered %s, and its CapabilityStatement declares no system-level $export; "+
			"the HL7 Bulk Data IG makes the system level optional (a server may export at Patient or Group level only), so nothing is checked and no requirement is charged",
			s.base, request, resp.Status),
		Fix: fmt.Sprintf("set EXPORT_KICKOFF=Patient/$export (or Group/<id>/$export) to kick off where the server exports, or point %s at the FHIR base of a server that serves [base]/$export", s.variable),
	}
}

// declaresSystemExport reports whether the statement declares $export at system level: an operation of rest
// (not of a resource) named export whose definition is not a Patient- or Group-level export's (the IG's
// patient-export and group-export canonicals, or a URL of [base]/Patient/$export or [base]/Group/[id]/$export,
// as AB2D gives).
func (cs capabilityStatement) declaresSystemExport() bool {
	for _, r := range cs.Rest {
		for _, o := range r.Operation {
			if strings.TrimPrefix(o.Name, "$") != "export" {
				continue
			}
			def := strings.ToLower(o.Definition)
			if !strings.Contains(def, "patient-export") && !strings.Contains(def, "group-export") &&
				!strings.Contains(def, "/patient/") && !strings.Contains(def, "/group/") {
				return true
			}
		}
	}
	return false
}

// exportTypes refuses EXPORT_TYPES that the server will not export. The HL7 IG lets a server refuse a _type
// it does not support (an error, unless the client asks for lenient handling), so a refused kick-off with
// the user's _type is no deviation when the same kick-off without it is accepted: the run would charge the
// server with EXP-KICKOFF for the user's choice. When both are refused the scenarios judge it. Each job
// started here is cancelled at once.
func (p preflighter) exportTypes(ctx context.Context, s service, token string) error {
	types := p.target.ExportTypes
	if types == "" {
		return nil
	}
	kickoff := func(types string) (*http.Response, []byte, string, error) {
		target, header := steps.KickoffGET(s.base, p.target.ExportKickoff, types)
		resp, body, err := p.do(ctx, http.MethodGet, target, token, nil, 4096, header)
		if err == nil && resp.StatusCode == http.StatusAccepted && resp.Header.Get("Content-Location") != "" {
			p.cancel(ctx, target, resp.Header.Get("Content-Location"), token)
		}
		return resp, body, target, err
	}
	resp, body, target, err := kickoff(types)
	if err != nil {
		return p.unreachable(s, err)
	}
	switch code := resp.StatusCode; {
	case code < 400 || code >= 500, code == http.StatusUnauthorized, code == http.StatusForbidden, code == http.StatusTooManyRequests:
		return nil // accepted, or not about the types: the scenarios judge it
	}
	all, _, _, err := kickoff("")
	if err != nil || all.StatusCode != http.StatusAccepted {
		return nil // the server refuses any kick-off: its deviation, which the scenarios report
	}
	return &PreflightError{
		Cause: fmt.Sprintf("the server refuses an export of EXPORT_TYPES=%s and accepts one of every type: GET %s answered %s%s",
			types, target, resp.Status, outcomeNote(body)),
		Fix: "set EXPORT_TYPES to resource types this server exports (the HL7 Bulk Data IG lets a server refuse a _type it does not support), or leave it unset",
	}
}

// outcomeNote quotes what an OperationOutcome's first issue says, for a message; "" when the body is none.
func outcomeNote(body []byte) string {
	oo, ok := check.ParseOutcome(body)
	say := oo.FirstText()
	if !ok || say == "" {
		return ""
	}
	if r := []rune(say); len(r) > 200 {
		say = string(r[:200]) + "…"
	}
	return fmt.Sprintf(" (%q)", say)
}

// cancel deletes the job a bulkdata probe started, best effort: the run does not depend on it, and a server
// that keeps the job only runs one export more. The token goes only to an origin the run trusts.
func (p preflighter) cancel(ctx context.Context, kickoff, location, token string) {
	u, err := url.Parse(kickoff)
	if err != nil {
		return
	}
	loc, err := u.Parse(location)
	if err != nil || !p.target.Trusts(loc.String()) {
		return
	}
	_, _, _ = p.do(ctx, http.MethodDelete, loc.String(), token, nil, 0, nil)
}

func (p preflighter) token(user string) (string, error) {
	src := p.target.Credentials[user]
	if src == nil {
		return "", nil
	}
	tok, err := src.Token()
	if err != nil {
		proof := " and its secret"
		if key, kid := p.signingKey(user); key != "" {
			proof = fmt.Sprintf(", %s and %s: the server must hold the client's public key under that kid", key, kid)
		}
		cause := fmt.Sprintf("could not get an access token for %s from TOKEN_URL: %s", p.credential(user), p.redact(err.Error()))
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_client" {
			cause = fmt.Sprintf("could not get an access token for %s from TOKEN_URL: the token endpoint refused the client (%s)", p.credential(user), p.redact(err.Error()))
		}
		return "", &PreflightError{Cause: cause, Fix: fmt.Sprintf("check TOKEN_URL, %s%s (and SCOPE)", p.credential(user), proof)}
	}
	return tok.AccessToken, nil
}

// do sends one request bounded by REQUEST_TIMEOUT and returns up to limit bytes of its body (none for 0).
func (p preflighter) do(ctx context.Context, method, target, token string, body []byte, limit int64, header http.Header) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, p.target.RequestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := p.target.HTTPClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if limit <= 0 {
		return resp, nil, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, err
	}
	return resp, raw, nil
}

// signingKey names the variables of a user's SMART Backend Services key, if the user authenticates by one.
func (p preflighter) signingKey(user string) (key, kid string) {
	switch {
	case user == "A" && p.cfg.PrivateKey != "":
		return "PRIVATE_KEY", "KEY_ID"
	case user == "B" && p.cfg.PrivateKeyB != "":
		return "PRIVATE_KEY_B", "KEY_ID_B"
	}
	return "", ""
}

// credential names the variable holding a user's credentials, for messages.
func (p preflighter) credential(user string) string {
	switch p.cfg.authMode() {
	case "static":
		return map[string]string{"A": "TOKEN", "B": "TOKEN_B"}[user]
	case "oauth2":
		return map[string]string{"A": "CLIENT_ID", "B": "CLIENT_ID_B"}[user]
	}
	return "the demo token of user " + user
}

// rejected is the error for a 401 or 403.
func (p preflighter) rejected(s service, user, token, request, status string) error {
	if token == "" {
		return &PreflightError{
			Cause: fmt.Sprintf("%s requires authentication: %s answered %s without credentials", s.base, request, status),
			Fix:   "set TOKEN (export it from your secret store, or TOKEN_FILE), or TOKEN_URL with CLIENT_ID and CLIENT_SECRET",
		}
	}
	name := p.credential(user)
	cause := fmt.Sprintf("%s rejected by the server: %s answered %s", name, request, status)
	fix := fmt.Sprintf("%s must be a valid, unexpired access token of this server for a user allowed to use the operations (sent as Authorization: Bearer)", name)
	switch exp, ok := check.TokenExpiry(token); {
	case p.cfg.authMode() == "oauth2":
		fix = fmt.Sprintf("the token TOKEN_URL issued to %s is not accepted by %s: check that the client is registered for this server and SCOPE grants the operations", name, s.base)
	case ok && p.cfg.now().After(exp):
		cause += fmt.Sprintf("; %s expired at %s by its exp claim, %s ago", name, exp.Format(time.RFC3339), p.cfg.now().Sub(exp).Round(time.Second))
		fix = fmt.Sprintf("get a fresh token for %s; one that outlives the run (MAX_WAIT per job), or TOKEN_URL with CLIENT_ID, whose tokens the harness renews", name)
	}
	return &PreflightError{Cause: cause, Fix: fix}
}

// unreachable turns a transport error into its likely cause and fix.
func (p preflighter) unreachable(s service, err error) error {
	cause := fmt.Sprintf("%s does not answer: %s", s.named(), p.redact(err.Error()))
	host := ""
	u, perr := url.Parse(s.base)
	if perr == nil {
		host = u.Host
	}
	var (
		dns       *net.DNSError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		netErr    net.Error
	)
	fix := fmt.Sprintf("check %s", s.variable)
	switch {
	case errors.As(err, &dns):
		fix = fmt.Sprintf("the host name in %s is not known to DNS: check its spelling", s.variable)
	case errors.Is(err, syscall.ECONNREFUSED):
		fix = fmt.Sprintf("nothing listens at %s: check the port in %s and that the server runs", host, s.variable)
	case errors.As(err, &unknownCA):
		fix = "the server's certificate is signed by a CA this machine does not trust: set CA_CERT to that CA's PEM file"
	case errors.As(err, &hostname):
		fix = fmt.Sprintf("the server's certificate is not issued for %s: use the host name it names", host)
	case errors.As(err, &invalid):
		fix = "the server's certificate is invalid (expired, or not for a server): renew it, or set CA_CERT"
	case perr == nil && u.Scheme == "http" && s.imageBase == "" && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) &&
		speaksTLS(context.Background(), u, p.target.RequestTimeout):
		// A TLS port that hangs up on plain HTTP instead of answering it 400 (as Jetty, or a TLS proxy, may).
		fix = speaksHTTPS(s, host)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		fix = fmt.Sprintf("the server speaks plain HTTP on that port: use http:// in %s", s.variable)
	case errors.As(err, &record):
		fix = fmt.Sprintf("the port does not speak TLS: use http:// if the server speaks plain HTTP, or check the port in %s", s.variable)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		cause = fmt.Sprintf("%s did not answer within REQUEST_TIMEOUT=%s: %s", s.named(), p.target.RequestTimeout, p.redact(err.Error()))
		fix = fmt.Sprintf("check %s and that the server is up; raise REQUEST_TIMEOUT if it is only slow", s.variable)
	case strings.Contains(err.Error(), "certificate"):
		fix = "check the TLS set-up: CA_CERT for the server's CA, CLIENT_CERT and CLIENT_KEY if it requires a client certificate"
	}
	return &PreflightError{Cause: cause, Fix: fix}
}

// redact removes the run's secrets from a message that quotes a server or a library.
func (p preflighter) redact(s string) string {
	for _, secret := range []string{p.cfg.Token, p.cfg.TokenB, p.cfg.ClientSecret, p.cfg.ClientSecretB} {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	return s
}

// printPreflight writes what the preflight found, for the console summary: per service its FHIR version and
// software, and which of the operations the harness tests its CapabilityStatement declares.
func printPreflight(out io.Writer, pf *Preflight) {
	if pf == nil {
		return
	}
	for _, s := range pf.Services {
		software := ""
		if s.Software != "" {
			software = ", " + s.Software
		}
		fmt.Fprintf(out, "\nCapabilityStatement of %s (%s): FHIR %s%s\n", s.BaseURL, s.Role, s.FHIRVersion, software)
		var tested []string
		for _, op := range s.Operations {
			if op == "export" || op == "export-poll-status" || op == "get-report-job-status" {
				tested = append(tested, "$"+op)
			}
		}
		line := "  declares " + countOf(len(s.Operations), "operation")
		if len(tested) > 0 {
			line += ", among them " + strings.Join(tested, ", ")
		}
		fmt.Fprintln(out, line)
	}
	for _, w := range pf.Warnings {
		fmt.Fprintf(out, "  warning: %s\n", w)
	}
}
