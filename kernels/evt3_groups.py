"""EVT 3.0 decoding 32 words at a time in vector registers, for streams of one-event words.

A stream of ADDR_Y, ADDR_X and TIME_LOW words (one event per ADDR_X: how expelliarmus writes
EVT 3.0, and how a sensor sends isolated events) is decoded here a group of 32 words at once:
each lane's row and TIME_LOW come from a prefix maximum over the lanes (a key
``(lane + 1) << 16 | value`` for the words that set them, carried in from before the group
where no lane sets them), and the ADDR_X lanes' events are packed together with a vector
compress. Vector words (VECT_BASE_X, VECT_12, VECT_8), which real sensors send for busy rows,
are not handled here. A group that holds any other word type, or that would raise any
protocol violation (an address outside the geometry, a missing ADDR_Y, a TIME_LOW going
back), is not written: the plain decoder (``evt.decode_evt3``) decodes those words instead,
so events, violation counts and first offsets are exactly the plain decoder's, and through
it the reference's (``evt.decode_evt3_reference``). The tests check the whole decoder against
the reference on real files, camera-like streams with glitches and streams of sparse TIME_LOWs
going back, and one group against the plain decoder on clean and spoiled groups with every
kind of carried state.

The group is LLVM vector IR emitted through a numba intrinsic (``llvm.experimental.
vector.compress``, LLVM 19 or newer). On a target with AVX-512 it becomes a few dozen
vector instructions (vpcompressq into a register, then a plain store: a compress straight to
memory is microcoded and slow on AMD Zen 4). Elsewhere LLVM expands the compress lane by lane:
still correct, but half the plain decoder's speed (measured with a Haswell target), so the
readers use it only where ``NATIVE`` holds.
"""
from __future__ import annotations

import numba
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .evt import EVT3_TIME_HIGH_RANGE, S3_HAVE_TIME_HIGH, S3_LOW_UNDER, S3_OVERFLOWS, S3_TIME_HIGH, \
    S3_TIME_LOW, S3_Y, decode_evt3

GROUP = 32            # words per vector group (measured: 16 and 64 slower); its lane masks are i32
RUN_MIN = 32          # words the plain decoder takes after a group that could not be vectorised,
RUN_MAX = 1024        # doubling while groups keep failing (vector words, dense violations)

I1, I8, I16, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32), ir.IntType(64)


def _target_has_avx512() -> bool:
    """Whether numba compiles for a CPU with AVX-512F: the host's features, or NUMBA_CPU_FEATURES
    where set; a NUMBA_CPU_NAME other than "host" without features counts as no (unknown)."""
    if numba.config.CPU_FEATURES:
        return "+avx512f" in numba.config.CPU_FEATURES.split(",")
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        return False
    return bool(llvm_binding.get_host_cpu_features().get("avx512f", False))


COMPILES = llvm_binding.llvm_version_info >= (19,)   # llvm.experimental.vector.compress exists
NATIVE = COMPILES and _target_has_avx512()


def _vec(t, n=GROUP):
    return ir.VectorType(t, n)


def _const(t, v, n=GROUP):
    return ir.Constant(_vec(t, n), [ir.Constant(t, v)] * n)


def _lanes(values):
    return ir.Constant(_vec(I32, len(values)), list(values))


def _splat(b, value, t):
    v = b.insert_element(ir.Constant(_vec(t), ir.Undefined), value, ir.Constant(I32, 0))
    return b.shuffle_vector(v, ir.Constant(_vec(t), ir.Undefined), _lanes([0] * GROUP))


def _shift_up(b, v, s):
    """Lane j gets lane j - s; the first s lanes get 0."""
    return b.shuffle_vector(v, ir.Constant(v.type, None), _lanes([j - s if j >= s else GROUP for j in range(GROUP)]))


def _prefix_max(b, v):
    s = 1
    while s < GROUP:
        shifted = _shift_up(b, v, s)
        v = b.select(b.icmp_unsigned(">", v, shifted), v, shifted)
        s *= 2
    return v


def _any(b, mask):
    return b.icmp_unsigned("!=", b.bitcast(mask, I32), ir.Constant(I32, 0))


def _filled(b, key, carried):
    """The value of each lane's key (its low 16 bits), or ``carried`` where no lane up to it set one."""
    zero = _const(I32, 0)
    return b.select(b.icmp_unsigned("!=", key, zero), b.and_(key, _const(I32, 0xFFFF)), _splat(b, carried, I32))


@intrinsic
def evt3_group(typingctx, words, i, out, k, y, tl, tl_floor, t_high, width, height):
    """Decode ``words[i:i + GROUP]`` (ADDR_Y / ADDR_X / TIME_LOW only) with the carried row ``y``
    (-1: none yet), TIME_LOW ``tl``, the TIME_LOW below which one is a decrease (``tl_floor``,
    -1: none) and ``t_high`` (the time above TIME_LOW's 12 bits). Unless the group fails
    (another word type, or a violation), its events go to ``out[2 k:]`` (which must have room
    for GROUP events, even when fewer come: the compresses store whole vectors). Returns ``(failed,
    k after, y after, TIME_LOW after, 1 if the group set TIME_LOW)``. ``words`` must be a
    C-contiguous uint16 array and ``out`` a C-contiguous uint64 one (checked when typed: the
    vector load and stores ignore strides)."""
    contiguous = (isinstance(words, types.Array) and words.dtype == types.uint16 and words.ndim == 1
                  and words.layout == "C" and isinstance(out, types.Array) and out.dtype == types.uint64
                  and out.ndim == 1 and out.layout == "C")
    if not contiguous:
        raise numba.core.errors.TypingError(
            f"evt3_group needs C-contiguous uint16 words and uint64 out, got {words} and {out}")
    sig = types.UniTuple(types.int64, 5)(words, i, out, k, y, tl, tl_floor, t_high, width, height)

    def codegen(context, b, signature, args):
        words_a, i_, out_a, k_, y_, tl_, floor_, high_, width_, height_ = args
        src = context.make_array(signature.args[0])(context, b, words_a).data
        dst = context.make_array(signature.args[2])(context, b, out_a).data
        w = b.zext(b.load(b.bitcast(b.gep(src, [i_]), _vec(I16).as_pointer()), align=2), _vec(I32))
        typ = b.lshr(w, _const(I32, 12))
        is_y = b.icmp_unsigned("==", typ, _const(I32, 0))
        is_x = b.icmp_unsigned("==", typ, _const(I32, 2))
        is_t = b.icmp_unsigned("==", typ, _const(I32, 6))
        other = b.not_(b.or_(b.or_(is_y, is_x), is_t))
        lane_key = _lanes([(j + 1) << 16 for j in range(GROUP)])
        zero = _const(I32, 0)
        v11 = b.and_(w, _const(I32, 0x7FF))
        v12 = b.and_(w, _const(I32, 0xFFF))
        y_key = _prefix_max(b, b.select(is_y, b.or_(lane_key, v11), zero))
        t_key = _prefix_max(b, b.select(is_t, b.or_(lane_key, v12), zero))
        row = _filled(b, y_key, b.trunc(y_, I32))
        low = _filled(b, t_key, b.trunc(tl_, I32))
        before = _filled(b, _shift_up(b, t_key, 1), b.trunc(floor_, I32))   # TIME_LOW before each lane
        t_back = b.and_(is_t, b.icmp_signed("<", v12, before))
        inside = b.and_(b.icmp_unsigned("<", v11, _splat(b, b.trunc(width_, I32), I32)),
                        b.icmp_unsigned("<", row, _splat(b, b.trunc(height_, I32), I32)))   # row -1: outside
        failed = _any(b, b.or_(b.or_(other, t_back), b.and_(is_x, b.not_(inside))))
        pol = b.and_(b.lshr(w, _const(I32, 11)), _const(I32, 1))
        xyp = b.or_(b.zext(b.or_(v11, b.shl(row, _const(I32, 16))), _vec(I64)),
                    b.shl(b.zext(pol, _vec(I64)), _const(I64, 32)))
        t = b.or_(b.zext(low, _vec(I64)), _splat(b, high_, I64))
        pairs = b.shuffle_vector(xyp, t, _lanes([j // 2 + (GROUP if j % 2 else 0) for j in range(2 * GROUP)]))
        keep = b.shuffle_vector(is_x, is_x, _lanes([j // 2 for j in range(2 * GROUP)]))
        compress = cgutils.get_or_insert_function(
            b.module, ir.FunctionType(_vec(I64, 8), [_vec(I64, 8), _vec(I1, 8), _vec(I64, 8)]),
            "llvm.experimental.vector.compress.v8i64")
        popcount8 = cgutils.get_or_insert_function(b.module, ir.FunctionType(I8, [I8]), "llvm.ctpop.i8")
        with b.if_then(b.not_(failed)):
            # compresses of 8 lanes (4 events each), not one wide one: LLVM splits a wide one
            # through the stack with aligned stores at unaligned offsets (a crash, seen on LLVM 22)
            at = b.mul(k_, ir.Constant(I64, 2))
            for q in range(2 * GROUP // 8):
                part = _lanes(range(8 * q, 8 * q + 8))
                values = b.shuffle_vector(pairs, ir.Constant(pairs.type, ir.Undefined), part)
                mask = b.shuffle_vector(keep, ir.Constant(keep.type, ir.Undefined), part)
                packed = b.call(compress, [values, mask, ir.Constant(_vec(I64, 8), ir.Undefined)])
                b.store(packed, b.bitcast(b.gep(dst, [at]), _vec(I64, 8).as_pointer()), align=8)
                at = b.add(at, b.zext(b.call(popcount8, [b.bitcast(mask, I8)]), I64))
        popcount = cgutils.get_or_insert_function(b.module, ir.FunctionType(I32, [I32]), "llvm.ctpop.i32")
        n_x = b.zext(b.call(popcount, [b.bitcast(is_x, I32)]), I64)
        last = ir.Constant(I32, GROUP - 1)
        return context.make_tuple(b, signature.return_type, [
            b.zext(failed, I64), b.add(k_, n_x), b.sext(b.extract_element(row, last), I64),
            b.sext(b.extract_element(low, last), I64), b.zext(_any(b, is_t), I64)])

    return sig, codegen


@njit(cache=True, nogil=True)
def decode_evt3_grouped(words, out, state, counts, first, byte_offset, width, height):
    """``evt.decode_evt3`` (same arguments, state, results), vector groups where they hold."""
    cap = out.shape[0] // 2
    n = min(words.shape[0], cap - 12)
    w_lim = min(width, 1 << 16)    # coordinates are 11 bits: the limits fit the 32-bit lanes
    h_lim = min(height, 1 << 16)
    k = 0
    i = 0
    run = RUN_MIN
    while i < n:
        if state[S3_HAVE_TIME_HIGH] != 0:
            y = state[S3_Y]
            tl = state[S3_TIME_LOW]
            under = state[S3_OVERFLOWS] * EVT3_TIME_HIGH_RANGE + state[S3_TIME_HIGH]
            floor = tl if state[S3_LOW_UNDER] == under else -1
            set_low = False
            i0 = i
            while i + GROUP <= n and k + GROUP <= cap:
                failed, k2, y2, tl2, low_set = evt3_group(words, i, out, k, y, tl, floor, under << 12, w_lim, h_lim)
                if failed:
                    break
                k = k2
                y = y2
                tl = tl2
                i += GROUP
                if low_set:
                    floor = tl2
                    set_low = True
            state[S3_Y] = y
            state[S3_TIME_LOW] = tl
            if set_low:
                state[S3_LOW_UNDER] = under
            run = RUN_MIN if i - i0 >= 4 * GROUP else min(2 * run, RUN_MAX)
        j = min(i + run, n)
        k2, used = decode_evt3(words[i:j], out[2 * k:], state, counts, first, byte_offset + 2 * i, width, height)
        k += k2
        i += used
        if i < j:    # the plain decoder stopped early: ``out`` is full
            break
    return k, i
