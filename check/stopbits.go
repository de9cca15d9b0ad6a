package check

import (
	"encoding/binary"
	"math/bits"
)

// stopWindow is how many bytes of a line stops marks at once: 512 bytes of marks, whatever the line's length.
const stopWindow = 64 * 64

// stops marks, a window of a line at a time, the bytes at which a JSON string's plain run ends: '"', '\\'
// and the control characters. Finding a string's end is then a bit search, without a loop over its bytes:
// output lines are mostly short strings. The marks come sixty-four bytes at a time from stopBlocks (vector
// instructions where the CPU has them).
type stops struct {
	b    []byte
	base int // the window's first byte, a multiple of 64; -stopWindow before the first window
	bits [stopWindow / 64]uint64
	// block is the first of the 64 bytes whose marks are at hand in marks (from); noBlock when none are.
	block int
	marks uint64
	// generic makes the marks with stopBlocksGeneric even where the CPU has vector instructions: for tests
	// and fuzzing, which hold the two paths together.
	generic bool
}

func (s *stops) reset(b []byte) { s.b, s.base, s.block = b, -stopWindow, noBlock }

// noBlock is a block that no index is in: i+1-noBlock is at least 64 for every i ≥ 0.
const noBlock = -64

// fill marks the window that starts at base.
func (s *stops) fill(base int) {
	s.base = base
	end := min(base+stopWindow, len(s.b))
	full := (end - base) / 64
	s.mark(s.b[base:base+64*full], s.bits[:full])
	if tail := s.b[base+64*full : end]; len(tail) > 0 {
		block := spaces // the tail, padded with bytes that are no stop
		copy(block[:], tail)
		s.mark(block[:], s.bits[full:full+1])
		s.bits[full] &= 1<<len(tail) - 1
	}
}

// mark is stopBlocks, or stopBlocksGeneric for a generic scan. Called directly, not through a function value:
// through one, the tail's block would escape to the heap, an allocation per line.
func (s *stops) mark(b []byte, out []uint64) {
	if s.generic {
		stopBlocksGeneric(b, out)
		return
	}
	stopBlocks(b, out)
}

// next returns the index of the first stop at or after j, or len(b) if there is none.
func (s *stops) next(j int) int {
	for j < len(s.b) {
		rel := j - s.base
		if rel >= stopWindow {
			s.fill(j &^ 63)
			rel = j - s.base
		}
		if w := s.bits[rel>>6] >> (rel & 63); w != 0 {
			return j + bits.TrailingZeros64(w)
		}
		j = j | 63 + 1
	}
	return len(s.b)
}

// from returns the index of the first stop at or after p, or len(b) if there is none, and keeps the marks of
// p's 64 bytes at hand (block, marks). resourceJSON looks there first, written out: a string mostly starts in
// the 64 bytes where the one before it ended, and its end is then a shift and a bit count away from its
// start, without a load of the marks on the way; from is called for the others.
func (s *stops) from(p int) int {
	if p >= len(s.b) {
		return len(s.b)
	}
	if block := p &^ 63; block != s.block {
		rel := uint(block - s.base)
		if rel >= stopWindow {
			s.fill(block)
			rel = 0
		}
		s.block, s.marks = block, s.bits[rel>>6]
		if w := s.marks >> (p & 63); w != 0 {
			return p + bits.TrailingZeros64(w)
		}
	}
	return s.next(p)
}

// plainRun returns the index of b's first '"', '\\' or control character, or len(b): where a JSON string's plain
// run ends. It marks 64 bytes at a time with stopBlocks, one block first and twice as many each round after,
// up to 4 KiB: a base64 data string runs for megabytes without a stop (a loop over its bytes cost a quarter of
// the Binary stream's CPU), while a string escaped every few bytes (a server writing "\/") must not pay for
// marks it never reads.
func plainRun(b []byte) int {
	var marks [64]uint64
	i, blocks := 0, 1
	for len(b)-i >= 64 {
		n := min((len(b)-i)/64, blocks)
		stopBlocks(b[i:i+64*n], marks[:n])
		for k, w := range marks[:n] {
			if w != 0 {
				return i + 64*k + bits.TrailingZeros64(w)
			}
		}
		i += 64 * n
		blocks = min(2*blocks, len(marks))
	}
	for i < len(b) && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\' {
		i++
	}
	return i
}

var spaces = [64]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '}

// stopBlocksGeneric is stopBlocks without vector instructions: eight bytes at a time, without a branch.
func stopBlocksGeneric(b []byte, out []uint64) {
	const (
		low7  = 0x7f7f7f7f7f7f7f7f
		quote = 0x2222222222222222
		bslsh = 0x5c5c5c5c5c5c5c5c
		top3  = 0xe0e0e0e0e0e0e0e0
		pack  = 0x0102040810204080 // gathers the high bit of each byte into the top byte
	)
	zero := func(x uint64) uint64 { return ^((x&low7 + low7) | x | low7) } // the high bit of each zero byte, exactly
	for k := range out {
		var w uint64
		for i := 0; i < 64; i += 8 {
			v := binary.LittleEndian.Uint64(b[64*k+i:])
			m := zero(v^quote) | zero(v^bslsh) | zero(v&top3) // '"', '\\', or below 0x20
			w |= (m >> 7 * pack >> 56) << i
		}
		out[k] = w
	}
}
