package refserver

import (
	"net/http"
	"strings"
)

// userHandler is a handler that runs for an authenticated user.
type userHandler func(w http.ResponseWriter, r *http.Request, u User)

// authed wraps h so that it runs only with a valid "Authorization: Bearer
// <token>" of a configured user; otherwise it answers 401 with an
// OperationOutcome (code login) and "WWW-Authenticate: Bearer".
func (s *Server) authed(h userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.userFor(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, codeLogin, "Missing or invalid bearer token")
			return
		}
		h(w, r, u)
	}
}

func (s *Server) userFor(r *http.Request) (User, bool) {
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
