#include "textflag.h"

// func prefetchLines(p *byte, lines uintptr)
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), AX
	MOVQ lines+8(FP), CX
	TESTQ CX, CX
	JEQ done
loop:
	PREFETCHT0 (AX)
	ADDQ $64, AX
	DECQ CX
	JNE loop
done:
	RET

// func prefetchIndex(index *uint64, hs *uint64, n int, mask uint64)
TEXT ·prefetchIndex(SB), NOSPLIT, $0-32
	MOVQ index+0(FP), AX
	MOVQ hs+8(FP), BX
	MOVQ n+16(FP), CX
	MOVQ mask+24(FP), DX
	TESTQ CX, CX
	JLE idone
iloop:
	MOVQ (BX), SI
	ANDQ DX, SI
	PREFETCHT0 (AX)(SI*8)
	ADDQ $8, BX
	DECQ CX
	JNE iloop
idone:
	RET

// func prefetchFrames(frames *[]byte, n int)
TEXT ·prefetchFrames(SB), NOSPLIT, $0-16
	MOVQ frames+0(FP), AX
	MOVQ n+8(FP), CX
	TESTQ CX, CX
	JLE fdone
floop:
	MOVQ (AX), SI
	PREFETCHT0 (SI)
	PREFETCHT0 57(SI)
	ADDQ $24, AX
	DECQ CX
	JNE floop
fdone:
	RET

// func prefetchSlots(index *uint64, slots *byte, hs *uint64, n int, mask uint64)
TEXT ·prefetchSlots(SB), NOSPLIT, $0-40
	MOVQ index+0(FP), AX
	MOVQ slots+8(FP), R8
	MOVQ hs+16(FP), BX
	MOVQ n+24(FP), CX
	MOVQ mask+32(FP), DX
	TESTQ CX, CX
	JLE sdone
sloop:
	MOVQ (BX), DI
	MOVQ DI, SI
	ANDQ DX, SI
	MOVQ (AX)(SI*8), SI
	TESTQ SI, SI
	JEQ snext
	XORQ SI, DI
	SHRQ $32, DI
	JNE snext
	MOVL SI, SI
	DECQ SI
	SHLQ $7, SI
	PREFETCHT0 (R8)(SI*1)
	PREFETCHT0 64(R8)(SI*1)
snext:
	ADDQ $8, BX
	DECQ CX
	JNE sloop
sdone:
	RET
