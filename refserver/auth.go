package refserver

import (
	"net/http"
	"strings"
)

// userHandler is a handler that runs for an authenticated user.
type userHandler func(w http.ResponseWriter, r *http.Request, u User)

// authed wraps h so that it runs only with a valid "Authorization: Bearer
// <token>" of a configured user; otherwise it answers 401 with an
// OperationOutcome (code login) and "WWW-Authenticate: Bearer", or 400 (code
// invalid) to a request with more than one Authorization header.
func (s *Server) authed(h userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values("Authorization")) > 1 {
			// Two credentials, perhaps of two users: no guess which one acts (RFC 6750 §3.1, invalid_request:
			// "uses more than one method for including an access token, or is otherwise malformed").
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_request"`)
			writeError(w, http.StatusBadRequest, codeInvalid, "The request has more than one Authorization header; send one: Authorization: Bearer <token>")
			return
		}
		u, ok := s.userFor(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, codeLogin, "Missing or invalid bearer token")
			return
		}
		h(w, r, u)
	}
}

// userFor is the user of the request's one Authorization header; none with several.
func (s *Server) userFor(r *http.Request) (User, bool) {
	if len(r.Header.Values("Authorization")) != 1 {
		return User{}, false
	}
	auth := r.Header.Get("Authorization")
	scheme, token, found := strings.Cut(auth, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return User{}, false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return User{}, false
	}
	if u, ok := s.users[token]; ok {
		return u, true
	}
	return s.userForIssuedToken(token)
}
