package check

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// validJSON is json.Valid, three to four times faster on FHIR's string-heavy lines: a recursive descent
// over the bytes, with a table for the bytes a string may hold as they are. It accepts exactly what
// json.Valid accepts (FuzzValidJSON holds the two together), nesting included.
func validJSON(b []byte) bool {
	_, _, ok := resourceJSON(b)
	return ok
}

// resourceJSON validates b as validJSON does and, in the same pass, finds the top-level "resourceType": its
// value when it is a string without escapes that occurs once at the top level (known is false otherwise,
// for the caller to decode). One pass over each output line, instead of a validation and a search.
func resourceJSON(b []byte) (resourceType []byte, known, valid bool) {
	p := jsonParser{b: b}
	p.space()
	if !p.value(0) {
		return nil, false, false
	}
	p.space()
	if p.i != len(b) {
		return nil, false, false
	}
	return p.rt, p.rtSeen == 1 && p.rt != nil, true
}

type jsonParser struct {
	b []byte
	i int
	// rt is the value of the top-level "resourceType" member, rtSeen how many such members there were.
	rt     []byte
	rtSeen int
}

// maxJSONDepth is encoding/json's limit on nesting.
const maxJSONDepth = 10000

var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (p *jsonParser) space() {
	if p.i < len(p.b) && p.b[p.i] > ' ' { // compact JSON, as output files are: no space at all
		return
	}
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '"':
		return p.str()
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return false
}

func (p *jsonParser) literal(word string) bool {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *jsonParser) object(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	for {
		key := p.i
		if p.i >= len(p.b) || p.b[p.i] != '"' || !p.str() {
			return false
		}
		isType := depth == 1 && string(p.b[key:p.i]) == `"resourceType"`
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.space()
		start := p.i
		if !p.value(depth) {
			return false
		}
		if isType {
			p.rtSeen++
			p.rt = nil
			if v := p.b[start:p.i]; len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
				p.rt = v[1 : len(v)-1]
			}
		}
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.space()
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

func (p *jsonParser) array(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	p.i++ // [
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return true
	}
	for {
		if !p.value(depth) {
			return false
		}
		p.space()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
			p.space()
		case ']':
			p.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string whose opening quote is at p.i.
func (p *jsonParser) str() bool {
	b := p.b
	i := p.i + 1
	for {
		i = plainRun(b, i)
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '"':
			p.i = i + 1
			return true
		case '\\':
			i++
			if i >= len(b) {
				return false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 {
					return false
				}
				for _, h := range b[i+1 : i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return false
					}
				}
				i += 5
			default:
				return false
			}
		default: // a control character
			return false
		}
	}
}

// plainRun returns the index of the first byte from i on that a string cannot hold as it is (a quote, a
// backslash or a control character), or len(b). Eight bytes at a time: strings are most of FHIR's bytes.
func plainRun(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		q, s := v^(ones*'"'), v^(ones*'\\')
		// A byte's high bit is set where it is zero (in q or s: a quote or a backslash) or below 0x20 in v;
		// bits above the lowest one may be spurious (borrows), the lowest never is.
		if m := ((q-ones)&^q | (s-ones)&^s | (v-ones*0x20)&^v) & highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(b) && plainStringByte[b[i]] {
		i++
	}
	return i
}

func (p *jsonParser) number() bool {
	b, i := p.b, p.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	p.i = i
	return true
}
