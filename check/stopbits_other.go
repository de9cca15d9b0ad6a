//go:build !amd64

package check

// stopBlocks sets bit i of out[k] when b[64k+i] is '"', '\\' or a control character; len(b) is 64·len(out).
func stopBlocks(b []byte, out []uint64) { stopBlocksGeneric(b, out) }
