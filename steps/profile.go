package steps

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/features"
)

// DefaultProfile is FUT as served by HAPI FHIR ≥ 8.6.
const DefaultProfile = "fut"

// responseIsProfileAnswer checks the last response against what the run's profile accepts for behaviour.
func (w *World) responseIsProfileAnswer(x *check.Exchange, behaviour string) error {
	return w.checkProfileAnswer(behaviour, x)
}

// responseIsProfileAnswerUnlessDeleteRefused judges an answer that follows the owner's DELETE (BDA2: "Following
// the delete request, [...] the server SHALL return a 404 Not Found"), but only after a DELETE the server
// accepted: one it refused with its error status left the export as it was, and its polling location owes
// nothing the DELETE would have changed.
func (w *World) responseIsProfileAnswerUnlessDeleteRefused(x *check.Exchange, behaviour string) error {
	if d := w.export.deleteStatus; d >= 300 && w.profiles.Behaviour[behaviour].Answers[w.target.Profile] != nil {
		fmt.Fprintf(w.target.Log, "  %s: not judged: the DELETE was refused (%d)\n", behaviour, d)
		return nil
	}
	return w.checkProfileAnswer(behaviour, x)
}

// checkProfileAnswer holds x to one row of features/PROFILES.md in the run's profile. An answer the profile
// accepts as a known deviation passes and is reported as one. An answer that lacks only what the profile
// expects without requiring it (an OperationOutcome that SHOULD be there) passes with a warning, unless
// another of the profile's answers matches whole; under STRICT it fails.
func (w *World) checkProfileAnswer(behaviour string, x *check.Exchange) error {
	b, ok := w.profiles.Behaviour[behaviour]
	if !ok {
		return fmt.Errorf("behaviour %q is not a row of features/PROFILES.md", behaviour)
	}
	if err := w.throttledAnswer(x); err != nil {
		return err
	}
	answers := b.Answers[w.target.Profile]
	if answers == nil {
		fmt.Fprintf(w.target.Log, "  %s: not checked in profile %s (answered %d)\n", behaviour, w.target.Profile, x.Status)
		return nil
	}
	var texts, mismatches []string
	var short *features.Answer // the first answer matched but for what it only expects
	shortfall := ""
	for _, a := range answers {
		texts = append(texts, a.Text)
		lacks, err := w.matchAnswer(a, x)
		switch {
		case err != nil:
			mismatches = append(mismatches, err.Error())
			continue
		case lacks != "" && w.target.Strict:
			mismatches = append(mismatches, lacks+" (a SHOULD of the profile, failed under STRICT)")
			continue
		case lacks != "":
			if short == nil {
				short, shortfall = &a, lacks
			}
			continue
		}
		w.acceptedAnswer(b, a, x)
		return nil
	}
	if short != nil {
		w.recordWarning(Finding{Scenario: w.scenario, Requirement: b.Requirement, Message: fmt.Sprintf("%s: %s %s answered %s with %s; profile %s expects %q",
			behaviour, x.Method, x.URL, check.StatusPhrase(x.Status), shortfall, w.target.Profile, short.Text)})
		w.acceptedAnswer(b, *short, x)
		return nil
	}
	return check.Violationf(b.Requirement, fmt.Sprintf("answer of %s %s (%q in profile %s)", x.Method, x.URL, behaviour, w.target.Profile),
		strings.Join(texts, " or "), "%s", strings.Join(mismatches, "; "))
}

func (w *World) acceptedAnswer(b features.Behaviour, a features.Answer, x *check.Exchange) {
	if a.KnownDeviation {
		w.knownDeviation(b.Requirement, fmt.Sprintf("%s: %s %s answered %q, a known deviation accepted by profile %s", b.Name, x.Method, x.URL, a.Text, w.target.Profile))
	}
}

// matchAnswer says why x is not answer a (err), or, when it is, what x lacks of what a only expects (lacks).
func (w *World) matchAnswer(a features.Answer, x *check.Exchange) (lacks string, err error) {
	if !a.Accepts(x.Status) {
		return "", fmt.Errorf("status %s", check.StatusPhrase(x.Status))
	}
	if a.XProgress && strings.TrimSpace(x.Header.Get("X-Progress")) == "" {
		return "", fmt.Errorf("no X-Progress header")
	}
	// A success whose OperationOutcome says the action failed (FHIR R4 IssueSeverity error, fatal) is no
	// success: a 202 to a DELETE that says the job could not be cancelled is not FUT's "the export job will be
	// cancelled and a '202 Accepted' is returned with an operation outcome response" (HAPI's: information).
	if x.Status >= 200 && x.Status < 300 {
		if oo, ok := check.ParseOutcome(x.Body); ok {
			if sev, text, failed := oo.FailureIssue(); failed {
				return "", fmt.Errorf("status %s with an OperationOutcome of severity %s (%q), which says the action failed", check.StatusPhrase(x.Status), sev, text)
			}
		}
	}
	// BDA2 "Bulk Data Delete Request", "Response - Success": a 202 and "Optionally a FHIR OperationOutcome
	// resource in the body in JSON format": a cell that does not require one still expects a body that is
	// there to be one. A SHOULD (a warning; STRICT=1 fails it): the section's error status says "The body
	// SHALL be a FHIR OperationOutcome", its success no SHALL (optionalOutcomeBody).
	if x.Method == http.MethodDelete && x.Status >= 200 && x.Status < 300 && !a.OperationOutcome {
		if err := check.CheckOptionalOutcomeBody("", x); err != nil {
			var v *check.Violation
			if errors.As(err, &v) {
				return fmt.Sprintf("%s, where %s expected", v.Got, v.Expected), nil
			}
			return "", err
		}
	}
	if a.OperationOutcome || a.OperationOutcomeExpected {
		if err := w.checkOutcome("", x); err != nil {
			var v *check.Violation
			if errors.As(err, &v) {
				err = fmt.Errorf("%s %s", v.Subject, v.Got)
			}
			if a.OperationOutcome {
				return "", err
			}
			if _, ok := check.ParseOutcome(x.Body); ok { // one is there, but not as the IG has it (its media type)
				return "an OperationOutcome not as expected: " + err.Error(), nil
			}
			return "no OperationOutcome: " + err.Error(), nil
		}
	}
	return "", nil
}

// profileAccepts tells whether the profile accepts status for behaviour at all, for judging polls.
func (w *World) profileAccepts(behaviour string, status int) bool {
	answers := w.profiles.Behaviour[behaviour].Answers[w.target.Profile]
	if answers == nil {
		return true
	}
	for _, a := range answers {
		if a.Accepts(status) {
			return true
		}
	}
	return false
}

// definesFUTPollOperation tells the profiles whose sources define FUT's operation [base]/$export-poll-status
// with its _jobId parameter (FUT's OperationDefinition -s-export-poll-status): fut and hapi-8.0. The HL7 IG
// (bulkdata) defines no polling URL but the one the kick-off returns, so the harness builds none there.
func definesFUTPollOperation(profile string) bool { return profile != "bulkdata" }

// servesFUTBinaries tells the profiles whose sources give the export's files the exporting user's security
// context (FUT-OD-EXPORT "Retrieving exported files": Binary resources that "can therefore only be retrieved by
// the same user", HAPI's manifest always requiresAccessToken true): fut and hapi-8.0. The HL7 IG lets a file
// server use another access-control scheme (requiresAccessToken false).
func servesFUTBinaries(profile string) bool { return profile != "bulkdata" }

// kickoffMethod is the kick-off a scenario that needs an export sends: the form its profile requires of every
// server. FUT documents POST with a Parameters body (HAPI serves GET too); the HL7 IG requires GET and makes
// POST optional (EXP-KICKOFF-POST is MAY in bulkdata).
func kickoffMethod(profile string) string {
	if profile == "bulkdata" {
		return http.MethodGet
	}
	return http.MethodPost
}
