package check

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// validJSON is json.Valid, two to five times faster on FHIR's string-heavy lines. It accepts exactly what
// json.Valid accepts (FuzzValidJSON holds the two together), nesting included.
func validJSON(b []byte) bool {
	_, _, ok := resourceJSON(b, new(jsonScan))
	return ok
}

// maxJSONDepth is encoding/json's limit on nesting.
const maxJSONDepth = 10000

var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jsonScan is resourceJSON's state that its loop seldom touches, kept out of the loop's registers: Go spills
// what is live at each label of the loop, and the fewer values live there, the fewer loads and stores each
// token costs. The caller keeps one and reuses it from line to line.
type jsonScan struct {
	stops
	objects [4]uint64 // bit d of the first 256 levels: level d is an object
	deeper  []bool    // the levels from 256 on
	rtSeen  int       // the top-level "resourceType" members read
	rtStart int       // the last one's value, b[rtStart:rtEnd], when it is a plain string; -1 when it is not
	rtEnd   int
}

func (s *jsonScan) isObject(d int) bool {
	if d < 256 {
		return s.objects[d>>6]&(1<<(d&63)) != 0
	}
	return s.deeper[d-256]
}

// closer is the byte that closes level d: '}' for an object, ']' for an array.
func (s *jsonScan) closer(d int) byte {
	if d < 256 {
		return ']' | byte(s.objects[d>>6]>>(d&63)&1)<<5
	}
	if s.deeper[d-256] {
		return '}'
	}
	return ']'
}

func (s *jsonScan) open(d int, object bool) {
	if d < 256 {
		if object {
			s.objects[d>>6] |= 1 << (d & 63)
		} else {
			s.objects[d>>6] &^= 1 << (d & 63)
		}
		return
	}
	if d-256 < len(s.deeper) {
		s.deeper[d-256] = object
	} else {
		s.deeper = append(s.deeper, object)
	}
}

// typed notes the value of a top-level "resourceType": the string b[start:end] with its quotes, or, with
// start -1, a value that is no string.
func (s *jsonScan) typed(b []byte, start, end int) {
	s.rtSeen++
	s.rtStart = -1
	if start >= 0 && bytes.IndexByte(b[start+1:end-1], '\\') < 0 {
		s.rtStart, s.rtEnd = start+1, end-1
	}
}

// resourceJSON validates b as validJSON does and, in the same pass, finds the top-level "resourceType": its
// value when it is a string without escapes that occurs once at the top level (known is false otherwise,
// for the caller to decode). One pass over each output line, instead of a validation and a search. It is
// written for speed, on what output lines mostly are, compact and made of short strings:
//   - one loop with an explicit stack of the open containers (a bit per level, set for an object), instead
//     of a call per value;
//   - a string's end found in the stop marks (stops), not byte by byte;
//   - white space looked for only where the expected byte is not there;
//   - only the position and the depth live in registers across tokens (jsonScan).
func resourceJSON(b []byte, s *jsonScan) (resourceType []byte, known, valid bool) {
	s.reset(b)
	s.rtSeen = 0
	n, i, depth := len(b), 0, 0
	isType := false // the value about to be read is the top-level "resourceType"'s
value:
	if i >= n {
		return nil, false, false
	}
	switch c := b[i]; {
	case c == '"':
		start := i
		var j int
		if rel := uint(i + 1 - s.block); rel < 64 && s.marks>>rel != 0 {
			j = i + 1 + bits.TrailingZeros64(s.marks>>rel)
		} else {
			j = s.from(i + 1)
		}
		if j < n && b[j] == '"' {
			i = j + 1
		} else if i = stringRest(b, j); i < 0 {
			return nil, false, false
		}
		if isType {
			isType = false
			s.typed(b, start, i)
		}
		goto next
	case c == '{' || c == '[':
		if depth++; depth > maxJSONDepth {
			return nil, false, false
		}
		s.open(depth, c == '{')
		if isType {
			isType = false
			s.typed(b, -1, -1)
		}
		i = skipSpace(b, i+1)
		if i < n && b[i] == c+2 { // empty: '}' is '{'+2, ']' is '['+2
			depth--
			i++
			goto next
		}
		if c == '{' {
			goto key
		}
		goto value
	case c == '-' || c >= '0' && c <= '9':
		if i = numberEnd(b, i); i < 0 {
			return nil, false, false
		}
	case c == 't' && n-i >= 4 && string(b[i:i+4]) == "true",
		c == 'n' && n-i >= 4 && string(b[i:i+4]) == "null":
		i += 4
	case c == 'f' && n-i >= 5 && string(b[i:i+5]) == "false":
		i += 5
	case isSpace(c):
		i = skipSpace(b, i)
		goto value
	default:
		return nil, false, false
	}
	if isType {
		isType = false
		s.typed(b, -1, -1)
	}
next: // after a value: a comma, or the end of its container, or of the text
	if depth == 0 {
		if i = skipSpace(b, i); i != n {
			return nil, false, false
		}
		if s.rtSeen == 1 && s.rtStart >= 0 {
			return b[s.rtStart:s.rtEnd], true, true
		}
		return nil, false, true
	}
	if i >= n {
		return nil, false, false
	}
	if c := b[i]; c == ',' {
		i++
		if s.isObject(depth) {
			goto key
		}
		goto value
	} else if c == s.closer(depth) { // one comparison for either closer: '}' is ']' + 0x20
		depth--
		i++
		goto next
	} else if isSpace(c) {
		i = skipSpace(b, i)
		goto next
	}
	return nil, false, false
key: // at the key of an object member
	if i >= n {
		return nil, false, false
	}
	if b[i] != '"' {
		if !isSpace(b[i]) {
			return nil, false, false
		}
		i = skipSpace(b, i)
		goto key
	}
	{ // the string's end is found as for a value's, written out again: a function would be too big for Go to
		// inline, and a call per string cost 5% more instructions (cachegrind), with registers spilled around it
		start := i
		var j int
		if rel := uint(i + 1 - s.block); rel < 64 && s.marks>>rel != 0 {
			j = i + 1 + bits.TrailingZeros64(s.marks>>rel)
		} else {
			j = s.from(i + 1)
		}
		if j < n && b[j] == '"' {
			i = j + 1
		} else if i = stringRest(b, j); i < 0 {
			return nil, false, false
		}
		isType = i-start == len(`"resourceType"`) && depth == 1 && string(b[start:i]) == `"resourceType"`
	}
	if i < n && b[i] == ':' {
		i++
		goto value
	}
	if i = skipSpace(b, i); i >= n || b[i] != ':' {
		return nil, false, false
	}
	i++
	goto value
}

// skipSpace returns the index of the first byte from i on that is no JSON white space.
func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func isSpace(c byte) bool { return c <= ' ' && (c == ' ' || c == '\n' || c == '\r' || c == '\t') }

// stringRest returns the index after the string whose bytes from i on are still inside it, or -1 if it is not
// one.
func stringRest(b []byte, i int) int {
	for {
		const ones, highs = 0x0101010101010101, 0x8080808080808080
		for ; i+8 <= len(b); i += 8 {
			v := binary.LittleEndian.Uint64(b[i:])
			q, s := v^(ones*'"'), v^(ones*'\\')
			if m := ((q-ones)&^q | (s-ones)&^s | (v-ones*0x20)&^v) & highs; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				goto special
			}
		}
		for i < len(b) && plainStringByte[b[i]] {
			i++
		}
		if i >= len(b) {
			return -1
		}
	special:
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++
			if i >= len(b) {
				return -1
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 {
					return -1
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				i += 5
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
}

// numberEnd returns the index after the number that starts at i, or -1 if it is not one.
func numberEnd(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); b[i-1] == '.' {
			return -1 // no digit after the point
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		if i = digits(b, i); i == start {
			return -1
		}
	}
	return i
}

// digits returns the index after the run of decimal digits that starts at i.
func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
