"""The Triton kernels of ``eventflow.kernels.snn_gpu`` (imported by it on first use: importing
this module needs Triton). Their references, wrappers and documentation are in ``snn_gpu``."""
import triton
import triton.language as tl

__all__ = ["lif_flat_kernel", "lif_pool2_kernel"]


@triton.jit
def _lif(x, v, tau, v_reset, threshold, kt, ks,
         DECAY_INPUT: tl.constexpr, RESET_ZERO: tl.constexpr, SOFT: tl.constexpr, DALIF: tl.constexpr):
    # (spike as float32, new membrane); the operations of eventflow.snn.neurons, same order
    if DALIF:
        h = (v_reset + kt * (v - v_reset)) + ks * x
    elif DECAY_INPUT:
        if RESET_ZERO:
            h = v + tl.math.div_rn(x - v, tau)
        else:
            h = v + tl.math.div_rn((v_reset - v) + x, tau)
    else:
        if RESET_ZERO:
            h = (v + tl.math.div_rn(-v, tau)) + x
        else:
            h = (v + tl.math.div_rn(v_reset - v, tau)) + x
    fired = h >= threshold
    if SOFT:
        v_new = tl.where(fired, h - threshold, h)
    else:
        v_new = tl.where(fired, v_reset, h)
    return fired.to(tl.float32), v_new

@triton.jit
def lif_flat_kernel(cur_ptr, v_ptr, s_ptr, kt_ptr, ks_ptr, n, inner, channels,
                    tau, v_reset, threshold,
                    DECAY_INPUT: tl.constexpr, RESET_ZERO: tl.constexpr, SOFT: tl.constexpr,
                    DALIF: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(cur_ptr + offs, mask=mask, other=0.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    if DALIF:
        c = (offs // inner) % channels
        kt = tl.load(kt_ptr + c, mask=mask, other=0.0)
        ks = tl.load(ks_ptr + c, mask=mask, other=0.0)
    else:
        kt = 0.0
        ks = 0.0
    s, v_new = _lif(x, v, tau, v_reset, threshold, kt, ks, DECAY_INPUT, RESET_ZERO, SOFT, DALIF)
    tl.store(v_ptr + offs, v_new, mask=mask)
    tl.store(s_ptr + offs, s, mask=mask)

@triton.jit
def lif_pool2_kernel(cur_ptr, v_ptr, s_ptr, kt_ptr, ks_ptr, n_blocks, channels, height, width,
                     h_blocks, w_blocks, h_out, w_out,
                     tau, v_reset, threshold,
                     DECAY_INPUT: tl.constexpr, RESET_ZERO: tl.constexpr, SOFT: tl.constexpr,
                     DALIF: tl.constexpr, BLOCK: tl.constexpr):
    # one lane per 2x2 block of one (stream, channel) image: the four neurons stepped, their
    # spikes max-pooled; blocks cut by an odd edge step their neurons but write no output
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_blocks
    bx = offs % w_blocks
    t = offs // w_blocks
    by = t % h_blocks
    image = t // h_blocks          # stream * channels + channel
    if DALIF:
        c = image % channels
        kt = tl.load(kt_ptr + c, mask=mask, other=0.0)
        ks = tl.load(ks_ptr + c, mask=mask, other=0.0)
    else:
        kt = 0.0
        ks = 0.0
    y0 = 2 * by
    x0 = 2 * bx
    base = (image * height + y0) * width + x0
    pooled = tl.zeros([BLOCK], dtype=tl.float32)
    for dy in tl.static_range(2):
        for dx in tl.static_range(2):
            m = mask & (y0 + dy < height) & (x0 + dx < width)
            p = base + dy * width + dx
            x = tl.load(cur_ptr + p, mask=m, other=0.0)
            v = tl.load(v_ptr + p, mask=m, other=0.0)
            s, v_new = _lif(x, v, tau, v_reset, threshold, kt, ks, DECAY_INPUT, RESET_ZERO, SOFT, DALIF)
            tl.store(v_ptr + p, v_new, mask=m)
            pooled = tl.maximum(pooled, tl.where(m, s, 0.0))
    out = mask & (by < h_out) & (bx < w_out)
    tl.store(s_ptr + (image * h_out + by) * w_out + bx, pooled, mask=out)
