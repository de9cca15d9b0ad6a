package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// ErrNoScenario is returned when the tag expression selects nothing: a run that checks nothing must not pass.
var ErrNoScenario = errors.New("no scenario selected")

// Run runs the features against the configured target and writes the reports. The error is for a run that
// could not happen (bad configuration, no reports directory, nothing selected); a run whose scenarios fail
// returns Passed false and no error.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.ReportsDir == "" {
		cfg.ReportsDir = "reports"
	}
	// Pooled jobs log while the scenarios run: writes to the console are serialized, one lock when the
	// console and the log are one writer.
	outLock, logLock := &sync.Mutex{}, &sync.Mutex{}
	if reflect.TypeOf(cfg.Log).Comparable() && cfg.Log == cfg.Out { // a writer of an uncomparable type would panic here
		logLock = outLock
	}
	cfg.Out, cfg.Log = syncWriter{outLock, cfg.Out}, syncWriter{logLock, cfg.Log}
	// An access token holds no white space (RFC 6750's b64token), and tokenShape ignores what surrounds one
	// (a newline from a file or a secret store): the token is sent, and known as a secret, without it. A
	// server's header parser trims it anyway, and would echo a token the Redactor did not know.
	cfg.Token, cfg.TokenB = strings.TrimSpace(cfg.Token), strings.TrimSpace(cfg.TokenB)
	// Every secret the run knows is replaced in everything it writes: console, progress, reports, errors.
	// Access tokens issued during the run join the secrets as they are issued (auth.go).
	cfg.redactor = check.NewRedactor(slices.Concat([]string{cfg.Token, cfg.TokenB, cfg.ClientSecret, cfg.ClientSecretB},
		urlPasswords(cfg.Target, cfg.ExportTarget, cfg.ReportTarget), imageEnvSecrets(cfg.ImageEnv))...)
	// Two writers even when the console and the log are one: each redacts its own stream whole, whatever the
	// other writes between two of its writes (a held-back end may then appear after the other's line).
	out, log := cfg.redactor.Writer(cfg.Out), cfg.redactor.Writer(cfg.Log)
	cfg.Out, cfg.Log = out, log
	defer func() {
		_, _ = out.Flush(), log.Flush()
		if err != nil {
			err = &redactedError{err: err, msg: cfg.redactor.String(err.Error())}
		}
	}()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if cfg.RefserverProfile != "" && (cfg.anyTarget() != "" || cfg.Image != "") {
		// Ignored: it configures the reference server the harness starts. Not refused, since the shell that
		// started a reference server by hand (cmd/refserver reads it) may well run the harness at it.
		fmt.Fprintf(log, "conformance: warning: REFSERVER_PROFILE=%s is ignored with TARGET or IMAGE (it sets what a reference server the harness starts emulates); PROFILE sets the rules the target is judged by\n", cfg.RefserverProfile)
	}
	if len(cfg.ReferenceServerOnly) > 0 {
		// Names only: a value may be anything, a FAULTS list or a token map (REFSERVER_TOKENS).
		ignored := "the embedded reference server reads none of them either (it keeps its own job durations and Retry-After)"
		if cfg.anyTarget() != "" || cfg.ContainerConfig.enabled() {
			ignored = "they change nothing of the server under test (a container's environment is IMAGE_ENV)"
		}
		fmt.Fprintf(log, "conformance: warning: %s set, but only the reference server command reads them (make refserver, cmd/refserver, the refserver image), not the harness: %s\n", strings.Join(cfg.ReferenceServerOnly, ", "), ignored)
	}
	// The reports are written to a directory of their own and moved into REPORTS_DIR only when the run has
	// happened: a run that could not happen leaves the previous run's reports as they were. It is made before
	// the target is started or contacted, so that a REPORTS_DIR the run cannot write to ends it at once.
	staging, unstage, err := stagingDir(cfg.ReportsDir)
	if err != nil {
		return Result{}, err
	}
	defer func() { unstage(err != nil) }()
	if cfg.Staged != nil {
		cfg.Staged(staging)
	}
	target, started, err := resolveTarget(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer started.Stop()
	defer func() {
		// A container that died during the run (before it is removed): its end explains every refused
		// connection since, which the scenarios can only report as errors of the run.
		if res.TargetExited = cfg.redactor.String(started.Exited()); res.TargetExited != "" {
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, res.TargetExited)
			} else {
				fmt.Fprintf(log, "conformance: the server under test died during the run: %s\n", res.TargetExited)
			}
		}
	}()
	// Jobs the pool started ahead end with the run, whether or not a scenario took them.
	runCtx, endRun := context.WithCancel(ctx)
	defer endRun()
	target.RunContext = runCtx
	res = Result{Target: target.Name, Profile: target.Profile, Strict: cfg.Strict, Findings: target.Findings}

	catalog, err := loadCatalog()
	if err != nil {
		return res, err
	}
	tags, chosen, leftOut, err := selection(cfg.Features, cfg.Tags, catalog.applicable(target.Profile), target.Profile)
	if err != nil {
		return res, err
	}
	cfg.Features = chosen // what the preflight checks
	if target.Selected, err = selectedSteps(tags); err != nil {
		return res, err
	}
	if len(target.Selected) == 0 {
		// Before the preflight: a selection of nothing is the user's, and the server need not be asked.
		return res, noScenario(cfg.Tags, leftOut)
	}
	initScenario, endJobs, err := steps.Scenarios(target)
	if err != nil {
		return res, err
	}
	res.NotSelected = leftOut
	// Before any report is opened: a run that cannot happen leaves the previous run's reports as they are.
	if res.Preflight, err = preflight(ctx, cfg, target); err != nil {
		return res, err
	}
	reportNames := []string{"junit.xml", "cucumber.json", "index.html"}
	res.Started = time.Now()

	if cfg.Randomize == -1 { // chosen here rather than by godog, so that the console can print it
		cfg.Randomize = res.Started.UnixNano()
	}
	con := newConsole(cfg.Out, cfg.Format)
	con.header(res, cfg.Randomize)
	rec := &recorder{featureNames: catalog.featureNames, ended: con.scenario}
	suite := godog.TestSuite{
		Name: "fut-conformance",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			rec.register(sc)
			initScenario(sc)
		},
		Options: &godog.Options{
			FS:             features.FS,
			Paths:          []string{"."},
			Format:         strings.TrimPrefix(con.godogFormatter()+",cucumber:"+filepath.Join(staging, "cucumber.json"), ","),
			Output:         cfg.Out,
			NoColors:       !isTerminal(cfg.Out),
			Strict:         true,
			Tags:           tags,
			Randomize:      cfg.Randomize,
			DefaultContext: ctx,
		},
	}
	status := suite.Run()
	// The last scenario has ended: the pool's polling stops, and the jobs it leaves on the server are cancelled
	// (steps/pool.go, endRun), before any verdict is read; the cleanup judges nothing and fails nothing.
	endRun()
	endJobs(ctx)
	res.Results = rec.results
	for _, r := range res.Results {
		if r.Failure != nil {
			res.Failures = append(res.Failures, *r.Failure)
		}
	}
	res.Scenarios = len(res.Results)
	res.Duration = time.Since(res.Started)
	switch {
	case status == 2:
		return res, fmt.Errorf("godog could not run the features (exit status 2): see the message above")
	case res.Scenarios == 0:
		return res, noScenario(cfg.Tags, leftOut)
	case ctx.Err() != nil:
		return res, fmt.Errorf("run interrupted: %w", ctx.Err())
	}
	res.Requirements = requirementResults(res, catalog.requirements, catalog.profiles, selectedRequirements(catalog.scenarios, cfg.Features))
	res.Passed = status == 0
	// Every selected scenario skipped or not applicable: the run checked nothing, and a PASS would vouch for a
	// server it never judged (TAGS=@cross-user without TOKEN_B, a requirement n/a in PROFILE).
	if res.NothingChecked = nothingChecked(res.Results); res.NothingChecked {
		res.Passed = false
	}
	if cfg.Gate {
		res.Gate = gate(res.Requirements)
		res.Passed = res.Passed && res.Gate.Passed
	}
	if err := writeJUnitReport(filepath.Join(staging, "junit.xml"), res); err != nil {
		return res, err
	}
	if err := writeHTMLReport(filepath.Join(staging, "index.html"), res); err != nil {
		return res, err
	}
	for _, name := range reportNames {
		// The steps redact what they hand to the reports; this pass catches what they could not know of.
		if err := redactFile(filepath.Join(staging, name), cfg.redactor); err != nil {
			return res, fmt.Errorf("write reports: %w", err)
		}
	}
	for _, name := range reportNames {
		path := filepath.Join(cfg.ReportsDir, name)
		if err := os.Rename(filepath.Join(staging, name), path); err != nil {
			return res, fmt.Errorf("write reports: %w", err)
		}
		res.Reports = append(res.Reports, path)
	}
	con.summary(res)
	return res, nil
}

// noScenario is ErrNoScenario with the tag expression and the features not run, each with why (FEATURES,
// or a feature not applicable in the profile): "@report matches no scenario" alone is untrue in bulkdata.
func noScenario(tags string, leftOut []string) error {
	msg := fmt.Sprintf("the tag expression %q matches no scenario", tags)
	if len(leftOut) > 0 {
		msg += " of the features run (not run: " + strings.Join(leftOut, "; ") + ")"
	}
	return fmt.Errorf("%w: %s (godog syntax: '@export && ~@cross-user')", ErrNoScenario, msg)
}

// stagingDir makes REPORTS_DIR if it is missing, and in it the directory the run stages its reports in.
// unstage removes the staging directory, and, when the run could not happen (failed), the directories
// stagingDir made: such a run leaves no trace in the file system.
func stagingDir(reportsDir string) (staging string, unstage func(failed bool), err error) {
	var made []string // the directories MkdirAll is to make, deepest first
	for dir := filepath.Clean(reportsDir); ; dir = filepath.Dir(dir) {
		if _, err := os.Lstat(dir); err == nil || !os.IsNotExist(err) {
			break
		}
		made = append(made, dir)
		if filepath.Dir(dir) == dir {
			break
		}
	}
	undo := func() {
		for _, dir := range made {
			_ = os.Remove(dir) // only if empty: what another process wrote there stays
		}
	}
	if err := os.MkdirAll(reportsDir, 0o755); err != nil {
		undo()
		return "", nil, fmt.Errorf("REPORTS_DIR=%q: cannot write the reports there: %w", reportsDir, err)
	}
	if staging, err = os.MkdirTemp(reportsDir, ".run-"); err != nil {
		undo()
		return "", nil, fmt.Errorf("REPORTS_DIR=%q: cannot write the reports there: %w", reportsDir, err)
	}
	return staging, func(failed bool) {
		_ = os.RemoveAll(staging)
		if failed {
			undo()
		}
	}, nil
}

// catalog is what the features say about themselves: the requirements, the profiles, the scenarios.
type catalog struct {
	requirements map[string]features.Requirement
	profiles     features.Profiles
	scenarios    []features.Scenario
	featureNames map[string]string // feature file → feature name
}

func loadCatalog() (catalog, error) {
	var c catalog
	var err error
	if c.requirements, err = features.Requirements(); err != nil {
		return c, err
	}
	if c.profiles, err = features.LoadProfiles(); err != nil {
		return c, err
	}
	if c.scenarios, err = features.Scenarios(); err != nil {
		return c, err
	}
	c.featureNames = map[string]string{}
	for _, s := range c.scenarios {
		c.featureNames[s.File] = s.Feature
	}
	return c, nil
}

// recorder turns godog's hooks into ScenarioResults.
type recorder struct {
	featureNames map[string]string
	ended        func(ScenarioResult) // called as each scenario ends, for the console
	mu           sync.Mutex
	results      []ScenarioResult
}

type recordKey struct{}

// scenarioRecord is one running scenario's result, kept in its context between the hooks.
type scenarioRecord struct {
	started    time.Time
	failedStep string
}

func (r *recorder) register(sc *godog.ScenarioContext) {
	sc.Before(func(ctx context.Context, _ *godog.Scenario) (context.Context, error) {
		return context.WithValue(ctx, recordKey{}, &scenarioRecord{started: time.Now()}), nil
	})
	sc.StepContext().After(func(ctx context.Context, st *godog.Step, status godog.StepResultStatus, _ error) (context.Context, error) {
		if rec, ok := ctx.Value(recordKey{}).(*scenarioRecord); ok && status == godog.StepFailed && rec.failedStep == "" {
			rec.failedStep = st.Text
		}
		return ctx, nil
	})
	sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
		file := strings.TrimPrefix(s.Uri, "./")
		res := ScenarioResult{Feature: r.featureNames[file], File: file, Name: s.Name, Requirements: steps.RequirementTags(s), Status: StatusPassed}
		for _, t := range s.Tags {
			res.Tags = append(res.Tags, strings.TrimPrefix(t.Name, "@"))
		}
		rec, _ := ctx.Value(recordKey{}).(*scenarioRecord)
		if rec != nil {
			res.Duration = time.Since(rec.started)
		}
		reason, notApplicable, skipped := steps.ScenarioSkip(ctx)
		switch {
		case notApplicable:
			res.Status, res.Reason = StatusNotApplicable, reason
		case skipped || errors.Is(err, godog.ErrSkip):
			res.Status, res.Reason = StatusSkipped, cmp.Or(reason, "skipped")
		case err != nil:
			res.Status = StatusFailed
			f := &Failure{Scenario: s.Name, Requirements: steps.FailureRequirements(err), Summary: steps.FailureSummary(err),
				Message: err.Error(), NonConformant: errors.Is(err, check.ErrNonConformant)}
			f.Transport = !f.NonConformant && errors.Is(err, check.ErrTransport)
			f.CredentialExpired = !f.NonConformant && errors.Is(err, check.ErrCredentialExpired)
			f.MaxBody = !f.NonConformant && errors.Is(err, check.ErrMaxBody)
			f.TokenWithheld = !f.NonConformant && errors.Is(err, check.ErrTokenWithheld)
			if f.RunError() {
				f.Requirements = nil // an error of the run: no answer of the server was judged
			}
			if len(f.Requirements) == 0 && len(res.Requirements) > 0 && !f.RunError() {
				f.Requirements = res.Requirements[:1]
			}
			if len(f.Requirements) > 0 {
				f.Requirement = f.Requirements[0]
			}
			if rec != nil {
				f.Step = rec.failedStep
			}
			res.Failure = f
		}
		r.mu.Lock()
		r.results = append(r.results, res)
		r.mu.Unlock()
		if r.ended != nil {
			r.ended(res)
		}
		return ctx, nil
	})
}

// selectedSteps is the step texts of every scenario the tag expression selects, for the job pool to start the
// jobs they wait on before the first scenario.
func selectedSteps(tags string) ([][]string, error) {
	feats, err := (godog.TestSuite{Options: &godog.Options{FS: features.FS, Paths: []string{"."}, Tags: tags}}).RetrieveFeatures()
	if err != nil {
		return nil, fmt.Errorf("read the features: %w", err)
	}
	var out [][]string
	for _, f := range feats {
		for _, p := range f.Pickles {
			texts := make([]string, len(p.Steps))
			for i, s := range p.Steps {
				texts[i] = s.Text
			}
			out = append(out, texts)
		}
	}
	return out, nil
}

// syncWriter serializes the writes of the scenarios and the job pool to one writer.
type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// redactFile replaces the run's secrets in a report before it is moved into place, in every escaped form
// (JSON, HTML, XML share them for the characters a token holds).
func redactFile(path string, red *check.Redactor) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if clean := red.String(string(raw)); clean != string(raw) {
		return os.WriteFile(path, []byte(clean), 0o644)
	}
	return nil
}

// urlPasswords are the passwords of the URLs' user info (https://user:password@host/fhir), secrets as much as
// a token: the target's URL is in every report, in every transcript and in every curl reproducer. Each in
// every form it is shown in: as written, decoded, and escaped as Go writes the URL back.
func urlPasswords(urls ...string) []string {
	var out []string
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			continue
		}
		pw, ok := u.User.Password()
		if !ok {
			continue
		}
		out = append(out, pw, strings.TrimPrefix(url.UserPassword("", pw).String(), ":"))
		_, rest, _ := strings.Cut(raw, "://")
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if _, written, ok := strings.Cut(rest[:i], ":"); ok {
				out = append(out, written)
			}
		}
	}
	return out
}

// redactedError is an error of the run with every secret replaced in its message; errors.Is and As still see
// the original.
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func isTerminal(w io.Writer) bool {
	for {
		if s, ok := w.(syncWriter); ok {
			w = s.w
			continue
		}
		u, ok := w.(interface{ Unwrap() io.Writer })
		if !ok {
			break
		}
		w = u.Unwrap()
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
