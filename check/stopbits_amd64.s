#include "textflag.h"

// MARK16 sets, in the low 16 bits of R, one bit per byte of the 16 at off(SI) that is '"' (X1), '\\' (X2)
// or a control character (at most 0x1f, X3); it clobbers X4 to X6.
#define MARK16(off, R) \
	MOVOU off(SI), X4 \
	MOVOU X4, X5 \
	PCMPEQB X1, X5 \
	MOVOU X4, X6 \
	PCMPEQB X2, X6 \
	POR X6, X5 \
	MOVOU X4, X6 \
	PMINUB X3, X6 \
	PCMPEQB X4, X6 /* min(c, 0x1f) == c: c is a control character */ \
	POR X6, X5 \
	PMOVMSKB X5, R

// func stopBlocksSSE2(b *byte, blocks int, out *uint64)
TEXT ·stopBlocksSSE2(SB), NOSPLIT, $0-24
	MOVQ b+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ out+16(FP), DI
	MOVQ $0x2222222222222222, AX // '"'
	MOVQ AX, X1
	PUNPCKLQDQ X1, X1
	MOVQ $0x5c5c5c5c5c5c5c5c, AX // '\\'
	MOVQ AX, X2
	PUNPCKLQDQ X2, X2
	MOVQ $0x1f1f1f1f1f1f1f1f, AX // the last control character
	MOVQ AX, X3
	PUNPCKLQDQ X3, X3

loop:
	MARK16(0, AX)
	MARK16(16, BX)
	SHLQ $16, BX
	ORQ BX, AX
	MARK16(32, BX)
	SHLQ $32, BX
	ORQ BX, AX
	MARK16(48, BX)
	SHLQ $48, BX
	ORQ BX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ loop
	RET
