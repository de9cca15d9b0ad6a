package refserver

import (
	"crypto/rand"
	"fmt"
)

// newUUID returns a random (version 4) UUID string.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go >= 1.24)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

const binaryIDAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newBinaryID returns a random 32-character [A-Za-z0-9] id, the shape HAPI
// uses for bulk export Binaries.
func newBinaryID() string {
	return randomAlnum(32)
}

func randomAlnum(n int) string {
	out := make([]byte, n)
	var b [1]byte
	for i := 0; i < n; {
		_, _ = rand.Read(b[:])
		if int(b[0]) >= 256-256%len(binaryIDAlphabet) { // reject to avoid modulo bias
			continue
		}
		out[i] = binaryIDAlphabet[int(b[0])%len(binaryIDAlphabet)]
		i++
	}
	return string(out)
}
