package check

import "strings"

// Printable makes a text safe to write to a terminal or a CI log: a server's bytes (a body, a header, a file
// URL of its manifest) may hold control characters, and an escape sequence or a carriage return in them
// would let the server recolour, hide or overwrite lines of the verdict a reader sees. C0 controls other
// than tab and newline become their Control Pictures (ESC is ␛, CR is ␍), DEL ␡, and the C1 controls (U+0080
// to U+009F, CSI among them) the replacement character: visible, and inert.
func Printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r < 0x20:
			return 0x2400 + r
		case r == 0x7f:
			return '\u2421'
		case r >= 0x80 && r <= 0x9f:
			return '\uFFFD'
		}
		return r
	}, s)
}
