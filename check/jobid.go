package check

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"strings"
)

// ErrNoJobID says that the job id of a polling location could not be told apart from the rest of it, so that
// a location of a job that does not exist cannot be derived from it without guessing.
var ErrNoJobID = errors.New("cannot tell the job id in the polling location")

// UnknownJobURL derives, from the polling location location that a server returned, the polling location of
// a job that cannot exist. The HL7 IG defines no polling URL but the Content-Location the server hands out,
// and no form of the job id in it: servers put it in a path segment ([base]/bulkstatus/<id>,
// .../_operations/export/<n>) or in a query parameter of any name (FUT's _jobId, IBM's and OpenEMR's job).
// So the id is found by comparison, not by its name or place: other is the polling location of another
// kick-off, and the one path segment or query value in which the two differ is the job id. The result is
// location with that part replaced (newJobID) and every other byte kept.
//
// When the two differ in no part, in more than one, or in their structure, nothing tells which part is the
// id, and the error wraps ErrNoJobID. With no other location (other ""), the one form recognised is the one
// FUT and HAPI document: a single _jobId query parameter.
func UnknownJobURL(location, other string) (string, error) {
	own, err := parsePollingURL(location)
	if err != nil {
		return "", err
	}
	if other == "" {
		return own.withFUTJobID()
	}
	them, err := parsePollingURL(other)
	if err != nil {
		return "", err
	}
	diff, err := own.differingPart(them)
	if err != nil {
		return "", err
	}
	id, err := newJobID(own.value(diff), them.value(diff))
	if err != nil {
		return "", err
	}
	return own.with(diff, id), nil
}

// pollingURL is a polling location cut into the parts a job id can be: the segments of its escaped path and
// the raw values of its query, in order, so that a rewrite changes one of them and keeps the rest as the
// server wrote it.
type pollingURL struct {
	raw      string
	u        *url.URL
	segments []string
	query    []queryPair
}

type queryPair struct {
	name, value string
	bare        bool // a parameter without '=': name alone
}

// part is one path segment (query false) or one query value (query true), by index.
type part struct {
	query bool
	i     int
}

func parsePollingURL(location string) (pollingURL, error) {
	u, err := url.Parse(location)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return pollingURL{}, fmt.Errorf("polling location %q: not an absolute URL", location)
	}
	p := pollingURL{raw: location, u: u, segments: strings.Split(u.EscapedPath(), "/")}
	if u.RawQuery != "" {
		for _, pair := range strings.Split(u.RawQuery, "&") {
			name, value, eq := strings.Cut(pair, "=")
			p.query = append(p.query, queryPair{name: name, value: value, bare: !eq})
		}
	}
	return p, nil
}

// differingPart is the one part in which p and q differ, provided they share everything else: origin,
// number of path segments, query parameter names and their order.
func (p pollingURL) differingPart(q pollingURL) (part, error) {
	noID := func(format string, args ...any) (part, error) {
		return part{}, fmt.Errorf("%w: the polling locations of two kick-offs, %s and %s, %s", ErrNoJobID, p.raw, q.raw, fmt.Sprintf(format, args...))
	}
	switch {
	case !strings.EqualFold(p.u.Scheme, q.u.Scheme) || !strings.EqualFold(p.u.Host, q.u.Host) || p.u.User.String() != q.u.User.String():
		return noID("are on different origins")
	case len(p.segments) != len(q.segments):
		return noID("have paths of %d and %d segments", len(p.segments)-1, len(q.segments)-1)
	case len(p.query) != len(q.query):
		return noID("have %d and %d query parameters", len(p.query), len(q.query))
	}
	var diffs []part
	var where []string
	for i := range p.segments {
		if p.segments[i] != q.segments[i] {
			diffs = append(diffs, part{i: i})
			where = append(where, fmt.Sprintf("path segment %d (%q, %q)", i, p.segments[i], q.segments[i]))
		}
	}
	for i := range p.query {
		a, b := p.query[i], q.query[i]
		if a.name != b.name || a.bare != b.bare {
			return noID("differ in the names or the order of their query parameters (%q, %q)", a.name, b.name)
		}
		if a.value != b.value {
			diffs = append(diffs, part{query: true, i: i})
			where = append(where, fmt.Sprintf("query parameter %s (%q, %q)", a.name, a.value, b.value))
		}
	}
	switch {
	case len(diffs) == 0:
		return noID("are the same: the server gave both kick-offs one job")
	case len(diffs) > 1:
		return noID("differ in %d places, %s, not in one job id", len(diffs), strings.Join(where, " and "))
	case p.value(diffs[0]) == "" || q.value(diffs[0]) == "":
		return noID("differ in %s, where one of them is empty", where[0])
	}
	return diffs[0], nil
}

// value is the decoded text of part d.
func (p pollingURL) value(d part) string {
	if d.query {
		v, err := url.QueryUnescape(p.query[d.i].value)
		if err != nil {
			return p.query[d.i].value
		}
		return v
	}
	v, err := url.PathUnescape(p.segments[d.i])
	if err != nil {
		return p.segments[d.i]
	}
	return v
}

// with is p with part d replaced by id, which needs no escaping (newJobID, otherID).
func (p pollingURL) with(d part, id string) string {
	u := *p.u
	if d.query {
		pairs := make([]string, len(p.query))
		for i, qp := range p.query {
			switch {
			case i == d.i:
				pairs[i] = qp.name + "=" + id
			case qp.bare:
				pairs[i] = qp.name
			default:
				pairs[i] = qp.name + "=" + qp.value
			}
		}
		u.RawQuery = strings.Join(pairs, "&")
		return u.String()
	}
	segments := append([]string(nil), p.segments...)
	segments[d.i] = id
	escaped := strings.Join(segments, "/")
	if path, err := url.PathUnescape(escaped); err == nil {
		u.Path, u.RawPath = path, escaped
	}
	return u.String()
}

// withFUTJobID replaces the value of the single _jobId query parameter, FUT's and HAPI's documented form
// ($export-poll-status?_jobId=<id>), the one form a location read alone is known to have.
func (p pollingURL) withFUTJobID() (string, error) {
	found := -1
	for i, qp := range p.query {
		if qp.name != "_jobId" {
			continue
		}
		if found >= 0 {
			found = -2
			break
		}
		found = i
	}
	d := part{query: true, i: found}
	if found < 0 || p.value(d) == "" {
		return "", fmt.Errorf("%w: %s is the only polling location the run has, and it carries no single _jobId query parameter (FUT's and HAPI's form); any other form is told only by comparing two kick-offs' locations", ErrNoJobID, p.raw)
	}
	return p.with(d, otherID(p.value(d))), nil
}

// newJobID is an id of the shape of a and b, the job ids of two kick-offs, that cannot be a job's. A UUID
// becomes a random UUID. A number becomes one six digits longer than the longer of the two (its first digit
// not 0), more than a hundred thousand times the larger, so that a server numbering its jobs in sequence does
// not reach it in a run. Anything else becomes a random string of the character classes a and b are made of (digits,
// hexadecimal or all lower-case letters, the same in upper case), four characters longer than the longer of
// them: a server whose ids have one length cannot have issued it.
func newJobID(a, b string) (string, error) {
	n := max(len(a), len(b))
	switch {
	case uuidRE.MatchString(a) && uuidRE.MatchString(b):
		for {
			if id := NewUUID(); !strings.EqualFold(id, a) && !strings.EqualFold(id, b) {
				return id, nil
			}
		}
	case allDigits(a) && allDigits(b):
		return string(pick("123456789")) + randomString("0123456789", n+5), nil
	}
	alphabet := alphabetOf(a + b)
	if alphabet == "" {
		return "", fmt.Errorf("%w: the job ids %q and %q hold no letter or digit to make another id of", ErrNoJobID, a, b)
	}
	return randomString(alphabet, n+4), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// alphabetOf is the letters and digits of the classes s draws on: hexadecimal letters alone stay
// hexadecimal, any other letter of a case brings in the whole alphabet of that case.
func alphabetOf(s string) string {
	var digits, hexLower, lower, hexUpper, upper bool
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			digits = true
		case 'a' <= c && c <= 'f':
			hexLower = true
		case 'g' <= c && c <= 'z':
			lower = true
		case 'A' <= c && c <= 'F':
			hexUpper = true
		case 'G' <= c && c <= 'Z':
			upper = true
		}
	}
	var set strings.Builder
	if digits {
		set.WriteString("0123456789")
	}
	switch {
	case lower:
		set.WriteString("abcdefghijklmnopqrstuvwxyz")
	case hexLower:
		set.WriteString("abcdef")
	}
	switch {
	case upper:
		set.WriteString("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	case hexUpper:
		set.WriteString("ABCDEF")
	}
	return set.String()
}

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = pick(alphabet)
	}
	return string(b)
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// otherID is a random id of id's shape, never id itself: a UUID for a UUID, else the same length and the
// class of each character (digit, hex letter, other letter of the same case), so that a server that checks an
// id's form still looks it up. Used on FUT's _jobId alone, whose form a single location shows.
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
