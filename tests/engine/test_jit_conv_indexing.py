"""The implicit-GEMM convolution tactics (``engine/kernels/gpu/jit_conv.py``) without a GPU:
their registration, read from the source, and their index arithmetic emulated in NumPy.

The emulation mirrors the kernels' expressions, thread by thread (vectorized over the 256
threads of a block): the per-layer tap table, the A-tile loads, the B-tile gather from the
NCHW input, the HALF kernel's ``ldmatrix`` / ``mma.sync.m16n8k16`` lane arithmetic (with the
fragment layouts of the PTX ISA), the FLOAT kernel's thread tile, and the epilogue's stores.
A whole convolution computed that way must equal a plain NumPy convolution, and every output
element must be written exactly once. Keep the mirrored expressions in step with the kernel.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine as trt

GPU = Path(trt.__file__).parent / "kernels" / "gpu"
SOURCE = GPU / "jit_conv.py"
RNG = np.random.default_rng(11)


def module_constants() -> dict[str, object]:
    """The module-level literal constants of jit_conv.py (tile sizes)."""
    constants: dict[str, object] = {}
    for node in ast.parse(SOURCE.read_text()).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue
        if isinstance(target, ast.Name):
            constants[target.id] = value
        elif isinstance(target, ast.Tuple):
            for name, item in zip(target.elts, value):
                assert isinstance(name, ast.Name)
                constants[name.id] = item
    return constants


CONSTANTS = module_constants()
BM, BN, THREADS = CONSTANTS["BLOCK_M"], CONSTANTS["BLOCK_N"], CONSTANTS["THREADS"]
BLOCK_K = CONSTANTS["BLOCK_K"]
ROWS = THREADS // BN  # B-tile rows gathered per pass (the kernel's ROWS)
A_LD, B_LD = BLOCK_K["float16"] + 8, BN + 8  # the HALF kernel's shared-memory row lengths
T = np.arange(THREADS)


# -- registration ------------------------------------------------------------------------------
def registered_tactics() -> set[tuple[str, str, str | None]]:
    """(layer type, tactic name, source) of each ``@kernel`` in jit_conv.py."""
    found = set()
    for node in ast.parse(SOURCE.read_text()).body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "id", "") == "kernel":
                keywords = {k.arg: ast.literal_eval(k.value) for k in decorator.keywords
                            if k.arg in ("name", "source", "backend")}
                assert keywords["backend"] == "gpu"
                layer_type = decorator.args[0]
                assert isinstance(layer_type, ast.Attribute)
                found.add((layer_type.attr, keywords["name"], keywords.get("source")))
    return found


def test_tactics_are_registered_with_the_jit_convolutions_source() -> None:
    assert registered_tactics() == {
        ("CONVOLUTION", "gpu.conv_jit_implicit_gemm", "JIT_CONVOLUTIONS"),
        ("FUSED_CONVOLUTION", "gpu.fused_conv_jit_implicit_gemm", "JIT_CONVOLUTIONS"),
    }
    assert "JIT_CONVOLUTIONS" in trt.TacticSource.__members__
    # Registered after the cuBLAS and cuDNN tactics: optimization level 0 keeps its choice.
    init = (GPU / "__init__.py").read_text()
    assert init.index("    jit_conv,") > init.index("    cudnn_conv,")


def test_engine_imports_without_cupy() -> None:
    script = ("import sys; sys.modules['cupy'] = None\n"
              "import engine\n"
              "from engine.kernels.backends import gpu_available, load_backend\n"
              "assert not gpu_available()\n"
              "load_backend('cpu')\n"
              "assert 'engine.kernels.gpu.jit_conv' not in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


# -- the kernel, mirrored ----------------------------------------------------------------------
def ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def taps_table(kernel: tuple[int, int], dilation: tuple[int, int], depth_pad: int
               ) -> np.ndarray:
    """jit_conv._taps: per reduction index, (c, r * dh, s * dw, 0)."""
    crs = np.arange(depth_pad)
    channel, tap = np.divmod(crs, kernel[0] * kernel[1])
    r, s = np.divmod(tap, kernel[1])
    return np.stack([channel, r * dilation[0], s * dilation[1], np.zeros_like(crs)], 1)


def arranged_kernel(w: np.ndarray, bk: int) -> np.ndarray:
    """jit_conv._arranged_kernel's HALF layout ``[Kpad, CRSpad]`` (FLOAT: its transpose)."""
    maps, depth = w.shape[0], int(np.prod(w.shape[1:]))
    padded = np.zeros((ceil_to(maps, BM), ceil_to(depth, bk)))
    padded[:maps, :depth] = w.reshape(maps, depth)
    return padded


def gather(x: np.ndarray, taps: np.ndarray, n0: int, k0: int, bk: int, sizes: dict
           ) -> np.ndarray:
    """The block's B tile ``[bk, BN]`` as its threads gather it (position_of + gather)."""
    channels, height, width = x.shape[1:]
    n = n0 + T % BN
    ok = n < sizes["N"]
    b = np.where(ok, n // sizes["P"], 0)
    p = np.where(ok, n - b * sizes["P"], 0)
    oh, ow = p // sizes["OW"], p % sizes["OW"]
    ih0, iw0 = oh * sizes["sh"] - sizes["ph"], ow * sizes["sw"] - sizes["pw"]
    flat = x.reshape(-1)
    tile = np.full((bk, BN), np.nan)
    for i in range(bk // ROWS):
        row = T // BN + ROWS * i
        crs = k0 + row
        tap = taps[np.minimum(crs, len(taps) - 1)]
        ih, iw = ih0 + tap[:, 1], iw0 + tap[:, 2]
        inside = ok & (crs < sizes["CRS"]) & (ih >= 0) & (ih < height) & (iw >= 0) & \
            (iw < width)
        offset = b * channels * height * width + (tap[:, 0] * height + ih) * width + iw
        values = np.where(inside, flat[np.where(inside, offset, 0)], 0.0)
        assert np.isnan(tile[row, T % BN]).all(), "a B-tile element gathered twice"
        tile[row, T % BN] = values
    assert not np.isnan(tile).any(), "a B-tile element not gathered"
    return tile


def half_a_tile(a: np.ndarray, m0: int, k0: int) -> np.ndarray:
    """As[BM][A_LD] after the HALF kernel's 16-byte loads (pads NaN: never read)."""
    tile = np.full((BM, A_LD), np.nan)
    a_row, a_col = T >> 2, (T & 3) * 8
    for e in range(8):
        tile[a_row, a_col + e] = a[m0 + a_row, k0 + a_col + e]
    return tile


def float_a_tile(wt: np.ndarray, m0: int, k0: int) -> np.ndarray:
    """As[BK][BM] after the FLOAT kernel's float4 loads from ``wt`` ``[CRSpad, Kpad]``."""
    bk = BLOCK_K["float32"]
    tile = np.full((bk, BM), np.nan)
    a_row, a_col = T >> 4, (T & 15) * 4
    for e in range(4):
        tile[a_row, a_col + e] = wt[k0 + a_row, m0 + a_col + e]
    assert not np.isnan(tile).any()
    return tile


def ldmatrix_x4(smem: np.ndarray, rows: np.ndarray, cols: np.ndarray, trans: bool
                ) -> np.ndarray:
    """PTX ldmatrix .m8n8.x4 (.trans): lanes 8j..8j+7 give the rows of matrix j; lane l
    receives, per matrix, the pair at row l / 4, columns 2 (l % 4) + {0, 1} (transposed:
    rows 2 (l % 4) + {0, 1}, column l / 4). Returns [32 lanes, 4 registers, 2 halves]."""
    lanes = np.arange(32)
    regs = np.empty((32, 4, 2))
    for j in range(4):
        matrix = np.stack([smem[rows[8 * j + q], cols[8 * j + q]:cols[8 * j + q] + 8]
                           for q in range(8)])
        for half in range(2):
            regs[:, j, half] = matrix[2 * (lanes % 4) + half, lanes // 4] if trans else \
                matrix[lanes // 4, 2 * (lanes % 4) + half]
    return regs


def mma_16816(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """PTX mma.m16n8k16 .row.col with its fragment layouts (groupID g = lane / 4,
    threadID_in_group q = lane % 4): c[32, 4] += A(a[32, 4, 2]) @ B(b[32, 2, 2])."""
    lanes = np.arange(32)
    g, q = lanes // 4, lanes % 4
    a_matrix, b_matrix = np.zeros((16, 16)), np.zeros((16, 8))
    for half in range(2):
        a_matrix[g, 2 * q + half] = a[:, 0, half]
        a_matrix[g + 8, 2 * q + half] = a[:, 1, half]
        a_matrix[g, 2 * q + 8 + half] = a[:, 2, half]
        a_matrix[g + 8, 2 * q + 8 + half] = a[:, 3, half]
        b_matrix[2 * q + half, g] = b[:, 0, half]
        b_matrix[2 * q + 8 + half, g] = b[:, 1, half]
    d = a_matrix @ b_matrix
    c[:, 0] += d[g, 2 * q]
    c[:, 1] += d[g, 2 * q + 1]
    c[:, 2] += d[g + 8, 2 * q]
    c[:, 3] += d[g + 8, 2 * q + 1]


def half_block_products(a_tile: np.ndarray, b_tile: np.ndarray, cs: np.ndarray) -> None:
    """One tile's products by the HALF kernel's 8 warps, added into ``cs`` [BM, BN] as the
    kernel stages its accumulators (acc[i][j] -> Cs rows and columns)."""
    lane = np.arange(32)
    for warp in range(THREADS // 32):
        wm, wn = (warp & 1) * 32, (warp >> 1) * 32
        acc = np.zeros((2, 4, 32, 4))
        for kk in range(0, BLOCK_K["float16"], 16):
            a = [ldmatrix_x4(a_tile, wm + i * 16 + (lane & 15), kk + (lane >> 4) * 8, False)
                 for i in range(2)]
            b = []
            for j in range(2):
                r = ldmatrix_x4(b_tile, kk + (lane & 15), wn + j * 16 + (lane >> 4) * 8, True)
                b += [r[:, 0:2], r[:, 2:4]]
            for i in range(2):
                for j in range(4):
                    mma_16816(acc[i, j], a[i], b[j])
        for i in range(2):
            for j in range(4):
                row, col = wm + i * 16 + (lane >> 2), wn + j * 8 + (lane & 3) * 2
                cs[row, col] += acc[i, j, :, 0]
                cs[row, col + 1] += acc[i, j, :, 1]
                cs[row + 8, col] += acc[i, j, :, 2]
                cs[row + 8, col + 1] += acc[i, j, :, 3]


def float_block_products(a_tile: np.ndarray, b_tile: np.ndarray, cs: np.ndarray) -> None:
    """One tile's products by the FLOAT kernel's 4 x 8 thread tiles, staged into ``cs``."""
    tx, ty = T & 15, T >> 4
    for i in range(4):
        for j in range(4):
            cs[ty * 4 + i, tx * 4 + j] += (a_tile[:, ty * 4 + i] * b_tile[:, tx * 4 + j]).sum(0)
            cs[ty * 4 + i, BN // 2 + tx * 4 + j] += (
                a_tile[:, ty * 4 + i] * b_tile[:, BN // 2 + tx * 4 + j]).sum(0)


def emulated_convolution(x: np.ndarray, w: np.ndarray, bias: np.ndarray,
                         residual: np.ndarray, stride: tuple[int, int],
                         pre: tuple[int, int], out: tuple[int, int],
                         dilation: tuple[int, int], half: bool) -> np.ndarray:
    """The convolution as the kernel computes it, block by block and tile by tile."""
    batch, maps = x.shape[0], w.shape[0]
    bk = BLOCK_K["float16" if half else "float32"]
    a = arranged_kernel(w, bk)
    depth_pad = a.shape[1]
    taps = taps_table(w.shape[2:], dilation, depth_pad)
    positions = out[0] * out[1]
    sizes = {"N": batch * positions, "P": positions, "OW": out[1], "sh": stride[0],
             "sw": stride[1], "ph": pre[0], "pw": pre[1], "CRS": w[0].size}
    y = np.full(batch * maps * positions, np.nan)
    res = residual.reshape(-1)
    for by in range(a.shape[0] // BM):
        for bx in range(-(-sizes["N"] // BN)):
            m0, n0 = by * BM, bx * BN
            cs = np.zeros((BM, BN))
            for k0 in range(0, depth_pad, bk):
                b_tile = gather(x, taps, n0, k0, bk, sizes)
                if half:
                    padded_b = np.full((bk, B_LD), np.nan)
                    padded_b[:, :BN] = b_tile
                    half_block_products(half_a_tile(a, m0, k0), padded_b, cs)
                else:
                    float_block_products(float_a_tile(a.T, m0, k0), b_tile, cs)
            # The epilogue: thread t writes column t % BN, rows t / BN + ROWS * i.
            column = T % BN
            n = n0 + column
            live = n < sizes["N"]
            b, p = n // positions, n % positions
            base = b * maps * positions + p
            for i in range(BM // ROWS):
                row = T // BN + ROWS * i
                m = m0 + row
                write = live & (m < maps)
                at = (base + m * positions)[write]
                assert np.isnan(y[at]).all(), "an output written twice"
                y[at] = cs[row, column][write] + bias[m[write]] + res[at]
    assert not np.isnan(y).any(), "an output never written"
    return y.reshape(batch, maps, *out)


def reference_convolution(x: np.ndarray, w: np.ndarray, stride: tuple[int, int],
                          pre: tuple[int, int], post: tuple[int, int],
                          dilation: tuple[int, int]) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (0, 0), (pre[0], post[0]), (pre[1], post[1])))
    (kh, kw), (dh, dw), (sh, sw) = w.shape[2:], dilation, stride
    oh = (padded.shape[2] - (dh * (kh - 1) + 1)) // sh + 1
    ow = (padded.shape[3] - (dw * (kw - 1) + 1)) // sw + 1
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for r in range(kh):
        for s in range(kw):
            window = padded[:, :, r * dh:r * dh + sh * (oh - 1) + 1:sh,
                            s * dw:s * dw + sw * (ow - 1) + 1:sw]
            y += np.einsum("bchw,kc->bkhw", window, w[:, :, r, s])
    return y


GEOMETRIES = {  # name: (batch, channels, maps, spatial, kernel, stride, pre, post, dilation)
    "1x1": (2, 17, 3, (5, 7), (1, 1), (1, 1), (0, 0), (0, 0), (1, 1)),
    "3x3-pad1": (1, 3, 17, (9, 11), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
    "7x7-stride2-pad3": (1, 3, 70, (13, 11), (7, 7), (2, 2), (3, 3), (3, 3), (1, 1)),
    "dilation2": (5, 17, 5, (9, 8), (3, 3), (1, 1), (2, 2), (2, 2), (2, 2)),
    "asymmetric-pads": (2, 5, 9, (7, 9), (3, 2), (2, 1), (0, 2), (1, 0), (1, 2)),
    "deep-reduction": (1, 130, 66, (5, 6), (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),
}


@pytest.mark.parametrize("half", [True, False], ids=["half", "float"])
@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_emulated_kernel_computes_the_convolution(name: str, half: bool) -> None:
    batch, channels, maps, spatial, kernel, stride, pre, post, dilation = GEOMETRIES[name]
    x = RNG.standard_normal((batch, channels, *spatial))
    w = RNG.standard_normal((maps, channels, *kernel))
    bias = RNG.standard_normal(maps)
    want = reference_convolution(x, w, stride, pre, post, dilation)
    residual = RNG.standard_normal(want.shape)
    got = emulated_convolution(x, w, bias, residual, stride, pre, want.shape[2:], dilation,
                               half)
    np.testing.assert_allclose(got, want + bias[:, None, None] + residual, rtol=1e-10,
                               atol=1e-10)
