package check

import (
	"errors"
	"fmt"
)

// ErrNonConformant classifies every failure that is the server's deviation from a requirement, as opposed to
// a failure to reach it or a harness error: errors.Is(err, ErrNonConformant).
var ErrNonConformant = errors.New("non-conformant")

// ErrTransport marks a request that got no complete HTTP response (connection refused or reset, DNS, TLS,
// REQUEST_TIMEOUT): the run could not check the requirement, so no requirement is charged with it.
var ErrTransport = errors.New("transport error, no complete HTTP response")

// ErrCredentialExpired marks a 401 to a token that had expired, by its own exp claim, when the request was
// sent: the server refused what it should refuse, and the run could not check the requirement.
var ErrCredentialExpired = errors.New("the token had expired when the request was sent")

// ErrTokenWithheld marks a 401 or 403 to a request the harness sent without the user's token because the
// request's origin is not one it trusts (a polling location on another origin than the service's; BDA2 lets
// a server hand out any absolute URL): the server refused what it must not show an unauthenticated caller,
// so the run could not check the requirement. TRUSTED_ORIGINS sends the token there.
var ErrTokenWithheld = errors.New("the token was withheld from an origin the run does not trust")

// ErrMaxBody marks an answer larger than MAX_BODY, the run's bound on an answer it reads whole: no source
// limits an answer's size (a manifest of many thousands of files is megabytes), so the run could not check
// the requirement, and no requirement is charged with it.
var ErrMaxBody = errors.New("answer larger than MAX_BODY")

// Violation is one deviation from one requirement.
type Violation struct {
	// Requirement is the ID of the requirement broken; empty means "the scenario's own requirement", filled in
	// by the step bindings from the scenario's tags.
	Requirement string
	Subject     string // what was checked, e.g. "header X-Progress"
	Expected    string
	Got         string
}

func (v *Violation) Error() string {
	msg := fmt.Sprintf("%s: expected %s, got %s", v.Subject, v.Expected, v.Got)
	if v.Requirement != "" {
		msg = v.Requirement + ": " + msg
	}
	return msg
}

func (v *Violation) Unwrap() error { return ErrNonConformant }

// Violationf is the assertion constructor of the checks; req may be "" for the scenario's requirement, and
// got is a format for args when there are any.
func Violationf(req, subject, expected, got string, args ...any) *Violation {
	if len(args) > 0 {
		got = fmt.Sprintf(got, args...)
	}
	return &Violation{Requirement: req, Subject: subject, Expected: expected, Got: got}
}
