package check

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// validJSON is json.Valid, two to five times faster on FHIR's string-heavy lines. It accepts exactly what
// json.Valid accepts (FuzzValidJSON holds the two together), nesting included.
func validJSON(b []byte) bool {
	_, _, ok := resourceJSON(b)
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

// resourceJSON validates b as validJSON does and, in the same pass, finds the top-level "resourceType": its
// value when it is a string without escapes that occurs once at the top level (known is false otherwise,
// for the caller to decode). One pass over each output line, instead of a validation and a search; one loop
// with an explicit stack of the open containers (a bit per level, set for an object) instead of a call per
// value, and string bytes taken eight at a time: output lines are mostly short strings.
func resourceJSON(b []byte) (resourceType []byte, known, valid bool) {
	var (
		small  [4]uint64 // the first 256 levels; deeper nesting spills into big
		big    []bool
		depth  int
		rt     []byte
		rtSeen int
		isType bool // the value about to be read is the top-level "resourceType"'s
	)
	isObject := func(d int) bool {
		if d < 256 {
			return small[d>>6]&(1<<(d&63)) != 0
		}
		return big[d-256]
	}
	push := func(object bool) bool {
		depth++
		if depth > maxJSONDepth {
			return false
		}
		d := depth
		if d < 256 {
			if object {
				small[d>>6] |= 1 << (d & 63)
			} else {
				small[d>>6] &^= 1 << (d & 63)
			}
			return true
		}
		if d-256 < len(big) {
			big[d-256] = object
		} else {
			big = append(big, object)
		}
		return true
	}
	n := len(b)
	i := skipSpace(b, 0)
value:
	if i >= n {
		return nil, false, false
	}
	typed := isType // this value is the top-level "resourceType"'s: known only if it is a plain string
	if typed {
		isType, rt = false, nil
		rtSeen++
	}
	switch c := b[i]; {
	case c == '"':
		start := i
		if i = stringEnd(b, i); i < 0 {
			return nil, false, false
		}
		if typed {
			if v := b[start+1 : i-1]; bytes.IndexByte(v, '\\') < 0 {
				rt = v
			}
		}
	case c == '{' || c == '[':
		if !push(c == '{') {
			return nil, false, false
		}
		i = skipSpace(b, i+1)
		if i < n && b[i] == c+2 { // empty: '}' is '{'+2, ']' is '['+2
			depth--
			i++
			break
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
	default:
		return nil, false, false
	}
next: // after a value: a comma, or the end of its container, or of the text
	i = skipSpace(b, i)
	if depth == 0 {
		if i != n {
			return nil, false, false
		}
		return rt, rtSeen == 1 && rt != nil, true
	}
	if i >= n {
		return nil, false, false
	}
	switch b[i] {
	case ',':
		i = skipSpace(b, i+1)
		if isObject(depth) {
			goto key
		}
		goto value
	case '}':
		if !isObject(depth) {
			return nil, false, false
		}
	case ']':
		if isObject(depth) {
			return nil, false, false
		}
	default:
		return nil, false, false
	}
	depth--
	i++
	goto next
key: // at the key of an object member
	if i >= n || b[i] != '"' {
		return nil, false, false
	}
	start := i
	if i = stringEnd(b, i); i < 0 {
		return nil, false, false
	}
	isType = depth == 1 && string(b[start:i]) == `"resourceType"`
	i = skipSpace(b, i)
	if i >= n || b[i] != ':' {
		return nil, false, false
	}
	i = skipSpace(b, i+1)
	goto value
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	return i
}

var isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// stringEnd returns the index after the string whose opening quote is at i, or -1 if it is not one.
func stringEnd(b []byte, i int) int {
	i++
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
