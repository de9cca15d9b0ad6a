package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fhirLibrary is the strict decoder whose gaps FHIRGap names: valid FHIR R4 it refuses. Its version is the
// one go.mod requires (TestFHIRLibraryIsTheOneGoModRequires); another version's gaps are to be found again
// (TestTheFHIRLibraryStillRefusesTheValidLinesOfItsGaps).
const fhirLibrary = "github.com/google/fhir/go v0.7.4"

// FHIRGap is a kind of valid FHIR R4 that fhirLibrary refuses. A line is not failed for one: it is rewritten
// so that the library can read it, and decoded again, so that the rest of it is judged all the same,
// including what the library checks only of a line it could read whole (required elements, references).
type FHIRGap int

const (
	// GapParametersResource is a resource in Parameters.parameter[].resource or part[].resource, in a
	// Parameters anywhere in the line: the library reads the element as a protobuf Any and calls each of the
	// resource's elements an "unknown field". The resource is cut out of the line (left as {}) and decoded on
	// its own, its faults named under the element's path.
	GapParametersResource FHIRGap = iota
	// GapBase64 is a base64Binary with white space between its groups of four characters, which R4's regex
	// allows ((\s*([0-9a-zA-Z\+/=]){4}\s*)+, in its StructureDefinition), or with a JSON escape: the library
	// decodes the bytes between the quotes as they are, escapes included (MIME's line breaks, "\r\n" in JSON;
	// "\/"), and takes spaces only at a regular stride. The value is rewritten as its base64 characters alone.
	GapBase64
	// GapLeapSecond is a second of 60 in an instant, a dateTime or a time, which R4's regexes allow
	// (([0-5][0-9]|60)) and the library's do not: it is read as 59.
	GapLeapSecond
	// GapControlCharacter is a string holding a control character other than tab, CR and LF (U+0000 to U+001F,
	// escaped in JSON): R4 says strings "SHOULD not contain Unicode character points below 32, except for u0009
	// (horizontal tab), u0010 (carriage return) and u0013 (line feed)" (datatypes.html, string), a SHOULD, and
	// its regex ([ \r\n\t\S]+) allows them; the library refuses them. It finds them only once it has read
	// the line whole, with every other such check, so the rest of the line is judged in the same pass.
	GapControlCharacter
	numFHIRGaps
)

func (g FHIRGap) String() string {
	switch g {
	case GapParametersResource:
		return "a resource in Parameters.parameter"
	case GapBase64:
		return "base64Binary with white space or a JSON escape"
	case GapLeapSecond:
		return "a leap second (:60)"
	case GapControlCharacter:
		return "a string with a control character (R4: SHOULD not)"
	}
	return "FHIRGap(" + strconv.Itoa(int(g)) + ")"
}

// FHIRGapLines counts the lines decoded strictly that met a gap of the library, by gap.
type FHIRGapLines struct {
	Around   [numFHIRGaps]int // judged whole, around the gap
	Unjudged [numFHIRGaps]int // a part left unjudged for the gap: not counted as decoded strictly
}

func (c *FHIRGapLines) add(met *gapsMet) {
	for g := range numFHIRGaps {
		switch {
		case met.unjudged.has(g):
			c.Unjudged[g]++
		case met.around.has(g):
			c.Around[g]++
		}
	}
}

func (c *FHIRGapLines) merge(o FHIRGapLines) {
	for g := range numFHIRGaps {
		c.Around[g] += o.Around[g]
		c.Unjudged[g] += o.Unjudged[g]
	}
}

// String says, for a file's log, how many lines met each gap and what became of them; "" when none did.
func (c FHIRGapLines) String() string {
	var says []string
	for g := range numFHIRGaps {
		if n := c.Around[g]; n > 0 {
			says = append(says, fmt.Sprintf("%d %s judged around %s", n, lines(n), g))
		}
		if n := c.Unjudged[g]; n > 0 {
			says = append(says, fmt.Sprintf("%d %s not decoded strictly for %s", n, lines(n), g))
		}
	}
	if len(says) == 0 {
		return ""
	}
	return "valid FHIR R4 that " + fhirLibrary + " refuses: " + strings.Join(says, ", ")
}

func lines(n int) string {
	if n == 1 {
		return "line"
	}
	return "lines"
}

type gapSet uint8

func (s gapSet) has(g FHIRGap) bool { return s&(1<<g) != 0 }

// gapsMet is what NewFHIRDecoder's LineDecoder returns for a line whose only faults were the library's gaps:
// no fault of the line (decodeStrictly passes it), the gaps it met, for the file's count.
type gapsMet struct {
	around   gapSet // judged around: rewritten and decoded again
	unjudged gapSet // left unjudged: a resource in Parameters nested deeper than maxGapDepth, or not found
}

func (m *gapsMet) Error() string {
	var says []string
	for g := range numFHIRGaps {
		switch {
		case m.unjudged.has(g):
			says = append(says, "not judged for "+g.String())
		case m.around.has(g):
			says = append(says, "judged around "+g.String())
		}
	}
	return "valid FHIR R4 that " + fhirLibrary + " refuses: " + strings.Join(says, ", ")
}

// maxGapDepth bounds how deep in each other resources in Parameters are cut out and decoded on their own:
// each level decodes the bytes below it once more.
const maxGapDepth = 8

// parametersResource is the library's path of a Parameters' parameter[].resource or part[].resource, where
// every element of the resource is an "unknown field".
var parametersResource = regexp.MustCompile(`(^|\.)Parameters\.parameter\[[0-9]+\](\.part\[[0-9]+\])*\.resource$`)

// gapJudge judges a line the library refused, around the library's gaps.
type gapJudge struct {
	decode func([]byte) error
	met    gapsMet
}

// line decodes text and returns its faults that are no gap of the library; an error of a shape the library's
// errors do not have comes back as it is.
func (g *gapJudge) line(text []byte, depth int) ([]fault, error) {
	err := g.decode(text)
	if err == nil {
		return nil, nil
	}
	return g.judge(text, err, depth)
}

// judge returns the faults of text, whose decoding failed with err, that are no gap of the library: the
// library's, but for the gaps, which are rewritten so that the library can read them, and then those of the
// rewritten text, decoded again, and of each resource cut out of it.
func (g *gapJudge) judge(text []byte, err error, depth int) ([]fault, error) {
	faults, ok := faultsOf(err)
	if !ok {
		return nil, err
	}
	var (
		doc    = jsonIndex{b: text}
		real   []fault
		edits  []edit
		cut    []cutResource
		found  = map[string]fault{} // a value's fault by its path, quoting the value as the line has it
		atCuts = map[string]bool{}
	)
	for _, f := range faults {
		if controlCharacter(f) {
			g.met.around |= 1 << GapControlCharacter
			continue
		}
		switch f.details {
		case "unknown field":
			if !parametersResource.MatchString(f.path) {
				break
			}
			if !atCuts[f.path] {
				atCuts[f.path] = true
				start, end, ok := doc.valueAt(f.path)
				if !ok || depth >= maxGapDepth || text[start] != '{' {
					g.met.unjudged |= 1 << GapParametersResource
					continue
				}
				edits = append(edits, edit{start, end, []byte("{}")})
				cut = append(cut, cutResource{f.path, start, end})
				g.met.around |= 1 << GapParametersResource
			}
			continue
		case "expected binary data", "expected instant", "expected datetime", "invalid time":
			start, end, ok := doc.valueAt(f.path)
			if !ok {
				break
			}
			raw := text[start:end]
			// The library quotes a base64 value it has partly overwritten while decoding it, and no time at all.
			f.diagnostics = "found " + string(raw)
			found[f.path] = f
			gap, readable := GapLeapSecond, []byte(nil)
			if f.details == "expected binary data" {
				gap, readable = GapBase64, base64Readable(raw)
				ok = readable != nil
			} else {
				readable, ok = leapSecondReadable(raw, f.details == "invalid time")
			}
			if !ok {
				break
			}
			edits = append(edits, edit{start, end, readable})
			g.met.around |= 1 << gap
			continue
		}
		real = append(real, f)
	}
	if len(edits) == 0 {
		return real, nil
	}
	again, ok := splice(text, edits)
	if !ok { // values the library's paths led to overlap: no gap's, whose values are primitives or cut whole
		return faults, nil
	}
	real = real[:0]
	if err := g.decode(again); err != nil {
		faults, ok := faultsOf(err)
		if !ok {
			return nil, err
		}
		for _, f := range faults {
			if f.details == "unknown field" && parametersResource.MatchString(f.path) { // left in place above
				continue
			}
			if controlCharacter(f) { // found once the rewritten line could be read whole
				g.met.around |= 1 << GapControlCharacter
				continue
			}
			if orig, ok := found[f.path]; ok && orig.details == f.details {
				f = orig // the value the line holds, not the one rewritten
			}
			real = append(real, f)
		}
	}
	for _, c := range cut {
		inner, err := g.line(text[c.start:c.end], depth+1)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.path, err)
		}
		for _, f := range inner {
			f.path = strings.TrimSuffix(c.path+"."+f.path, ".")
			real = append(real, f)
		}
	}
	return real, nil
}

// controlCharacter: the library's fault for a string holding a control character R4 only discourages
// (GapControlCharacter). It checks a string's characters after reading the line, beside its other checks of
// values, all of which it reports together: skipping the fault leaves the line's other faults to judge.
func controlCharacter(f fault) bool {
	return strings.HasPrefix(f.details, "string contains invalid characters")
}

// edit replaces text[start:end] with text.
type edit struct {
	start, end int
	text       []byte
}

// cutResource is a resource in a Parameters, at text[start:end], cut out of its line and decoded on its own;
// path is where the library's paths have it.
type cutResource struct {
	path       string
	start, end int
}

// splice applies edits to b in a new slice; ok is false if two of them overlap.
func splice(b []byte, edits []edit) (out []byte, ok bool) {
	slices.SortFunc(edits, func(x, y edit) int { return x.start - y.start })
	out = make([]byte, 0, len(b))
	at := 0
	for _, e := range edits {
		if e.start < at {
			return nil, false
		}
		out = append(append(out, b[at:e.start]...), e.text...)
		at = e.end
	}
	return append(out, b[at:]...), true
}

// base64Readable returns raw, a base64Binary in JSON that R4's regex allows, as its base64 characters alone,
// which the library reads; nil when the regex does not allow it (a character of no base64, white space
// inside a group of four, no group at all) or when the library reads it as it is, and its refusal stands.
// Where "=" may stand (RFC 4648: at the end) is left to the library, which decodes the value again.
func base64Readable(raw []byte) []byte {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return nil
	}
	out := make([]byte, 1, len(s)+2)
	out[0] = '"'
	n := 0
	for i := range len(s) {
		switch c := s[i]; {
		case isSpace(c): // XML Schema's \s: space, tab, CR, LF
			if n%4 != 0 {
				return nil
			}
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/', c == '=':
			out = append(out, c)
			n++
		default:
			return nil
		}
	}
	out = append(out, '"')
	if n == 0 || n%4 != 0 || bytes.Equal(out, raw) {
		return nil
	}
	return out
}

// leapSecondReadable returns raw, an instant or dateTime in JSON (a time with timeOnly), with a second of 60
// read as 59; ok is false for any other second. The rest of the value is left to the library.
func leapSecondReadable(raw []byte, timeOnly bool) ([]byte, bool) {
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	i := len("hh:mm:")
	if !timeOnly {
		t := strings.IndexByte(s, 'T')
		if t < 0 {
			return nil, false
		}
		i = t + len("Thh:mm:")
	}
	if len(s) < i+2 || s[i-1] != ':' || s[i:i+2] != "60" {
		return nil, false
	}
	out, err := json.Marshal(s[:i] + "59" + s[i+2:])
	return out, err == nil
}

// jsonIndex finds values in a line of JSON by the library's paths: Patient.contact[0].name,
// Bundle.entry[1].resource.Patient.photo[0].data, where a step naming the resource's type (the root's, a
// contained resource's) steps nowhere. Each object and array on the paths is read once, however many
// paths pass through it: a Parameters of a thousand resources is one reading, not a thousand.
type jsonIndex struct {
	b       []byte
	objects map[int][]jsonMember // by the offset of '{'
	arrays  map[int][]int        // the offsets of the elements, by the offset of '['
}

type jsonMember struct {
	key        string
	start, end int
}

// valueAt returns the bounds of the value at path; ok is false if there is none.
func (x *jsonIndex) valueAt(path string) (start, end int, ok bool) {
	at := skipSpace(x.b, 0)
	for step := range strings.SplitSeq(path, ".") {
		name, index := step, -1
		if i := strings.IndexByte(step, '['); i >= 0 && strings.HasSuffix(step, "]") {
			n, err := strconv.Atoi(step[i+1 : len(step)-1])
			if err != nil || n < 0 {
				return 0, 0, false
			}
			name, index = step[:i], n
		}
		members, ok := x.object(at)
		if !ok {
			return 0, 0, false
		}
		if index < 0 && x.typed(members, name) {
			continue
		}
		m, ok := lastMember(members, name)
		if !ok {
			return 0, 0, false
		}
		at = m.start
		if index >= 0 {
			elems, ok := x.array(at)
			if !ok || index >= len(elems) {
				return 0, 0, false
			}
			at = elems[index]
		}
	}
	end = valueEnd(x.b, at)
	return at, end, end > at
}

// lastMember is the member the library reads: the last of its name, as a map keeps it.
func lastMember(members []jsonMember, key string) (jsonMember, bool) {
	for i := len(members) - 1; i >= 0; i-- {
		if members[i].key == key {
			return members[i], true
		}
	}
	return jsonMember{}, false
}

// typed says whether the object's resourceType is name.
func (x *jsonIndex) typed(members []jsonMember, name string) bool {
	m, ok := lastMember(members, "resourceType")
	if !ok {
		return false
	}
	var rt string
	return json.Unmarshal(x.b[m.start:m.end], &rt) == nil && rt == name
}

func (x *jsonIndex) object(at int) ([]jsonMember, bool) {
	if ms, ok := x.objects[at]; ok {
		return ms, true
	}
	b := x.b
	if at >= len(b) || b[at] != '{' {
		return nil, false
	}
	var members []jsonMember
	i := skipSpace(b, at+1)
	for i < len(b) && b[i] != '}' {
		if b[i] != '"' {
			return nil, false
		}
		keyEnd := stringRest(b, i+1)
		if keyEnd < 0 {
			return nil, false
		}
		key := string(b[i+1 : keyEnd-1])
		if (strings.IndexByte(key, '\\') >= 0 || !utf8.ValidString(key)) && json.Unmarshal(b[i:keyEnd], &key) != nil {
			return nil, false
		}
		if i = skipSpace(b, keyEnd); i >= len(b) || b[i] != ':' {
			return nil, false
		}
		start := skipSpace(b, i+1)
		end := valueEnd(b, start)
		if end < 0 {
			return nil, false
		}
		members = append(members, jsonMember{key, start, end})
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if i >= len(b) {
		return nil, false
	}
	if x.objects == nil {
		x.objects = map[int][]jsonMember{}
	}
	x.objects[at] = members
	return members, true
}

func (x *jsonIndex) array(at int) ([]int, bool) {
	if es, ok := x.arrays[at]; ok {
		return es, true
	}
	b := x.b
	if at >= len(b) || b[at] != '[' {
		return nil, false
	}
	var elems []int
	i := skipSpace(b, at+1)
	for i < len(b) && b[i] != ']' {
		end := valueEnd(b, i)
		if end < 0 {
			return nil, false
		}
		elems = append(elems, i)
		if i = skipSpace(b, end); i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	if i >= len(b) {
		return nil, false
	}
	if x.arrays == nil {
		x.arrays = map[int][]int{}
	}
	x.arrays[at] = elems
	return elems, true
}

// valueEnd returns the index after the JSON value that starts at i, or -1 if none does. Containers are
// skipped by their brackets, strings by their quotes: the line is JSON the library has read.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringRest(b, i+1)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = stringRest(b, i+1); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(b[i:], []byte(lit)) {
				return i + len(lit)
			}
		}
		return -1
	}
	return numberEnd(b, i)
}
