package check

import "golang.org/x/sys/cpu"

// stopBlocks sets bit i of out[k] when b[64k+i] is '"', '\\' or a control character; len(b) is 64·len(out).
func stopBlocks(b []byte, out []uint64) {
	if hasAVX2 && len(out) > 0 {
		stopBlocksAVX2(&b[0], len(out), &out[0])
		return
	}
	stopBlocksGeneric(b, out)
}

var hasAVX2 = cpu.X86.HasAVX2

// stopBlocksAVX2 is stopBlocks over blocks (at least one) of 64 bytes, 32 at a time (stopbits_amd64.s).
//
//go:noescape
func stopBlocksAVX2(b *byte, blocks int, out *uint64)
