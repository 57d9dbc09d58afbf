//! The product with an int8 bundle's matrices, in integers.
//!
//! Each input row is quantised to 16-bit integers as it arrives (symmetric, one scale per row,
//! rounded to nearest, ties to even:
//! `x ≈ sx xq`, `sx = max |x| / A`), the sums `xq q` run in 32-bit integers, exactly, and each
//! output is scaled once: `y[j] = bias[j] + (sx scale[j]) Σ xq q`. The weights stay int8 (a
//! quarter of f32's bytes) and a multiply-add takes two weights of two input rows at once:
//! AVX2's `vpmaddwd` (eight columns) and WebAssembly's `i32x4.dot_i16x8_s` (four), where
//! widening int8 to f32 first costs two instructions a weight and computes no faster than f16
//! (BENCHMARKS.md, "An int8 kernel, tried and not merged").
//!
//! Integer sums do not depend on their order, so every path (AVX2, SIMD128, plain Rust) gives
//! the same bits, natively and in the browser. The only rounding is the activation's: `A` is
//! 32,767 (or less where `k` would let a sum overflow), half a unit in 32,767 of the row's
//! largest value, well under an f16 weight's relative rounding (2^-11).

/// A weight matrix as an int8 bundle stores it (`q` PyTorch's `[out, in]` rows, one scale each),
/// rearranged for [`linear`]: two input rows interleaved per output column, `[⌈in/2⌉, out, 2]`
/// (an odd last input row paired with zeros).
#[derive(Clone, Debug)]
pub struct Int8Matrix {
    /// `in`: the input's width.
    k: usize,
    /// `out`: the output's width.
    n: usize,
    /// `[⌈k/2⌉, n, 2]`: `pairs[p][j] = (q[j][2p], q[j][2p + 1])`.
    pairs: Vec<i8>,
    /// `[n]`: `w[j][i] = q[j][i] × scales[j]`.
    scales: Vec<f32>,
}

impl Int8Matrix {
    /// From PyTorch's layout: `q` `[out, in]` row-major, `scales` `[out]`.
    ///
    /// # Panics
    /// When the lengths do not fit (a caller's bug: [`crate::quant`] checks a file first).
    pub fn from_rows(q: &[i8], scales: &[f32]) -> Self {
        let n = scales.len();
        assert!(
            n > 0 && q.len().is_multiple_of(n),
            "{} weights for {n} rows",
            q.len()
        );
        let k = q.len() / n;
        let mut pairs = vec![0i8; k.div_ceil(2) * n * 2];
        for (j, row) in q.chunks_exact(k).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                pairs[(i / 2 * n + j) * 2 + i % 2] = v;
            }
        }
        Self {
            k,
            n,
            pairs,
            scales: scales.to_vec(),
        }
    }

    /// `[in, out]`, Burn's layout of the weight.
    pub fn dims(&self) -> [usize; 2] {
        [self.k, self.n]
    }

    /// The weight `q[j][i] × scales[j]` at Burn's `[i, j]`.
    pub fn weight(&self, i: usize, j: usize) -> f32 {
        self.pairs[(i / 2 * self.n + j) * 2 + i % 2] as f32 * self.scales[j]
    }
}

/// The largest quantised activation for an input of width `k`: 32,767, or less where `k`
/// products of it with an int8 weight (up to 128 in magnitude) could overflow an i32.
fn activation_max(k: usize) -> i32 {
    (i32::MAX as usize / (128 * k)).min(i16::MAX as usize) as i32
}

/// `v` rounded to the nearest integer, ties to even (`f32::round_ties_even`), for
/// `|v| < 2^22`: adding 1.5 × 2^23 leaves the integer in the low bits of the mantissa, read
/// from there. A conversion (`as i32`, or `round`, a `libm` call without SSE4.1) would be
/// scalar code per value; this vectorises.
#[inline(always)]
fn round(v: f32) -> i32 {
    const SHIFT: f32 = 12_582_912.0;
    ((v + SHIFT).to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32)
}

/// `y = x w + bias` for `w` an [`Int8Matrix`]: `x` `[rows, k]`, `y` `[rows, n]`.
pub(super) fn linear(x: &[f32], w: &Int8Matrix, bias: Option<&[f32]>, y: &mut [f32]) {
    let (k, n) = (w.k, w.n);
    let rows = x.len() / k;
    let half = k.div_ceil(2);
    // Each row's two activations of a pair as one u32, low half first, as the products read
    // them: [rows, ⌈k/2⌉].
    let mut xq = vec![0u32; rows * half];
    let mut sx = vec![0.0f32; rows];
    let top = activation_max(k);
    for ((xr, qr), s) in x
        .chunks_exact(k)
        .zip(xq.chunks_exact_mut(half))
        .zip(&mut sx)
    {
        // The largest magnitude, compared as bits (as integers they order as the floats do),
        // which vectorises where `f32::max` does not; a NaN comes out and spreads to `y`.
        let max = f32::from_bits(
            xr.iter()
                .map(|v| v.to_bits() & 0x7fff_ffff)
                .max()
                .unwrap_or(0),
        );
        *s = max / top as f32;
        let inverse = if max > 0.0 { top as f32 / max } else { 0.0 };
        for (pair, q) in xr.chunks(2).zip(qr.iter_mut()) {
            let low = round(pair[0] * inverse) as i16 as u16 as u32;
            let high = pair.get(1).map_or(0, |&v| round(v * inverse)) as i16 as u16 as u32;
            *q = low | high << 16;
        }
    }
    let mut sums = vec![0i32; rows * n]; // [rows, n]
    accumulate(&xq, &w.pairs, n, half, &mut sums);
    for ((yr, sr), &s) in y.chunks_exact_mut(n).zip(sums.chunks_exact(n)).zip(&sx) {
        let scaled = yr.iter_mut().zip(sr).zip(&w.scales);
        match bias {
            Some(b) => scaled
                .zip(b)
                .for_each(|(((y, &sum), &c), &b)| *y = b + sum as f32 * (s * c)),
            None => scaled.for_each(|((y, &sum), &c)| *y = sum as f32 * (s * c)),
        }
    }
}

/// `sums += xq pairs` on the widest path the CPU has.
fn accumulate(xq: &[u32], pairs: &[i8], n: usize, half: usize, sums: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { x86::accumulate(xq, pairs, n, half, sums) };
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    return by_blocks::<wasm::Simd128>(xq, pairs, n, half, sums);
    #[allow(unreachable_code)]
    by_blocks::<Scalar>(xq, pairs, n, half, sums)
}

/// Pairs of input rows read together: a block of weights is read from memory once for all
/// the input's rows, and each output is loaded and stored once per block.
const BLOCK: usize = 8;

/// A vector of `COLUMNS` i32 sums and the multiply-add of two weight rows into it.
trait Lanes {
    const COLUMNS: usize;
    type Sums: Copy;
    type Weights: Copy;
    /// Two activations as [`madd`](Self::madd) reads them.
    type Pair: Copy;
    /// `2 × COLUMNS` int8 weights, `COLUMNS` columns of one pair, widened.
    fn weights(pairs: &[i8]) -> Self::Weights;
    fn load(sums: &[i32]) -> Self::Sums;
    fn store(sums: &mut [i32], v: Self::Sums);
    /// Two i16 activations in a u32, low half first, made ready for every column.
    fn pair(a: u32) -> Self::Pair;
    /// `v[c] + w[c].0 a.0 + w[c].1 a.1` for each column `c`.
    fn madd(v: Self::Sums, w: Self::Weights, a: Self::Pair) -> Self::Sums;
}

/// One column at a time: the tail of every path, and the whole product elsewhere.
struct Scalar;

impl Lanes for Scalar {
    const COLUMNS: usize = 1;
    type Sums = i32;
    type Weights = (i32, i32);
    type Pair = (i32, i32);

    #[inline(always)]
    fn weights(pairs: &[i8]) -> (i32, i32) {
        (pairs[0] as i32, pairs[1] as i32)
    }

    #[inline(always)]
    fn load(sums: &[i32]) -> i32 {
        sums[0]
    }

    #[inline(always)]
    fn store(sums: &mut [i32], v: i32) {
        sums[0] = v;
    }

    #[inline(always)]
    fn pair(a: u32) -> (i32, i32) {
        (a as u16 as i16 as i32, (a >> 16) as u16 as i16 as i32)
    }

    #[inline(always)]
    fn madd(v: i32, w: (i32, i32), a: (i32, i32)) -> i32 {
        v + w.0 * a.0 + w.1 * a.1
    }
}

/// `sums += xq pairs`: `xq` `[rows, half]` (pairs of activations), `pairs` `[half, n, 2]`,
/// `sums` `[rows, n]`. `BLOCK` pairs at a time, then the last few one by one; columns
/// `L::COLUMNS` at a time, the last few one by one.
#[inline(always)]
fn by_blocks<L: Lanes>(xq: &[u32], pairs: &[i8], n: usize, half: usize, sums: &mut [i32]) {
    let full = half - half % BLOCK;
    for p in (0..full).step_by(BLOCK) {
        pairs_into::<L, BLOCK>(xq, pairs, p, n, half, sums);
    }
    for p in full..half {
        pairs_into::<L, 1>(xq, pairs, p, n, half, sums);
    }
}

/// The pairs `p..p + B` into every column and row.
#[inline(always)]
fn pairs_into<L: Lanes, const B: usize>(
    xq: &[u32],
    pairs: &[i8],
    p: usize,
    n: usize,
    half: usize,
    sums: &mut [i32],
) {
    let ws: [&[i8]; B] = std::array::from_fn(|b| &pairs[(p + b) * 2 * n..][..2 * n]);
    let wide = n - n % L::COLUMNS;
    columns::<L, B>(xq, ws, p, half, 0..wide, sums);
    columns::<Scalar, B>(xq, ws, p, half, wide..n, sums);
}

/// The columns `cols` (a multiple of `L::COLUMNS` long) of the pairs `p..p + B`, each
/// block of weights widened once for all the rows.
#[inline(always)]
fn columns<L: Lanes, const B: usize>(
    xq: &[u32],
    ws: [&[i8]; B],
    p: usize,
    half: usize,
    cols: std::ops::Range<usize>,
    sums: &mut [i32],
) {
    let n = ws[0].len() / 2;
    let widen = |j: usize| -> [L::Weights; B] {
        std::array::from_fn(|b| L::weights(&ws[b][2 * j..2 * (j + L::COLUMNS)]))
    };
    let madd = |out: &mut [i32], wv: [L::Weights; B], av: [L::Pair; B]| {
        let mut v = L::load(out);
        for b in 0..B {
            v = L::madd(v, wv[b], av[b]);
        }
        L::store(out, v);
    };
    if sums.len() == n {
        // One row (greedy search): its activations made ready once for all the columns.
        let av: [L::Pair; B] = std::array::from_fn(|b| L::pair(xq[p + b]));
        for j in cols.step_by(L::COLUMNS) {
            madd(&mut sums[j..j + L::COLUMNS], widen(j), av);
        }
        return;
    }
    let avs: Vec<[L::Pair; B]> = xq
        .chunks_exact(half)
        .map(|a| std::array::from_fn(|b| L::pair(a[p + b])))
        .collect();
    for j in cols.step_by(L::COLUMNS) {
        let wv = widen(j);
        for (&av, row) in avs.iter().zip(sums.chunks_exact_mut(n)) {
            madd(&mut row[j..j + L::COLUMNS], wv, av);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Lanes, by_blocks};

    /// Eight columns: `vpmovsxbw` widens sixteen weights, `vpmaddwd` multiplies and adds pairs.
    struct Avx2;

    impl Lanes for Avx2 {
        const COLUMNS: usize = 8;
        type Sums = __m256i;
        type Weights = __m256i;
        type Pair = __m256i;

        #[inline(always)]
        fn weights(pairs: &[i8]) -> __m256i {
            let sixteen = &pairs[..16];
            // SAFETY: 16 readable bytes, an unaligned load; AVX2 is enabled where this inlines.
            unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(sixteen.as_ptr().cast())) }
        }

        #[inline(always)]
        fn load(sums: &[i32]) -> __m256i {
            let eight = &sums[..8];
            // SAFETY: 32 readable bytes, unaligned.
            unsafe { _mm256_loadu_si256(eight.as_ptr().cast()) }
        }

        #[inline(always)]
        fn store(sums: &mut [i32], v: __m256i) {
            let eight = &mut sums[..8];
            // SAFETY: 32 writable bytes, unaligned.
            unsafe { _mm256_storeu_si256(eight.as_mut_ptr().cast(), v) }
        }

        #[inline(always)]
        fn pair(a: u32) -> __m256i {
            // SAFETY: AVX2 is enabled where this inlines.
            unsafe { _mm256_set1_epi32(a as i32) }
        }

        #[inline(always)]
        fn madd(v: __m256i, w: __m256i, a: __m256i) -> __m256i {
            // SAFETY: AVX2 is enabled where this inlines.
            unsafe { _mm256_add_epi32(v, _mm256_madd_epi16(w, a)) }
        }
    }

    /// [`by_blocks`] with AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn accumulate(xq: &[u32], pairs: &[i8], n: usize, half: usize, sums: &mut [i32]) {
        by_blocks::<Avx2>(xq, pairs, n, half, sums)
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use core::arch::wasm32::*;

    use super::Lanes;

    /// Four columns: `i16x8.load8x8_s` widens eight weights as it loads them, and
    /// `i32x4.dot_i16x8_s` multiplies and adds pairs.
    pub struct Simd128;

    impl Lanes for Simd128 {
        const COLUMNS: usize = 4;
        type Sums = v128;
        type Weights = v128;
        type Pair = v128;

        #[inline(always)]
        fn weights(pairs: &[i8]) -> v128 {
            let eight = &pairs[..8];
            // SAFETY: 8 readable bytes; wasm loads may be unaligned.
            unsafe { i16x8_load_extend_i8x8(eight.as_ptr()) }
        }

        #[inline(always)]
        fn load(sums: &[i32]) -> v128 {
            let four = &sums[..4];
            // SAFETY: 16 readable bytes.
            unsafe { v128_load(four.as_ptr().cast()) }
        }

        #[inline(always)]
        fn store(sums: &mut [i32], v: v128) {
            let four = &mut sums[..4];
            // SAFETY: 16 writable bytes.
            unsafe { v128_store(four.as_mut_ptr().cast(), v) }
        }

        #[inline(always)]
        fn pair(a: u32) -> v128 {
            u32x4_splat(a)
        }

        #[inline(always)]
        fn madd(v: v128, w: v128, a: v128) -> v128 {
            i32x4_add(v, i32x4_dot_i16x8(w, a))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::tests::values;

    /// A matrix of random int8 values (the full range, -128 included) and scales.
    fn matrix(k: usize, n: usize, seed: u32) -> (Vec<i8>, Vec<f32>) {
        let q = values(k * n, seed)
            .iter()
            .map(|v| (v * 128.0).floor().clamp(-128.0, 127.0) as i8)
            .collect();
        let scales = values(n, seed + 1)
            .iter()
            .map(|v| 0.01 + v.abs() / 64.0)
            .collect();
        (q, scales)
    }

    #[test]
    fn matches_the_definition_within_the_activations_rounding() {
        // k and n not multiples of a pair, a block or a vector, one row and several, and the
        // widest input (the activation scale is then below 32,767).
        let shapes = [
            (1, 1, 1),
            (1, 7, 13),
            (3, 9, 17),
            (5, 17, 523),
            (2, 501, 7),
            (10, 256, 4874),
            (1, 70_000, 3),
        ];
        for (rows, k, n) in shapes {
            let x = values(rows * k, 3);
            let (q, scales) = matrix(k, n, 5);
            let bias = values(n, 9);
            let w = Int8Matrix::from_rows(&q, &scales);
            let mut y = vec![f32::NAN; rows * n];
            linear(&x, &w, Some(&bias), &mut y);
            let top = activation_max(k) as f64;
            for (r, xr) in x.chunks(k).enumerate() {
                let max = xr.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
                for j in 0..n {
                    // The f64 definition, and its bound: each activation off by at most half
                    // a step (max / 2A) times its weight, plus f32's rounding of the result.
                    let terms = (0..k).map(|i| xr[i] as f64 * w.weight(i, j) as f64);
                    let dot = terms.sum::<f64>() + bias[j] as f64;
                    let weights: f64 = (0..k).map(|i| w.weight(i, j).abs() as f64).sum();
                    let size = weights * max + (bias[j] as f64).abs();
                    let bound =
                        weights * max / (2.0 * top) * 1.01 + 4.0 * f32::EPSILON as f64 * size;
                    let got = y[r * n + j] as f64;
                    assert!(
                        (got - dot).abs() <= bound,
                        "[{rows},{k}]x[{k},{n}] at ({r},{j}): {got} vs {dot} (bound {bound})"
                    );
                }
            }
        }
    }

    #[test]
    fn rounding_is_the_standard_librarys() {
        let halves = (-70_000..70_000).map(|i| i as f32 * 0.5);
        let near = [
            0.49999997f32,
            -0.49999997,
            0.50000006,
            2.4999998,
            -32766.5,
            32767.0,
        ];
        for v in halves.chain(near) {
            assert_eq!(round(v), v.round_ties_even() as i32, "{v}");
        }
    }

    #[test]
    fn a_zero_input_gives_the_bias() {
        let (q, scales) = matrix(9, 5, 1);
        let bias = values(5, 2);
        let mut y = vec![f32::NAN; 10];
        linear(
            &[0.0; 18],
            &Int8Matrix::from_rows(&q, &scales),
            Some(&bias),
            &mut y,
        );
        assert_eq!(y[..5], bias[..]);
        assert_eq!(y[5..], bias[..]);
    }

    #[test]
    fn every_path_gives_the_same_bits() {
        // The vector paths against plain Rust's, on sums that are exact integers; one row
        // (greedy search's own loop) and several.
        for rows in [1, 3] {
            let (half, n) = (11, 37);
            let xq: Vec<u32> = values(rows * half * 2, 7)
                .chunks(2)
                .map(|a| {
                    let [lo, hi] = [a[0], a[1]].map(|v| (v * 32767.0) as i16 as u16 as u32);
                    lo | hi << 16
                })
                .collect();
            let (pairs, _) = matrix(half * 2, n, 8);
            let mut scalar = vec![0i32; rows * n];
            by_blocks::<Scalar>(&xq, &pairs, n, half, &mut scalar);
            let mut fastest = vec![0i32; rows * n];
            accumulate(&xq, &pairs, n, half, &mut fastest);
            assert_eq!(scalar, fastest, "{rows} row(s)");
        }
    }
}
