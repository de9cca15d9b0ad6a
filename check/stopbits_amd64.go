package check

import "golang.org/x/sys/cpu"

// stopBlocks sets bit i of out[k] when b[64k+i] is '"', '\\' or a control character; len(b) is 64·len(out).
func stopBlocks(b []byte, out []uint64) {
	if hasVector && len(out) > 0 {
		stopBlocksAVX2(&b[0], len(out), &out[0])
		return
	}
	stopBlocksGeneric(b, out)
}

// hasVector: the CPU has AVX2 (a variable, so that tests can take the generic path too).
var hasVector = cpu.X86.HasAVX2

//go:noescape
func stopBlocksAVX2(b *byte, blocks int, out *uint64)
