package check

// stopBlocks sets bit i of out[k] when b[64k+i] is '"', '\\' or a control character; len(b) is 64·len(out).
func stopBlocks(b []byte, out []uint64) {
	if len(out) > 0 {
		stopBlocksSSE2(&b[0], len(out), &out[0])
	}
}

// stopBlocksSSE2 is stopBlocks over blocks (at least one) of 64 bytes, 16 at a time (stopbits_amd64.s).
// SSE2, not AVX2: SSE2 is in every amd64 CPU, so there is nothing to detect, and on a line's few blocks
// AVX2 gains nothing measurable (BenchmarkResourceJSON: 590 ns with AVX2 written in VEX alone, 606 ns with
// SSE2). The AVX2 version this replaces set its constants with a legacy-SSE MOVQ before VEX instructions; a
// 2-core Xeon VM charged that mix about 200 ns a call (one 512-byte line's marks: 209 ns, against 22 ns with
// SSE2), which made it slower than the generic path there.
//
//go:noescape
func stopBlocksSSE2(b *byte, blocks int, out *uint64)
