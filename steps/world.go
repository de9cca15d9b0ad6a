package steps

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// World is the state of one scenario. It lives in the scenario's context.Context, never in a global, so that
// scenarios can run concurrently.
type World struct {
	target       *Target
	requirements map[string]features.Requirement
	profiles     features.Profiles
	scenario     string
	scenarioReqs []string // the scenario's requirement tags, primary first

	exchanges []*check.Exchange // the requests of the scenario, in order; a long step's middle ones dropped
	stepStart int               // index into exchanges where the running step began
	omitted   int               // exchanges of the running step dropped from the middle (record)
	last      *check.Exchange   // the response the assertion steps look at
	warnings  []Finding         // SHOULD deviations of the running step, attached to the report by the step hook

	needs  scenarioNeeds // what the scenario takes from the run's job pool, read from its steps
	export exportState
	report reportState
	// userIDs is each user's userId as the scenario learnt it (the placeholder Binary's securityContext, else
	// the user's own status), kept when another user's report replaces report.
	userIDs map[string]string
	skipped bool // the scenario ended as skipped, with its reason among the run's findings
	// forPool: the World of a pooled job (jobPool.jobWorld), whose answers the scenarios that adopt the job
	// judge, each for itself.
	forPool bool
	// notApplicable: the scenario's requirement does not apply in the run's profile (skipped is then true too).
	notApplicable bool
	skipReason    string
}

// ErrNotApplicable ends a scenario as not applicable in the run's profile: a step returns an error wrapping
// it (fmt.Errorf("%w: why", ErrNotApplicable)), and the harness reports the scenario as not applicable, never
// failed and never passed. A requirement whose severity in the profile is n/a (features/PROFILES.md) ends its
// scenarios so before their first step.
var ErrNotApplicable = errors.New("not applicable in this profile")

// ScenarioSkipped tells a harness's after-scenario hook that the scenario was skipped (godog reports a
// skipped scenario's error as nil there).
func ScenarioSkipped(ctx context.Context) bool {
	w := worldFrom(ctx)
	return w != nil && w.skipped
}

// ScenarioSkip tells a harness's after-scenario hook whether the scenario was skipped or not applicable, and
// why.
func ScenarioSkip(ctx context.Context) (reason string, notApplicable, skipped bool) {
	w := worldFrom(ctx)
	if w == nil || !w.skipped {
		return "", false, false
	}
	return w.skipReason, w.notApplicable, true
}

type worldKey struct{}

func worldFrom(ctx context.Context) *World {
	w, _ := ctx.Value(worldKey{}).(*World)
	return w
}

func newWorld(t *Target, reqs map[string]features.Requirement, profiles features.Profiles, sc *godog.Scenario) *World {
	w := &World{target: t, requirements: reqs, profiles: profiles, scenario: sc.Name, scenarioReqs: RequirementTags(sc)}
	texts := make([]string, len(sc.Steps))
	for i, s := range sc.Steps {
		texts[i] = s.Text
	}
	w.needs = needsOf(t.Profile, texts)
	return w
}

// token is the bearer token of a user of the features; a user without one skips the scenario, visibly.
func (w *World) token(user string) (string, error) {
	if user == "" { // an anonymous request, e.g. an output file whose manifest requires no token
		return "", nil
	}
	src, ok := w.target.Credentials[user]
	if !ok {
		return "", w.skip(fmt.Sprintf("user %s has no token (set TOKEN_B for the second user): scenario not checked", user))
	}
	if src == nil {
		return "", nil
	}
	tok, err := src.Token()
	if err != nil {
		return "", fmt.Errorf("get a token for user %s: %w", user, err)
	}
	return tok.AccessToken, nil
}

// expirySkew: a 401 this close before a token's exp is taken as the token's expiry too, for the clocks of
// the harness's machine and of the server's to differ by.
const expirySkew = 30 * time.Second

// expiredCredential is the error of a 401 that answered a token already expired, by its own exp claim, when
// the request was sent at sent: the server refused what it must refuse, so the answer is judged by no
// requirement, and the run, not the server, is said to have failed (check.ErrCredentialExpired). A token
// the harness renews (OAuth2, SMART) is fresh, and its 401 is the server's, even in the last seconds of its
// Expiry (the harness hands a token out until 10 s before it, harness's renewAhead): only StaticTokens' tokens
// are excused. sent is by Target.Clock, the clock the tokens live by. nil for any other answer.
func (w *World) expiredCredential(x *check.Exchange, token string, sent time.Time) error {
	if x.Status != http.StatusUnauthorized || token == "" {
		return nil
	}
	for user, src := range w.target.Credentials {
		st, ok := src.(staticToken)
		exp := st.tok.Expiry
		if !ok || st.tok.AccessToken != token || exp.IsZero() || sent.Before(exp.Add(-expirySkew)) {
			continue
		}
		name := map[string]string{"A": "TOKEN", "B": "TOKEN_B"}[user]
		when := fmt.Sprintf("expired at %s by its exp claim, %s before the request", exp.Format(time.RFC3339), sent.Sub(exp).Round(time.Second))
		switch {
		case sent.Sub(exp) < time.Second/2 && !sent.Before(exp): // "0s before" would read as a contradiction
			when = fmt.Sprintf("expired at %s by its exp claim, as the request was sent", exp.Format(time.RFC3339))
		case sent.Before(exp):
			when = fmt.Sprintf("expires at %s by its exp claim, %s after the request was sent, within the %s allowed for the server's clock to run ahead of this machine's",
				exp.Format(time.RFC3339), exp.Sub(sent).Round(time.Second), expirySkew)
		}
		return fmt.Errorf("%w: %s %s answered 401, and user %s's token (%s) %s: not the server's deviation; use a token that outlives the run, or TOKEN_URL with CLIENT_ID, whose tokens the harness renews",
			check.ErrCredentialExpired, x.Method, x.URL, user, name, when)
	}
	return nil
}

// skip ends the scenario as skipped with a reason that the run's summary lists.
func (w *World) skip(reason string) error {
	reason = w.text(reason)
	w.skipped, w.skipReason = true, reason
	w.target.Findings.skip(Finding{Scenario: w.scenario, Requirement: w.primaryRequirement(), Message: reason})
	return fmt.Errorf("%w: %s", godog.ErrSkip, reason)
}

// notApplicableHere ends the scenario as not applicable in the run's profile, with a reason the reports show.
// It is not a skip: the run's skips (and the release gate) do not count it.
func (w *World) notApplicableHere(reason string) error {
	w.skipped, w.notApplicable, w.skipReason = true, true, reason
	return fmt.Errorf("%w: %s", godog.ErrSkip, reason)
}

// notApplicableInProfile says why the scenario does not apply in the run's profile: every requirement it
// checks has the severity n/a there. Empty: it applies.
func (w *World) notApplicableInProfile() string {
	if len(w.scenarioReqs) == 0 {
		return ""
	}
	for _, id := range w.scenarioReqs {
		if w.severity(id) != features.NotApplicable {
			return ""
		}
	}
	return fmt.Sprintf("%s does not apply in profile %s (features/PROFILES.md)", strings.Join(w.scenarioReqs, ", "), w.target.Profile)
}

// severity is requirement id's severity in the run's profile.
func (w *World) severity(id string) features.Severity {
	r, ok := w.requirements[id]
	if !ok {
		return features.Must
	}
	return w.profiles.SeverityOf(r, w.target.Profile)
}

// text is a message as the run may write it: the run's secrets redacted, a server's invalid UTF-8 replaced.
func (w *World) text(s string) string {
	return w.target.Redactor.String(strings.ToValidUTF8(s, "\uFFFD"))
}

// notChecked records a part of the scenario left unchecked, and why; the scenario is judged on the rest.
func (w *World) notChecked(req, message string) {
	f := Finding{Scenario: w.scenario, Requirement: cmp.Or(req, w.primaryRequirement()), Message: w.text(message)}
	w.target.Findings.notCheck(f)
	fmt.Fprintf(w.target.Log, "  not checked: %s\n", f.Message)
}

// warn records a deviation from a SHOULD requirement; under STRICT it fails the scenarios that check that
// requirement (failsHere). The profile's severity decides in the end: a requirement that is MUST in the run's
// profile fails here too.
func (w *World) warn(req, subject, expected, got string) error {
	id := cmp.Or(req, w.primaryRequirement())
	if w.failsHere(id) {
		return check.Violationf(req, subject, expected, got)
	}
	w.recordWarning(Finding{Scenario: w.scenario, Requirement: id, Message: fmt.Sprintf("%s: expected %s, got %s%s", subject, expected, got, w.strictElsewhere(id))})
	return nil
}

// failsHere tells whether a deviation from requirement id fails this scenario: always for a MUST of the run's
// profile; for a SHOULD only under STRICT, and only in a scenario tagged with it. A scenario that meets another
// requirement's SHOULD on the way (every completed export's Expires, every poll's X-Progress, every status
// entry's fullUrl) reports it as a warning and goes on to check its own requirement: failing there would
// leave MUST requirements blocked, unchecked, behind one SHOULD. The run still fails under STRICT, in the
// scenario of that SHOULD. A MAY never fails.
func (w *World) failsHere(id string) bool {
	switch w.severity(id) {
	case features.Must:
		return true
	case features.Should:
		return w.target.Strict && slices.Contains(w.scenarioReqs, id)
	}
	return false
}

// strictElsewhere is what a warning adds when STRICT would have failed a scenario that checks the requirement.
func (w *World) strictElsewhere(id string) string {
	if w.target.Strict && w.severity(id) == features.Should && !slices.Contains(w.scenarioReqs, id) {
		return fmt.Sprintf(" (STRICT=1 fails the scenarios that check %s, not this one)", id)
	}
	return ""
}

func (w *World) recordWarning(f Finding) {
	f.Message = w.text(f.Message)
	w.stepWarning(f)
	w.target.Findings.warn(f)
}

// stepWarning keeps a finding for the step's report once: a deviation seen on every poll of a job is one
// warning of the step, as it is one finding of the run (Findings.add).
func (w *World) stepWarning(f Finding) {
	if !slices.Contains(w.warnings, f) {
		w.warnings = append(w.warnings, f)
	}
}

// knownDeviation records an answer the run's profile accepts as a known deviation, under requirement req (the
// scenario's own when req is empty, as for warn); never a failure.
func (w *World) knownDeviation(req, message string) {
	f := Finding{Scenario: w.scenario, Requirement: cmp.Or(req, w.primaryRequirement()), Message: w.text(message)}
	w.stepWarning(f)
	w.target.Findings.knownDeviation(f)
}

func (w *World) primaryRequirement() string {
	if len(w.scenarioReqs) == 0 {
		return ""
	}
	return w.scenarioReqs[0]
}

// A step's transcript keeps its first and last exchanges: a poll of ten minutes is hundreds of requests, and
// the start and the end are what a reader needs.
const (
	keepFirstExchanges = 3
	keepLastExchanges  = 5
)

// record adds x to the scenario's transcript, keeping the run's memory bounded whatever the server sends:
// the exchanges before x have been checked, so their bodies are cut to a head (except the response the
// assertion steps still look at), and a step keeps only its first and last exchanges, counting the others.
func (w *World) record(x *check.Exchange) {
	for _, e := range w.exchanges[w.stepStart:] {
		if e != w.last && e != w.report.binaryRead {
			e.Cut()
		}
	}
	if len(w.exchanges)-w.stepStart >= keepFirstExchanges+keepLastExchanges {
		for drop := w.stepStart + keepFirstExchanges; drop < len(w.exchanges); drop++ {
			if e := w.exchanges[drop]; e != w.last && e != w.report.binaryRead {
				w.exchanges = append(w.exchanges[:drop], w.exchanges[drop+1:]...)
				w.omitted++
				break
			}
		}
	}
	w.exchanges = append(w.exchanges, x)
}

// responseUnderTest is the response the assertion steps check: the last one a request step received.
// A 429 is no answer to judge (World.throttledAnswer).
func (w *World) responseUnderTest() (*check.Exchange, error) {
	if w.last == nil {
		return nil, fmt.Errorf("no response yet: a step that sends a request must come before this one")
	}
	if err := w.throttledAnswer(w.last); err != nil {
		return nil, err
	}
	return w.last, nil
}

// poller is the world's Poller for one job.
func (w *World) poller(subject string) check.Poller {
	return check.Poller{MaxWait: w.target.MaxWait, RequestTimeout: w.target.RequestTimeout, Log: w.target.Log, Live: w.target.LiveProgress, Subject: subject}
}

// optionalOutcomeBody holds a success's body to BDA2's "Optionally, a FHIR OperationOutcome resource in the
// body in JSON format" (the kick-off's and the DELETE's "Response - Success") as a SHOULD of requirement req
// (its scenario's when ""): a body that is there and no OperationOutcome is a warning, which STRICT=1 fails in
// a scenario of req, and never fails a requirement of severity MAY. Not a MUST: the IG words it without a
// SHALL, where the same sections' error status says "The body SHALL be a FHIR OperationOutcome resource";
// SMART's Bulk Data Tester fails it (README, "SMART's Bulk Data Tester, read against the verdicts").
func (w *World) optionalOutcomeBody(req string, x *check.Exchange) error {
	err := check.CheckOptionalOutcomeBody(req, x)
	var v *check.Violation
	if !errors.As(err, &v) {
		return err
	}
	id := cmp.Or(req, w.primaryRequirement())
	if w.target.Strict && w.severity(id) != features.May && slices.Contains(w.scenarioReqs, id) {
		return err
	}
	w.recordWarning(Finding{Scenario: w.scenario, Requirement: id, Message: fmt.Sprintf("%s: expected %s, got %s (a SHOULD%s)", v.Subject, v.Expected, v.Got, w.strictElsewhere(id))})
	return nil
}
