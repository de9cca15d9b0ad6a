package steps

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/ehealth-dk/fut-conformance/check"
)

// requestsStatusWithoutToken sends the status request of the scenario's export, a GET of its polling location,
// with no credential (EXP-POLL-TOKEN), then the same request as its owner, user, with the token, for the Then
// step to compare. The first goes as no user, so without an Authorization header in every authentication mode
// (a static token, OAuth2 client credentials, SMART Backend Services: World.requestOnce adds the token, and
// only for a user), without the user info a URL may carry (Go's client would send it as Basic credentials),
// and without cookies (the run's client keeps none). A client certificate (CLIENT_CERT) is the TLS
// connection's, not the request's, and is still presented: the check is of the token. Only GETs: BDA2
// protects the Status Request as the kick-off, and names no Delete Request there; a DELETE is never sent
// without a token.
//
// A run that sends no token for the export's owner (authentication mode none) has no protection for the
// status request to match: the scenario is not applicable there, before any request of its own.
func (w *World) requestsStatusWithoutToken(ctx context.Context, user string) error {
	target, err := w.pollURL()
	if err != nil {
		return err
	}
	if user != w.export.owner {
		return fmt.Errorf("user %s does not own the export (user %s does): the owner's status request is the one compared", user, w.export.owner)
	}
	if src, ok := w.target.Credentials[user]; ok && src == nil {
		return w.notApplicableHere(fmt.Sprintf("the run sends no token for user %s (no TOKEN, no CLIENT_ID: authentication mode none), so a status request without one has no protection to match", user))
	}
	if _, err := w.token(user); err != nil { // no credentials for the owner at all: the owner's skip
		return err
	}
	w.export.tokenless, w.export.ownPoll = nil, nil
	if u, err := url.Parse(target); err == nil && u.User != nil {
		u.User = nil
		fmt.Fprintf(w.target.Log, "  the status request without a token goes to %s: the user info of the polling location is left out\n", w.text(u.Redacted()))
		target = u.String()
	}
	x, err := w.request(ctx, "", http.MethodGet, target, http.Header{"Accept": {"application/json"}}, nil)
	if x != nil {
		w.last = x
	}
	if err != nil {
		return err
	}
	if len(x.RequestHeader.Values("Authorization")) > 0 {
		return fmt.Errorf("harness error: the status request meant to go without a token carried an Authorization header")
	}
	own, err := w.pollOnce(ctx, user)
	if err != nil {
		return err
	}
	w.export.tokenless, w.export.ownPoll, w.last = x, own, x // the answer without a token is the one under test
	return nil
}

// statusWithoutTokenRefused judges the status request sent without a token (EXP-POLL-TOKEN): any 4xx refuses
// it (401, 403, or a 404 that hides the job from a caller without credentials); a 2xx, 3xx or 5xx fails. A 429
// past MAX_WAIT neither refused nor served it: skipped, saying so. A refusal shows the token protects the
// location only if the owner's own status request, with the token, was answered (202 or 200): otherwise the
// location answers no one, and the scenario is skipped, naming the owner's answer, whose own requirements
// (EXP-POLL-202, EXP-POLL-200) judge it elsewhere.
func (w *World) statusWithoutTokenRefused(_ context.Context, user string) error {
	x, own := w.export.tokenless, w.export.ownPoll
	if x == nil || own == nil {
		return fmt.Errorf("no status request was sent without a token: the step that sends it must come first")
	}
	if user != w.export.owner {
		return fmt.Errorf("user %s does not own the export (user %s does): the owner's status request is the one compared", user, w.export.owner)
	}
	w.last = x
	subject := fmt.Sprintf("answer to the status request GET %s sent without a token (no Authorization header%s)", x.URL, w.clientCertificateNote(x.URL))
	switch {
	case x.Status == http.StatusTooManyRequests:
		return w.skip(fmt.Sprintf("the status request without a token was answered %s for as long as MAX_WAIT allowed: throttled, neither refused nor served", check.StatusPhrase(x.Status)))
	case x.Status < 400 || x.Status > 499:
		return check.Violationf("", subject,
			"refused with a 4xx (401, 403, or a 404 that hides the job): the status request is protected the same way as the kick-off, which needs the token",
			tokenlessAnswer(x))
	case own.Status != http.StatusAccepted && own.Status != http.StatusOK:
		w.last = own
		return w.skip(fmt.Sprintf("user %s's own status request of %s, with the token, answered %s: the polling location answers no one, so its %s to the request without a token shows nothing of the token",
			user, x.URL, check.StatusPhrase(own.Status), check.StatusPhrase(x.Status)))
	}
	return nil
}

// tokenlessAnswer describes what a status request without a token got, for a failure: what a 2xx gave away.
func tokenlessAnswer(x *check.Exchange) string {
	got := check.StatusPhrase(x.Status)
	switch {
	case x.Status == http.StatusOK && check.HasManifest(x.Body):
		got += " and the export's manifest (the URLs of its files) to a caller without credentials"
	case x.Status >= 200 && x.Status < 300:
		got += ": the export's status, to a caller without credentials"
	case x.Status >= 500:
		got += ": a server error, not a refusal"
	}
	if x.Redirected != "" {
		got += " (after a redirect, answered by " + x.Redirected + ")"
	}
	return got
}

// clientCertificateNote says, for a request to an https URL, that the connection presented the run's client
// certificate (CLIENT_CERT): mutual TLS is the connection's, kept on a request without a token.
func (w *World) clientCertificateNote(target string) string {
	if !strings.HasPrefix(strings.ToLower(target), "https:") {
		return ""
	}
	tr, ok := w.target.HTTPClient.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || (len(tr.TLSClientConfig.Certificates) == 0 && tr.TLSClientConfig.GetClientCertificate == nil) {
		return ""
	}
	return "; the TLS connection presented the run's client certificate, CLIENT_CERT, which is the connection's, not the request's"
}
