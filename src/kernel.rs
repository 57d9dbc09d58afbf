//! The product of a few rows by a weight matrix, written for decoding.
//!
//! Greedy decoding multiplies one row by each weight matrix per step, so a step is bound by
//! reading the weights (30 MB of f32 at the tutorial's size). A general matrix product (Burn's,
//! through the gemm crate) first packs the matrix into panels, a second pass over all of it;
//! [`linear`] streams each weight once, eight rows of Burn's `[in, out]` layout at a time,
//! into outputs that stay in cache. Weights may be f16, which halves the bytes read; on
//! x86-64 with F16C the conversion to f32 is one instruction per eight weights
//! ([`f16_is_fast`]).
//!
//! Sums run in the order `((y + x0 w0) + x1 w1) + ...` over the input, with fused multiply-adds
//! where the CPU has them, so results differ from another product's in the last bits only.

use half::f16;

mod int8;
pub use int8::Int8Matrix;

/// A weight matrix in Burn's `[in, out]` layout, row-major.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    /// IEEE 754 half floats, as an f16 bundle stores them.
    F16(&'a [f16]),
    /// An int8 bundle's matrix, multiplied in integers ([`Int8Matrix`]).
    I8(&'a Int8Matrix),
}

impl Weights<'_> {
    fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::F16(w) => w.len(),
            Weights::I8(w) => w.dims().iter().product(),
        }
    }
}

/// Whether f16 weights are read at least as fast as f32 ones here: x86-64 with AVX2, FMA and
/// F16C. Elsewhere (wasm32 among them) converting each weight in software costs more than the
/// memory it saves, so a model keeps f32 weights.
pub fn f16_is_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        x86::detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `y = x w + bias`: `x` `[rows, k]`, `w` `[k, n]`, `bias` `[n]`, `y` `[rows, n]`, all row-major;
/// `k` and `rows` follow from the lengths.
///
/// # Panics
/// When the lengths do not fit those shapes (a caller's bug, never the user's input).
pub fn linear(x: &[f32], w: Weights, bias: Option<&[f32]>, n: usize, y: &mut [f32]) {
    assert!(
        n > 0 && w.len().is_multiple_of(n),
        "weights of {} values, {n} columns",
        w.len()
    );
    let k = w.len() / n;
    assert!(
        k > 0 && x.len().is_multiple_of(k),
        "input of {} values, {k} columns",
        x.len()
    );
    let rows = x.len() / k;
    assert_eq!(
        y.len(),
        rows * n,
        "output of {} values for [{rows}, {n}]",
        y.len()
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), n, "bias of {} values, {n} columns", b.len());
    }
    if let Weights::I8(w) = w {
        assert_eq!(
            w.dims()[1],
            n,
            "int8 weights of {:?}, {n} columns",
            w.dims()
        );
        return int8::linear(x, w, bias, y);
    }
    match bias {
        Some(b) => y.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(b)),
        None => y.fill(0.0),
    }
    #[cfg(target_arch = "x86_64")]
    if x86::detected() {
        // SAFETY: the CPU has the features `x86::accumulate` is compiled for.
        return unsafe { x86::accumulate(x, w, n, k, y) };
    }
    match w {
        Weights::F32(w) => accumulate::<false, f32>(x, w, n, k, y),
        Weights::F16(w) => accumulate::<false, f16>(x, w, n, k, y),
        Weights::I8(_) => unreachable!("int8 products return above"),
    }
}

/// A weight as f32.
trait Weight: Copy {
    fn to_f32(self) -> f32;
}

impl Weight for f32 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

impl Weight for f16 {
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

/// `a * b + c`, fused when `FUSED` (only where the CPU has FMA: elsewhere `mul_add` is a
/// library call).
#[inline(always)]
fn madd<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// Weight rows read together: the output rows are loaded and stored once per block.
const BLOCK: usize = 8;

/// `y += x w`, shapes as in [`linear`]. Written for the compiler to vectorise (`+simd128`
/// in wasm, AVX2 through [`x86::accumulate`]).
#[inline(always)]
fn accumulate<const FUSED: bool, W: Weight>(x: &[f32], w: &[W], n: usize, k: usize, y: &mut [f32]) {
    by_blocks::<FUSED, W>(x, w, n, k, y, block_into::<FUSED, W>);
}

/// `yr += a ws`: one input row's `BLOCK` values times `BLOCK` weight rows, column by column.
#[inline(always)]
fn block_into<const FUSED: bool, W: Weight>(ws: [&[W]; BLOCK], a: [f32; BLOCK], yr: &mut [f32]) {
    let n = yr.len();
    let ws = ws.map(|w| &w[..n]);
    for j in 0..n {
        let mut acc = yr[j];
        for r in 0..BLOCK {
            acc = madd::<FUSED>(a[r], ws[r][j].to_f32(), acc);
        }
        yr[j] = acc;
    }
}

/// `y += x w`, calling `rows_into(w[i..i + BLOCK], x[r, i..i + BLOCK], y[r])` for each block
/// of weight rows `i` and each input row `r`: a block is read from memory once and then from
/// cache for the input's other rows. The last `k % BLOCK` weight rows follow one at a time.
#[inline(always)]
fn by_blocks<const FUSED: bool, W: Weight>(
    x: &[f32],
    w: &[W],
    n: usize,
    k: usize,
    y: &mut [f32],
    mut rows_into: impl FnMut([&[W]; BLOCK], [f32; BLOCK], &mut [f32]),
) {
    let mut blocks = w.chunks_exact(BLOCK * n);
    for (block, i) in (&mut blocks).zip((0..).step_by(BLOCK)) {
        let ws: [&[W]; BLOCK] = std::array::from_fn(|r| &block[r * n..(r + 1) * n]);
        for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
            rows_into(ws, std::array::from_fn(|r| xr[i + r]), yr);
        }
    }
    let first = k - k % BLOCK;
    for (i, row) in (first..).zip(blocks.remainder().chunks_exact(n)) {
        for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
            let a = xr[i];
            for (y, w) in yr.iter_mut().zip(row) {
                *y = madd::<FUSED>(a, w.to_f32(), *y);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{BLOCK, Weights, accumulate as generic, block_into, by_blocks};
    use half::f16;

    pub fn detected() -> bool {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }

    /// [`generic`] compiled for AVX2 and FMA; f16 weights through F16C's `vcvtph2ps`.
    ///
    /// # Safety
    /// The CPU must have AVX2, FMA and F16C ([`detected`]).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn accumulate(x: &[f32], w: Weights, n: usize, k: usize, y: &mut [f32]) {
        match w {
            Weights::F32(w) => generic::<true, f32>(x, w, n, k, y),
            Weights::F16(w) => f16_rows(x, w, n, k, y),
            Weights::I8(_) => unreachable!("int8 products return before"),
        }
    }

    /// Eight f16 weights from `w[j..j + 8]` as f32.
    #[inline(always)]
    fn load8(w: &[f16], j: usize) -> __m256 {
        let eight = &w[j..j + 8];
        // SAFETY: `eight` holds 16 readable bytes; the load is unaligned.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(eight.as_ptr().cast())) }
    }

    /// The f16 case of [`generic`], same order of sums, eight outputs at a time.
    #[target_feature(enable = "avx2,fma,f16c")]
    fn f16_rows(x: &[f32], w: &[f16], n: usize, k: usize, y: &mut [f32]) {
        let wide = n - n % 8;
        by_blocks::<true, f16>(x, w, n, k, y, |ws, a, yr| {
            let av = a.map(|a| _mm256_set1_ps(a));
            for j in (0..wide).step_by(8) {
                let out = &mut yr[j..j + 8];
                // SAFETY: `out` holds eight f32; the load and store are unaligned.
                let mut acc = unsafe { _mm256_loadu_ps(out.as_ptr()) };
                for r in 0..BLOCK {
                    acc = _mm256_fmadd_ps(av[r], load8(ws[r], j), acc);
                }
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
            }
            block_into::<true, f16>(ws.map(|w| &w[wide..]), a, &mut yr[wide..]);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product in f64, the plain definition, with the bound on an f32 sum's error
    /// (`k` epsilons of the sum of the terms' magnitudes) for each output.
    fn reference(x: &[f32], w: &[f32], bias: &[f32], n: usize) -> Vec<(f32, f32)> {
        let k = w.len() / n;
        x.chunks(k)
            .flat_map(|xr| {
                (0..n).map(move |j| {
                    let terms = (0..k).map(|i| xr[i] as f64 * w[i * n + j] as f64);
                    let dot: f64 = terms.clone().sum::<f64>() + bias[j] as f64;
                    let size: f64 = terms.map(f64::abs).sum::<f64>() + (bias[j] as f64).abs();
                    (dot as f32, (k + 1) as f32 * f32::EPSILON * size as f32)
                })
            })
            .collect()
    }

    fn assert_close(got: &[f32], expected: &[(f32, f32)], what: &str) {
        for (a, (b, bound)) in got.iter().zip(expected) {
            assert!(
                (a - b).abs() <= *bound,
                "{what}: {a} vs {b} (bound {bound})"
            );
        }
    }

    /// Deterministic values in [-1, 1) without a random-number crate.
    pub(super) fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_for_odd_shapes_and_both_dtypes() {
        // k not a multiple of BLOCK and n not of 8 exercise every remainder loop, with one
        // input row and with several (beam search's hypotheses).
        let shapes = [
            (5, 17, 523),
            (1, 1, 1),
            (1, 7, 13),
            (3, 9, 17),
            (5, 32, 40),
            (2, 501, 7),
            (1, 500, 300),
        ];
        for (rows, k, n) in shapes {
            let x = values(rows * k, 1);
            let w = values(k * n, 2);
            let bias = values(n, 3);
            let mut y = vec![f32::NAN; rows * n];
            linear(&x, Weights::F32(&w), Some(&bias), n, &mut y);
            let expected = reference(&x, &w, &bias, n);
            assert_close(&y, &expected, &format!("f32 [{rows},{k}]x[{k},{n}]"));

            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w_rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            linear(&x, Weights::F16(&w16), None, n, &mut y);
            let expected = reference(&x, &w_rounded, &vec![0.0; n], n);
            assert_close(&y, &expected, &format!("f16 [{rows},{k}]x[{k},{n}]"));
        }
    }

    #[test]
    fn f16_subnormals_and_signs_convert_exactly() {
        // An input of [1, 0, ..., 0] copies the first weight row through, on the blocked
        // eight-wide path (k = BLOCK, 16 columns) and the one-row scalar one (k = 1).
        let bits = [
            0x0001u16, 0x8001, 0x03ff, 0x0400, 0xfbff, 0x7bff, 0x0000, 0x3c00,
        ];
        let first: Vec<f16> = bits
            .iter()
            .chain(&bits)
            .map(|&b| f16::from_bits(b))
            .collect();
        let expected: Vec<f32> = first.iter().map(|v| v.to_f32()).collect();
        let mut w = first.clone();
        w.extend(values(16 * (BLOCK - 1), 4).into_iter().map(f16::from_f32));
        let mut x = vec![0.0; BLOCK];
        x[0] = 1.0;
        let mut y = vec![0.0; 16];
        linear(&x, Weights::F16(&w), None, 16, &mut y);
        assert_eq!(y, expected);
        linear(&[1.0], Weights::F16(&first), None, 16, &mut y);
        assert_eq!(y, expected);
    }
}
