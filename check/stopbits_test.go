package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// The marks of stopBlocks (vector instructions where the CPU has them) and of stopBlocksGeneric are those of
// the definition, byte by byte, for every byte value at every position of a block.
func TestStopBlocksMarkQuotesBackslashesAndControlCharacters(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 64*40)
	for round := range 200 {
		for i := range b {
			switch round % 3 {
			case 0:
				b[i] = byte(r.IntN(256))
			case 1: // every byte value, shifted through the positions
				b[i] = byte(i + round)
			default: // mostly plain text, as in output lines
				b[i] = "abc \"\\\x00\x1f\x20\x7f\x80\xff"[r.IntN(12)]
			}
		}
		want := make([]uint64, 40)
		for i, c := range b {
			if c == '"' || c == '\\' || c < 0x20 {
				want[i/64] |= 1 << (i % 64)
			}
		}
		for name, marks := range map[string]func([]byte, []uint64){"stopBlocks": stopBlocks, "stopBlocksGeneric": stopBlocksGeneric} {
			got := make([]uint64, 40)
			marks(b, got)
			for k := range want {
				if got[k] != want[k] {
					t.Fatalf("%s, round %d, block %d of %q: marks %064b, want %064b", name, round, k, b[64*k:64*k+64], got[k], want[k])
				}
			}
		}
	}
}

// plainRun finds the first stop byte, by the definition, wherever it lies: in the first block, at the edges
// of the blocks and of its growing rounds, past 4 KiB, in the tail of fewer than 64 bytes, or nowhere; at every
// position of every size.
func TestPlainRunEndsAtTheFirstQuoteBackslashOrControlCharacter(t *testing.T) {
	want := func(b []byte) int {
		for i, c := range b {
			if c == '"' || c == '\\' || c < 0x20 {
				return i
			}
		}
		return len(b)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, size := range []int{0, 1, 63, 64, 65, 127, 128, 200, 64 * 7, 4096, 4096 + 63, 3 * 4096, 10000} {
		plain := bytes.Repeat([]byte("QUJD+/09=\x7f\x80\xff"), size/12+1)[:size] // base64, and bytes past ASCII: no stops
		if got := plainRun(plain); got != size {
			t.Fatalf("plainRun of %d plain bytes = %d, want %d", size, got, size)
		}
		for at := range size {
			b := bytes.Clone(plain)
			b[at] = "\"\\\x00\x1f"[r.IntN(4)]
			if at+1 < size { // a later stop must not hide the first
				b[at+1+r.IntN(size-at-1)] = '"'
			}
			if got := plainRun(b); got != want(b) {
				t.Fatalf("plainRun of %d bytes with a stop %q at %d = %d, want %d", size, b[at], at, got, want(b))
			}
		}
	}
}

// The validator agrees with json.Valid on lines longer than the marks' window, with strings, escapes and
// faults placed across the edges of its 64-byte blocks and of the window itself; with the vector marks and
// with the generic ones.
func TestLongLinesAreValidatedAcrossTheMarksWindow(t *testing.T) {
	var texts []string
	for _, edge := range []int{64, stopWindow, 2 * stopWindow} {
		for d := -3; d <= 3; d++ {
			for _, tail := range []string{`"`, `\"x"`, `\u00e9"`, "\x01\"", `\q"`, ``, `\`} {
				// a string that opens before the edge and runs across it, in an array that pads up to it
				pad := edge + d - 3
				texts = append(texts, `["`+strings.Repeat("a", pad)+tail+`]`)
				// many short strings, one of them crossing the edge
				var b strings.Builder
				b.WriteString(`{"resourceType":"Patient","x":[`)
				for b.Len() < edge+d {
					b.WriteString(`"ab",`)
				}
				b.WriteString(`"cd` + tail + `]}`)
				texts = append(texts, b.String())
			}
		}
	}
	texts = append(texts, `["`+strings.Repeat("é", 3*stopWindow)+`"]`, "[\n"+strings.Repeat(`"a" ,`+"\n\t", stopWindow)+`""]`)
	for _, generic := range []bool{false, true} {
		t.Run(fmt.Sprintf("generic %v", generic), func(t *testing.T) {
			scan := &jsonScan{stops: stops{generic: generic}} // reused, as the judge does: a window left from a line is never read
			for _, text := range texts {
				_, _, got := resourceJSON([]byte(text), scan)
				if want := json.Valid([]byte(text)); got != want {
					t.Errorf("validJSON(%.40q…%q, %d bytes) = %v, json.Valid says %v", text, text[max(len(text)-40, 0):], len(text), got, want)
				}
			}
			if rt, known, valid := resourceJSON(bytes.Repeat([]byte(" "), 5000), scan); valid || known || rt != nil {
				t.Error("white space alone must be invalid")
			}
		})
	}
}
