package refserver

import "fmt"

// maxJobIDLen bounds a _jobId: the server's own ids are 36-character UUIDs.
const maxJobIDLen = 64

// validJobID reports whether id could be a job id at all: 1 to 64 characters of [A-Za-z0-9._-]. Anything
// else is a malformed request (400), not an unknown job (404).
func validJobID(id string) bool {
	if id == "" || len(id) > maxJobIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// invalidJobIDMessage says what is wrong with a _jobId without echoing more than a short, quoted prefix of it.
func invalidJobIDMessage(id string) string {
	shown := id
	if len(shown) > 40 {
		shown = shown[:40] + "..."
	}
	return fmt.Sprintf("_jobId %q is not a valid job id: expected 1 to %d characters of A-Z, a-z, 0-9, '-', '_' or '.'", shown, maxJobIDLen)
}
