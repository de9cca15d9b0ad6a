#include "textflag.h"

// func stopBlocksAVX2(b *byte, blocks int, out *uint64)
TEXT ·stopBlocksAVX2(SB), NOSPLIT, $0-24
	MOVQ b+0(FP), SI
	MOVQ blocks+8(FP), CX
	MOVQ out+16(FP), DI
	MOVQ $0x22, AX
	MOVQ AX, X1
	VPBROADCASTB X1, Y1 // '"'
	MOVQ $0x5c, AX
	MOVQ AX, X2
	VPBROADCASTB X2, Y2 // '\\'
	MOVQ $0x1f, AX
	MOVQ AX, X3
	VPBROADCASTB X3, Y3 // the last control character

loop:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VPCMPEQB Y1, Y4, Y6
	VPCMPEQB Y2, Y4, Y7
	VPOR Y6, Y7, Y6
	VPMINUB Y3, Y4, Y7
	VPCMPEQB Y4, Y7, Y7 // min(c, 0x1f) == c: c is a control character
	VPOR Y6, Y7, Y6
	VPMOVMSKB Y6, AX
	VPCMPEQB Y1, Y5, Y8
	VPCMPEQB Y2, Y5, Y9
	VPOR Y8, Y9, Y8
	VPMINUB Y3, Y5, Y9
	VPCMPEQB Y5, Y9, Y9
	VPOR Y8, Y9, Y8
	VPMOVMSKB Y8, BX
	SHLQ $32, BX
	ORQ BX, AX
	MOVQ AX, (DI)
	ADDQ $64, SI
	ADDQ $8, DI
	DECQ CX
	JNZ loop
	VZEROUPPER
	RET
