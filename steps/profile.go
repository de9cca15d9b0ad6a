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

// checkProfileAnswer holds x to one row of features/PROFILES.md in the run's profile. An answer the profile
// accepts as a known deviation passes and is reported as one.
func (w *World) checkProfileAnswer(behaviour string, x *check.Exchange) error {
	b, ok := w.profiles.Behaviour[behaviour]
	if !ok {
		return fmt.Errorf("behaviour %q is not a row of features/PROFILES.md", behaviour)
	}
	answers := b.Answers[w.target.Profile]
	if answers == nil {
		fmt.Fprintf(w.target.Log, "  %s: not checked in profile %s (answered %d)\n", behaviour, w.target.Profile, x.Status)
		return nil
	}
	var texts, mismatches []string
	for _, a := range answers {
		texts = append(texts, a.Text)
		err := w.matchAnswer(a, x)
		if err == nil {
			if a.KnownDeviation {
				w.knownDeviation(b.Requirement, fmt.Sprintf("%s: %s %s answered %q, a known deviation accepted by profile %s", behaviour, x.Method, x.URL, a.Text, w.target.Profile))
			}
			return nil
		}
		mismatches = append(mismatches, err.Error())
	}
	return check.Violationf(b.Requirement, fmt.Sprintf("answer of %s %s (%q in profile %s)", x.Method, x.URL, behaviour, w.target.Profile),
		strings.Join(texts, " or "), "%s", strings.Join(mismatches, "; "))
}

func (w *World) matchAnswer(a features.Answer, x *check.Exchange) error {
	if x.Status != a.Status {
		return fmt.Errorf("status %s", check.StatusPhrase(x.Status))
	}
	if a.XProgress && strings.TrimSpace(x.Header.Get("X-Progress")) == "" {
		return fmt.Errorf("no X-Progress header")
	}
	if a.OperationOutcome {
		if err := w.checkOutcome("", x); err != nil {
			var v *check.Violation
			if errors.As(err, &v) {
				return fmt.Errorf("%s %s", v.Subject, v.Got)
			}
			return err
		}
	}
	return nil
}

// profileAccepts tells whether the profile accepts status for behaviour at all, for judging polls.
func (w *World) profileAccepts(behaviour string, status int) bool {
	answers := w.profiles.Behaviour[behaviour].Answers[w.target.Profile]
	if answers == nil {
		return true
	}
	for _, a := range answers {
		if a.Status == status {
			return true
		}
	}
	return false
}

// definesFUTPollOperation tells the profiles whose sources define FUT's operation [base]/$export-poll-status
// with its _jobId parameter (FUT's OperationDefinition -s-export-poll-status): fut and hapi-8.0. The HL7 IG
// (bulkdata) defines no polling URL but the one the kick-off returns, so the harness builds none there.
func definesFUTPollOperation(profile string) bool { return profile != "bulkdata" }

// kickoffMethod is the kick-off a scenario that needs an export sends: the form its profile requires of every
// server. FUT documents POST with a Parameters body (HAPI serves GET too); the HL7 IG requires GET and makes
// POST optional (EXP-KICKOFF-POST is MAY in bulkdata).
func kickoffMethod(profile string) string {
	if profile == "bulkdata" {
		return http.MethodGet
	}
	return http.MethodPost
}
