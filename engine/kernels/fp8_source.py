"""The C source of the FP8 (E4M3) conversions that the GPU target's FP8 kernels include
(``engine/kernels/gpu/fp8.py`` says what they compute). It lives outside the GPU package so
that it can be read without CuPy: the CPU tests compile the same text with the host's C
compiler and check it against ml_dtypes."""

CONVERSIONS = r"""
__device__ __forceinline__ float engine_fp8_to_float(unsigned char b) {
    unsigned int sign = ((unsigned int)b & 0x80u) << 24;
    unsigned int exponent = ((unsigned int)b >> 3) & 0xfu, mantissa = (unsigned int)b & 7u;
    if ((b & 0x7fu) == 0x7fu) return __uint_as_float(sign | 0x7fc00000u);  /* NaN */
    float magnitude = exponent == 0u
        ? (float)mantissa * 0.001953125f  /* subnormal: mantissa * 2**-9, exact */
        : __uint_as_float(((exponent + 120u) << 23) | (mantissa << 20));
    return __uint_as_float(__float_as_uint(magnitude) | sign);
}

__device__ __forceinline__ unsigned char engine_float_to_fp8(float x, int saturate) {
    unsigned int u = __float_as_uint(x);
    unsigned char sign = (unsigned char)((u >> 24) & 0x80u);
    unsigned int a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (unsigned char)(sign | 0x7fu);  /* NaN stays NaN */
    if (a >= 0x3c800000u) {  /* |x| >= 2**-6: a normal code (or past the largest) */
        unsigned int rounded = a + 0x7ffffu + ((a >> 20) & 1u);  /* to 3 mantissa bits, even */
        unsigned int code = (rounded >> 20) - (120u << 3);  /* exponent bias 127 -> 7 */
        if (code > 0x7eu) return (unsigned char)(sign | (saturate ? 0x7eu : 0x7fu));
        return (unsigned char)(sign | code);
    }
    /* subnormal codes 0..8 (8 is the smallest normal, 2**-6): |x| * 2**9 is exact */
    return (unsigned char)(sign | (unsigned int)rintf(__uint_as_float(a) * 512.0f));
}
"""
