package check

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// binaryStream reads a FHIR Binary in JSON from a stream without holding it: the members other than "data"
// are small and kept; "data" is handed out as a reader of its decoded bytes (base64 decoded while the JSON
// string is read, escapes such as "\/" undone on the way), so that a Binary of gigabytes costs kilobytes.
type binaryStream struct {
	r       *bufio.Reader
	members map[string]json.RawMessage
	data    bool // the "data" member was met
}

// maxBinaryMember bounds a member other than "data" (contentType, securityContext, meta...).
const maxBinaryMember = 1 << 20

var errBinarySyntax = errors.New("invalid JSON")

func newBinaryStream(r io.Reader) *binaryStream {
	return &binaryStream{r: bufio.NewReaderSize(r, 64<<10), members: map[string]json.RawMessage{}}
}

// untilData reads the object's opening and its members up to "data"'s string value. It reports whether the
// data member was found; false means the object ended without one.
func (b *binaryStream) untilData() (bool, error) {
	if err := b.expect('{'); err != nil {
		return false, err
	}
	c, err := b.nonSpace()
	if err != nil {
		return false, unexpectedEOF(err)
	}
	if c == '}' {
		return false, b.end()
	}
	_ = b.r.UnreadByte()
	return b.members1()
}

// members1 reads members, each preceded by nothing (the first) or a comma already consumed, until "data"
// (true) or the closing brace (false).
func (b *binaryStream) members1() (bool, error) {
	for {
		key, err := b.key()
		if err != nil {
			return false, err
		}
		if key == "data" {
			if b.data {
				return false, fmt.Errorf(`%w: "data" twice`, errBinarySyntax)
			}
			b.data = true
			c, err := b.nonSpace()
			if err != nil {
				return false, unexpectedEOF(err)
			}
			if c == '"' {
				return true, nil
			}
			_ = b.r.UnreadByte()
			raw, err := b.value()
			if err != nil {
				return false, err
			}
			if string(raw) != "null" {
				return false, fmt.Errorf(`%w: "data" is %.40s, not a base64 string`, errBinarySyntax, raw)
			}
		} else {
			raw, err := b.value()
			if err != nil {
				return false, err
			}
			if _, dup := b.members[key]; dup {
				return false, fmt.Errorf("%w: member %q twice", errBinarySyntax, key)
			}
			b.members[key] = raw
		}
		more, err := b.next()
		if err != nil || !more {
			return false, err
		}
	}
}

// afterData reads what follows the data string: the remaining members, the closing brace, the end.
func (b *binaryStream) afterData() error {
	more, err := b.next()
	if err != nil || !more {
		return err
	}
	found, err := b.members1()
	if found {
		return fmt.Errorf(`%w: "data" twice`, errBinarySyntax)
	}
	return err
}

// next consumes a comma (true: another member follows) or the closing brace and the end of the body.
func (b *binaryStream) next() (bool, error) {
	c, err := b.nonSpace()
	if err != nil {
		return false, unexpectedEOF(err)
	}
	switch c {
	case ',':
		return true, nil
	case '}':
		return false, b.end()
	}
	return false, fmt.Errorf("%w: %q after a member", errBinarySyntax, c)
}

func (b *binaryStream) end() error {
	if c, err := b.nonSpace(); err != io.EOF {
		if err != nil {
			return err
		}
		return fmt.Errorf("%w: %q after the object", errBinarySyntax, c)
	}
	return nil
}

func (b *binaryStream) key() (string, error) {
	raw, err := b.value()
	if err != nil {
		return "", err
	}
	var key string
	if err := json.Unmarshal(raw, &key); err != nil {
		return "", fmt.Errorf("%w: member name %.40s", errBinarySyntax, raw)
	}
	return key, b.expect(':')
}

func (b *binaryStream) expect(want byte) error {
	c, err := b.nonSpace()
	if err != nil {
		return unexpectedEOF(err)
	}
	if c != want {
		return fmt.Errorf("%w: %q where %q belongs", errBinarySyntax, c, want)
	}
	return nil
}

func (b *binaryStream) nonSpace() (byte, error) {
	for {
		c, err := b.r.ReadByte()
		if err != nil {
			return 0, err
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c, nil
	}
}

// value reads one JSON value of at most maxBinaryMember bytes and returns it, checked to be valid JSON.
func (b *binaryStream) value() (json.RawMessage, error) {
	c, err := b.nonSpace()
	if err != nil {
		return nil, unexpectedEOF(err)
	}
	raw := []byte{c}
	depth, inString, escaped := 0, c == '"', false
	switch c {
	case '{', '[':
		depth = 1
	}
	for inString || depth > 0 || isScalarByte(c) {
		if len(raw) > maxBinaryMember {
			return nil, fmt.Errorf("a member of the Binary other than data exceeds %d bytes", maxBinaryMember)
		}
		c, err = b.r.ReadByte()
		if err != nil {
			if err == io.EOF && !inString && depth == 0 {
				break // a scalar ended by the end of the body: the caller finds the object unclosed
			}
			return nil, unexpectedEOF(err)
		}
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
			if depth == 0 {
				raw = append(raw, c)
				return checkedValue(raw)
			}
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				raw = append(raw, c)
				return checkedValue(raw)
			}
		case depth == 0 && !isScalarByte(c):
			_ = b.r.UnreadByte()
			return checkedValue(raw)
		}
		raw = append(raw, c)
	}
	return checkedValue(raw)
}

func isScalarByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

func checkedValue(raw []byte) (json.RawMessage, error) {
	if !json.Valid(raw) {
		return nil, fmt.Errorf("%w: %.60s", errBinarySyntax, raw)
	}
	return raw, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return fmt.Errorf("%w: the body ends inside the object", errBinarySyntax)
	}
	return err
}

// dataReader is the decoded content of the data string, whose opening quote untilData consumed.
func (b *binaryStream) dataReader() io.Reader {
	return newBase64Reader(&jsonStringReader{r: b.r})
}

// jsonStringReader yields the content of a JSON string, unescaped, up to its closing quote (then io.EOF).
// The base64 alphabet is ASCII: a \u escape beyond it is passed on as UTF-8 for the decoder to refuse.
type jsonStringReader struct {
	r    *bufio.Reader
	done bool
	tail []byte // bytes of an unescaped \u not yet handed out
}

func (s *jsonStringReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(s.tail) > 0 {
			c := copy(p[n:], s.tail)
			s.tail, n = s.tail[c:], n+c
			continue
		}
		if s.done {
			break
		}
		buf, err := s.r.Peek(1)
		if err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, unexpectedEOF(err)
		}
		buf, _ = s.r.Peek(min(s.r.Buffered(), len(p)-n))
		run := plainRun(buf)
		n += copy(p[n:], buf[:run])
		_, _ = s.r.Discard(run)
		if run > 0 {
			continue
		}
		c, _ := s.r.ReadByte()
		if c < 0x20 {
			return n, fmt.Errorf("%w: control character in the data string", errBinarySyntax)
		}
		if c == '"' {
			s.done = true
			break
		}
		if err := s.escape(); err != nil {
			return n, err
		}
	}
	if n == 0 && s.done {
		return 0, io.EOF
	}
	return n, nil
}

func (s *jsonStringReader) escape() error {
	c, err := s.r.ReadByte()
	if err != nil {
		return unexpectedEOF(err)
	}
	switch c {
	case '"', '\\', '/':
		s.tail = []byte{c}
	case 'b':
		s.tail = []byte{'\b'}
	case 'f':
		s.tail = []byte{'\f'}
	case 'n':
		s.tail = []byte{'\n'}
	case 'r':
		s.tail = []byte{'\r'}
	case 't':
		s.tail = []byte{'\t'}
	case 'u':
		var hex [4]byte
		if _, err := io.ReadFull(s.r, hex[:]); err != nil {
			return unexpectedEOF(err)
		}
		var r rune
		for _, h := range hex {
			switch {
			case h >= '0' && h <= '9':
				r = r<<4 | rune(h-'0')
			case h >= 'a' && h <= 'f':
				r = r<<4 | rune(h-'a'+10)
			case h >= 'A' && h <= 'F':
				r = r<<4 | rune(h-'A'+10)
			default:
				return fmt.Errorf(`%w: \u%s in the data string`, errBinarySyntax, hex[:])
			}
		}
		s.tail = utf8.AppendRune(nil, r)
	default:
		return fmt.Errorf(`%w: \%c in the data string`, errBinarySyntax, c)
	}
	return nil
}

// base64Reader decodes standard base64 read from src in large blocks, straight into the caller's buffer
// when it is large enough (base64.NewDecoder works in blocks of 1 KiB, a third of the speed here). Line
// breaks are skipped, as base64.NewDecoder does.
type base64Reader struct {
	src  io.Reader
	in   []byte // undecoded input: in[:n]
	n    int
	out  []byte // decoded, not yet handed out
	eof  bool
	done bool
}

func newBase64Reader(src io.Reader) *base64Reader {
	return &base64Reader{src: src, in: make([]byte, 256<<10)}
}

// stripSpaces removes the spaces and tabs R4 allows between groups of four from the undecoded input, and
// tells whether there were any. It is called only once a block failed to decode (or ended inside a group):
// looking for them in every block, as for line breaks, cost a fifth of the Binary stream's throughput for
// data that almost never holds them.
func (d *base64Reader) stripSpaces() bool {
	if bytes.IndexByte(d.in[:d.n], ' ') < 0 && bytes.IndexByte(d.in[:d.n], '\t') < 0 {
		return false
	}
	d.n = stripWhiteSpace(d.in[:d.n])
	return true
}

func (d *base64Reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(d.out) > 0 {
		n := copy(p, d.out)
		d.out = d.out[n:]
		return n, nil
	}
	for !d.done {
		if !d.eof && d.n < len(d.in) {
			m, err := d.src.Read(d.in[d.n:])
			d.n += stripLineBreaks(d.in[d.n : d.n+m])
			if err == io.EOF {
				d.eof = true
			} else if err != nil {
				return 0, err
			}
		}
		whole := d.n / 4 * 4
		if d.eof {
			if d.n%4 != 0 && d.stripSpaces() {
				continue
			}
			if d.n%4 != 0 {
				return 0, io.ErrUnexpectedEOF
			}
			whole, d.done = d.n, true
		}
		if whole == 0 {
			continue
		}
		if maxOut := len(p) / 3 * 4; !d.done && whole > maxOut && maxOut >= 4 {
			whole = maxOut
		}
		dst := p
		if base64.StdEncoding.DecodedLen(whole) > len(p) {
			dst = make([]byte, base64.StdEncoding.DecodedLen(whole))
		}
		k, err := base64.StdEncoding.Decode(dst, d.in[:whole])
		if err != nil {
			if d.stripSpaces() { // a server's spaces or tabs between groups: decoded again without them
				d.done = false
				continue
			}
			return 0, err
		}
		d.n = copy(d.in, d.in[whole:d.n])
		if &dst[0] != &p[0] {
			n := copy(p, dst[:k])
			d.out = dst[n:k]
			return n, nil
		}
		if k > 0 {
			return k, nil
		}
	}
	return 0, io.EOF
}

// stripLineBreaks removes \r and \n from b in place and returns the length left: MIME's line breaks, the
// white space base64 data usually holds, looked for by two vectorised scans on every block.
func stripLineBreaks(b []byte) int {
	if bytes.IndexByte(b, '\n') < 0 && bytes.IndexByte(b, '\r') < 0 {
		return len(b)
	}
	return stripWhiteSpace(b)
}

// stripWhiteSpace removes all of R4's white space from b in place and returns the length left: base64Binary
// ((\s*([0-9a-zA-Z\+/=]){4}\s*)+) allows XML Schema's \s, space, tab, CR and LF, between groups of four.
func stripWhiteSpace(b []byte) int {
	n := 0
	for _, c := range b {
		if !isSpace(c) {
			b[n] = c
			n++
		}
	}
	return n
}
