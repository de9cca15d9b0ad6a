package check

// stopBlocks sets bit i of out[k] when b[64k+i] is '"', '\\' or a control character; len(b) is 64·len(out).
func stopBlocks(b []byte, out []uint64) {
	if len(out) > 0 {
		stopBlocksSSE2(&b[0], len(out), &out[0])
	}
}

// stopBlocksSSE2 is stopBlocks over blocks (at least one) of 64 bytes, 16 at a time (stopbits_amd64.s).
// SSE2, not AVX2: SSE2 is in every amd64 CPU, and a line's marks are a few blocks, where AVX2's 32 bytes
// at a time gain nothing and the 256-bit registers can cost much: on a 2-core Xeon VM each call that used
// them took about 200 ns more, whatever its length (a 512-byte line: 209 ns with AVX2, 22 ns with SSE2).
//
//go:noescape
func stopBlocksSSE2(b *byte, blocks int, out *uint64)
