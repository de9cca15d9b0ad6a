package check

import (
	"cmp"
	"crypto/rand"
	"fmt"
	"maps"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// UnknownJobURL derives, from a polling location a server returned, the polling location of a job that
// cannot exist: the job identifier in it replaced by a fresh one of the same shape. The HL7 IG defines no
// polling URL but the Content-Location the server hands out, so a request for an unknown job is that URL
// with another id, never a URL the harness builds.
//
// The job identifier is the value of a query parameter whose name holds "id" (FUT's _jobId), else the last
// path segment ([base]/bulkstatus/<id>). A UUID is replaced by a random version-4 UUID; any other id keeps
// its length and the class of each character (digit, hex letter, other letter of the same case), so that a
// server that checks the id's form still looks it up.
func UnknownJobURL(location string) (string, error) {
	u, err := url.Parse(location)
	if err != nil || !u.IsAbs() {
		return "", fmt.Errorf("polling location %q: not an absolute URL", location)
	}
	q := u.Query()
	for _, name := range queryNames(q) {
		if strings.Contains(strings.ToLower(name), "id") && len(q[name]) == 1 && q[name][0] != "" {
			q.Set(name, otherID(q[name][0]))
			u.RawQuery = q.Encode()
			return u.String(), nil
		}
	}
	path := strings.TrimRight(u.Path, "/")
	i := strings.LastIndex(path, "/")
	if i < 0 || path[i+1:] == "" {
		return "", fmt.Errorf("polling location %q: no job identifier (no id query parameter, no last path segment)", location)
	}
	u.Path, u.RawPath = path[:i+1]+otherID(path[i+1:]), ""
	return u.String(), nil
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// otherID is a random id of id's shape, never id itself.
func otherID(id string) string {
	for {
		var other string
		if uuidRE.MatchString(id) {
			other = NewUUID()
		} else {
			b := []byte(id)
			for i, c := range b {
				b[i] = sameClass(c)
			}
			other = string(b)
		}
		if other != id {
			return other
		}
	}
}

func sameClass(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return pick("0123456789")
	case 'a' <= c && c <= 'f':
		return pick("abcdef")
	case 'A' <= c && c <= 'F':
		return pick("ABCDEF")
	case 'a' <= c && c <= 'z':
		return pick("abcdefghijklmnopqrstuvwxyz")
	case 'A' <= c && c <= 'Z':
		return pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	}
	return c
}

func pick(set string) byte {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	return set[n.Int64()]
}

// NewUUID is a random version-4 UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// queryNames are q's parameter names, FUT's _jobId first, then in order.
func queryNames(q url.Values) []string {
	names := slices.Sorted(maps.Keys(q))
	first := func(n string) int {
		if n == "_jobId" {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(names, func(a, b string) int { return cmp.Compare(first(a), first(b)) })
	return names
}
