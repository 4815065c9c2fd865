"""Dequantization of every GGUF block type, written from the format's definition (ggml's block
layouts: ggml-common.h, and its dequantize_row_* reference loops), against llmq's.

For each type: random blocks (random bytes, with the fp16 scale fields replaced by random
finite halves, normal and subnormal), dequantized here in float32 numpy arithmetic in the
definition's order of operations, and by llmq on every ISA this CPU runs, through two paths:
row_to_f32 (the embedding gather, the scalar decoder) and the GEMM's prefill path with x = the
identity (y = the dequantized weights, through the vector unpacking of that ISA). The bits must
be equal (through the GEMM the values: a -0 weight summed with the zero products comes back +0).

Usage: quant_blocks_reference.py QUANT_DUMP_TOOL
"""
import subprocess
import sys

import numpy as np

F32 = np.float32
KVALUES = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                   dtype=np.int8)

# name: (values per block, bytes per block, offsets of fp16 fields)
TYPES = {
    "q4_0": (32, 18, [0]),
    "q4_1": (32, 20, [0, 2]),
    "q5_0": (32, 22, [0]),
    "q5_1": (32, 24, [0, 2]),
    "iq4_nl": (32, 18, [0]),
    "q2_k": (256, 84, [80, 82]),
    "q3_k": (256, 110, [108]),
    "q4_k": (256, 144, [0, 2]),
    "q5_k": (256, 176, [0, 2]),
    "q6_k": (256, 210, [208]),
    "iq4_xs": (256, 136, [0]),
}


def half(b, off):
    return F32(np.frombuffer(bytes(b[off:off + 2]), dtype="<f2")[0])


def deq_q4_0(b):
    d = half(b, 0)
    qs = b[2:18]
    return [F32(int(qs[j] & 15) - 8) * d for j in range(16)] + \
           [F32(int(qs[j] >> 4) - 8) * d for j in range(16)]


def deq_q4_1(b):
    d, m = half(b, 0), half(b, 2)
    qs = b[4:20]
    return [F32(int(qs[j] & 15)) * d + m for j in range(16)] + \
           [F32(int(qs[j] >> 4)) * d + m for j in range(16)]


def five_bit_values(qh_bytes, qs):
    qh = int.from_bytes(bytes(qh_bytes), "little")
    lo = [(qs[j] & 15) | (((qh >> j) & 1) << 4) for j in range(16)]
    hi = [(qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4) for j in range(16)]
    return lo + hi


def deq_q5_0(b):
    d = half(b, 0)
    return [F32(q - 16) * d for q in five_bit_values(b[2:6], b[6:22])]


def deq_q5_1(b):
    d, m = half(b, 0), half(b, 2)
    return [F32(q) * d + m for q in five_bit_values(b[4:8], b[8:24])]


def deq_iq4_nl(b):
    d = half(b, 0)
    qs = b[2:18]
    return [d * F32(KVALUES[qs[j] & 15]) for j in range(16)] + \
           [d * F32(KVALUES[qs[j] >> 4]) for j in range(16)]


def deq_q2_k(b):
    scales, qs = b[0:16], b[16:80]
    d, dmin = half(b, 80), half(b, 82)
    out = []
    idx = 0
    for n in range(2):
        q = qs[32 * n:32 * n + 32]
        for shift in (0, 2, 4, 6):
            for half16 in range(2):
                sc = scales[idx]
                idx += 1
                dl, ml = d * F32(sc & 15), dmin * F32(sc >> 4)
                for l in range(16):
                    out.append(dl * F32((q[16 * half16 + l] >> shift) & 3) - ml)
    return out


def deq_q3_k(b):
    hmask, qs, raw = b[0:32], b[32:96], b[96:108]
    d = half(b, 108)
    aux = [int.from_bytes(bytes(raw[4 * i:4 * i + 4]), "little") for i in range(3)]
    k1, k2 = 0x03030303, 0x0F0F0F0F
    tmp = aux[2]
    words = [(aux[0] & k2) | (((tmp >> 0) & k1) << 4),
             (aux[1] & k2) | (((tmp >> 2) & k1) << 4),
             ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4),
             ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4)]
    scales = []
    for w in words:
        scales += [int(np.int8(np.uint8((w >> (8 * i)) & 0xFF))) for i in range(4)]
    out = []
    idx, m = 0, 1
    for n in range(2):
        q = qs[32 * n:32 * n + 32]
        for shift in (0, 2, 4, 6):
            for half16 in range(2):
                dl = d * F32(scales[idx] - 32)
                idx += 1
                for l in range(16):
                    i = 16 * half16 + l
                    v = ((q[i] >> shift) & 3) - (0 if hmask[i] & m else 4)
                    out.append(dl * F32(v))
            m <<= 1
    return out


def scale_min_k4(j, s):
    if j < 4:
        return s[j] & 63, s[j + 4] & 63
    return (s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)


def deq_q4_k_or_q5_k(b, five):
    d, dmin = half(b, 0), half(b, 2)
    s = b[4:16]
    qh = b[16:48] if five else None
    qs = b[48:176] if five else b[16:144]
    out = []
    for c in range(4):
        sc1, m1 = scale_min_k4(2 * c, s)
        sc2, m2 = scale_min_k4(2 * c + 1, s)
        d1, mm1 = d * F32(sc1), dmin * F32(m1)
        d2, mm2 = d * F32(sc2), dmin * F32(m2)
        q = qs[32 * c:32 * c + 32]
        for l in range(32):
            v = q[l] & 15
            if five and qh[l] & (1 << (2 * c)):
                v += 16
            out.append(d1 * F32(v) - mm1)
        for l in range(32):
            v = q[l] >> 4
            if five and qh[l] & (2 << (2 * c)):
                v += 16
            out.append(d2 * F32(v) - mm2)
    return out


def deq_q6_k(b):
    ql, qh = b[0:128], b[128:192]
    sc = [int(np.int8(np.uint8(v))) for v in b[192:208]]
    d = half(b, 208)
    out = [None] * 256
    for n in range(2):
        L, H, S = ql[64 * n:64 * n + 64], qh[32 * n:32 * n + 32], sc[8 * n:8 * n + 8]
        for l in range(32):
            i = l // 16
            q1 = ((L[l] & 15) | (((H[l] >> 0) & 3) << 4)) - 32
            q2 = ((L[l + 32] & 15) | (((H[l] >> 2) & 3) << 4)) - 32
            q3 = ((L[l] >> 4) | (((H[l] >> 4) & 3) << 4)) - 32
            q4 = ((L[l + 32] >> 4) | (((H[l] >> 6) & 3) << 4)) - 32
            base = 128 * n
            out[base + l] = d * F32(S[i]) * F32(q1)
            out[base + l + 32] = d * F32(S[i + 2]) * F32(q2)
            out[base + l + 64] = d * F32(S[i + 4]) * F32(q3)
            out[base + l + 96] = d * F32(S[i + 6]) * F32(q4)
    return out


def deq_iq4_xs(b):
    d = half(b, 0)
    scales_h = b[2] | (b[3] << 8)
    scales_l = b[4:8]
    qs = b[8:136]
    out = []
    for ib in range(8):
        ls = ((scales_l[ib // 2] >> (4 * (ib % 2))) & 15) | (((scales_h >> (2 * ib)) & 3) << 4)
        dl = d * F32(ls - 32)
        q = qs[16 * ib:16 * ib + 16]
        out += [dl * F32(KVALUES[q[j] & 15]) for j in range(16)]
        out += [dl * F32(KVALUES[q[j] >> 4]) for j in range(16)]
    return out


DEQUANTIZE = {
    "q4_0": deq_q4_0, "q4_1": deq_q4_1, "q5_0": deq_q5_0, "q5_1": deq_q5_1,
    "iq4_nl": deq_iq4_nl, "q2_k": deq_q2_k, "q3_k": deq_q3_k,
    "q4_k": lambda b: deq_q4_k_or_q5_k(b, False), "q5_k": lambda b: deq_q4_k_or_q5_k(b, True),
    "q6_k": deq_q6_k, "iq4_xs": deq_iq4_xs,
}


def random_half(rng):
    # Finite halves of both signs across the whole range, subnormals and zeros included.
    while True:
        h = int(rng.integers(0, 1 << 16))
        if (h >> 10) & 31 != 31:
            return h


def random_blocks(name, count, rng):
    per, size, halves = TYPES[name]
    data = bytearray(rng.integers(0, 256, size=count * size, dtype=np.uint8).tobytes())
    for i in range(count):
        for off in halves:
            h = random_half(rng) if rng.random() < 0.5 else \
                int(np.frombuffer(F32(rng.uniform(-0.05, 0.05)).astype("<f2").tobytes(), "<u2")[0])
            data[i * size + off] = h & 0xFF
            data[i * size + off + 1] = h >> 8
    return bytes(data)


def main():
    tool = sys.argv[1]
    isas = subprocess.run([tool, "isas"], check=True, capture_output=True, text=True).stdout.split()
    rng = np.random.default_rng(20261201)
    failures = []
    for name, (per, size, _) in TYPES.items():
        count = 64 if per == 32 else 12
        raw = random_blocks(name, count, rng)
        expected = []
        for i in range(count):
            expected += DEQUANTIZE[name](raw[i * size:(i + 1) * size])
        expected = np.array(expected, dtype=np.float32)
        assert expected.size == count * per
        for isa in isas:
            # The prefill path of the types whose prefill is int8 dot products on x quantized
            # per 32 values (VNNI) is not a dequantization: "row" only there.
            integer = subprocess.run([tool, "integer", name, isa], check=True, capture_output=True,
                                     text=True).stdout.strip() == "1"
            for path in ("row",) if integer else ("row", "gemm"):
                out = subprocess.run([tool, name, isa, path, str(count * per)], input=raw,
                                     check=True, capture_output=True).stdout
                got = np.frombuffer(out, dtype=np.float32)
                if got.size != expected.size:
                    failures.append("%s %s %s: %d values, expected %d" % (name, isa, path, got.size,
                                                                         expected.size))
                    continue
                if path == "row":
                    diff = np.nonzero(got.view(np.uint32) != expected.view(np.uint32))[0]
                else:  # a sum of w with zeros: -0 comes back as +0, every other value exact
                    diff = np.nonzero(got != expected)[0]
                if diff.size:
                    i = int(diff[0])
                    failures.append("%s %s %s: value %d (block %d) is %r, expected %r (%d differ)" % (
                        name, isa, path, i, i // per, float(got[i]), float(expected[i]), diff.size))
        print("%-7s %5d values, bit-exact on %s" % (name, count * per, " ".join(isas))
              if not any(f.startswith(name + " ") for f in failures) else "%-7s FAILED" % name)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
