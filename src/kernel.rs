//! The product of a few rows by a weight matrix, written for decoding.
//!
//! Greedy decoding multiplies one row by each weight matrix per step, so a step is bound by
//! reading the weights (30 MB of f32 at the tutorial's size). A general matrix product (Burn's,
//! through the gemm crate) first packs the matrix into panels, a second pass over all of it;
//! [`linear`] streams each weight once, four rows of Burn's `[in, out]` layout at a time, into
//! outputs that stay in cache. Weights may be f16, which halves the bytes read; on x86-64 with
//! F16C the conversion to f32 is one instruction per eight weights ([`f16_is_fast`]).
//!
//! Sums run in the order `((y + x0 w0) + x1 w1) + ...` over the input, with fused multiply-adds
//! where the CPU has them, so results differ from another product's in the last bits only.

use half::f16;

/// A weight matrix in Burn's `[in, out]` layout, row-major.
#[derive(Clone, Copy, Debug)]
pub enum Weights<'a> {
    F32(&'a [f32]),
    /// IEEE 754 half floats, as an f16 bundle stores them.
    F16(&'a [f16]),
}

impl Weights<'_> {
    fn len(&self) -> usize {
        match self {
            Weights::F32(w) => w.len(),
            Weights::F16(w) => w.len(),
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

/// `y = x w + bias`: `x` [rows, k], `w` [k, n], `bias` [n], `y` [rows, n], all row-major;
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
    match bias {
        Some(b) => {
            assert_eq!(b.len(), n, "bias of {} values, {n} columns", b.len());
            y.chunks_exact_mut(n).for_each(|row| row.copy_from_slice(b));
        }
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

/// `y += x w`, shapes as in [`linear`]. Written for the compiler to vectorise (`+simd128`
/// in wasm, AVX2 through [`x86::accumulate`]).
#[inline(always)]
fn accumulate<const FUSED: bool, W: Weight>(x: &[f32], w: &[W], n: usize, k: usize, y: &mut [f32]) {
    by_four_rows(x, w, n, k, y, |[w0, w1, w2, w3], [a0, a1, a2, a3], yr| {
        for ((((y, w0), w1), w2), w3) in yr.iter_mut().zip(w0).zip(w1).zip(w2).zip(w3) {
            let mut acc = madd::<FUSED>(a0, w0.to_f32(), *y);
            acc = madd::<FUSED>(a1, w1.to_f32(), acc);
            acc = madd::<FUSED>(a2, w2.to_f32(), acc);
            *y = madd::<FUSED>(a3, w3.to_f32(), acc);
        }
    });
    let first = k - k % 4;
    last_rows::<FUSED, W>(x, &w[first * n..], first, n, k, y);
}

/// Calls `rows_into(w[i..i + 4], x[r, i..i + 4], y[r])` for each group of four weight rows
/// `i` and each input row `r`: a group is read from memory once and then from cache for the
/// input's other rows. The last `k % 4` weight rows are left to [`last_rows`].
#[inline(always)]
fn by_four_rows<W: Weight>(
    x: &[f32],
    w: &[W],
    n: usize,
    k: usize,
    y: &mut [f32],
    mut rows_into: impl FnMut([&[W]; 4], [f32; 4], &mut [f32]),
) {
    for (block, i) in w.chunks_exact(4 * n).zip((0..).step_by(4)) {
        let (w0, rest) = block.split_at(n);
        let (w1, rest) = rest.split_at(n);
        let (w2, w3) = rest.split_at(n);
        for (xr, yr) in x.chunks_exact(k).zip(y.chunks_exact_mut(n)) {
            rows_into(
                [w0, w1, w2, w3],
                [xr[i], xr[i + 1], xr[i + 2], xr[i + 3]],
                yr,
            );
        }
    }
}

/// `y += x[.., first..] w_rest`: the last `k % 4` weight rows, one at a time.
#[inline(always)]
fn last_rows<const FUSED: bool, W: Weight>(
    x: &[f32],
    w_rest: &[W],
    first: usize,
    n: usize,
    k: usize,
    y: &mut [f32],
) {
    for (i, row) in (first..).zip(w_rest.chunks_exact(n)) {
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

    use super::{Weights, accumulate as generic, by_four_rows, last_rows};
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
        by_four_rows(x, w, n, k, y, |[w0, w1, w2, w3], a, yr| {
            let [a0, a1, a2, a3] = a.map(|a| _mm256_set1_ps(a));
            for j in (0..wide).step_by(8) {
                let out = &mut yr[j..j + 8];
                // SAFETY: `out` holds eight f32; the load and store are unaligned.
                let mut acc = unsafe { _mm256_loadu_ps(out.as_ptr()) };
                acc = _mm256_fmadd_ps(a0, load8(w0, j), acc);
                acc = _mm256_fmadd_ps(a1, load8(w1, j), acc);
                acc = _mm256_fmadd_ps(a2, load8(w2, j), acc);
                acc = _mm256_fmadd_ps(a3, load8(w3, j), acc);
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), acc) };
            }
            for j in wide..n {
                let mut acc = a[0].mul_add(w0[j].to_f32(), yr[j]);
                acc = a[1].mul_add(w1[j].to_f32(), acc);
                acc = a[2].mul_add(w2[j].to_f32(), acc);
                yr[j] = a[3].mul_add(w3[j].to_f32(), acc);
            }
        });
        let first = k - k % 4;
        last_rows::<true, f16>(x, &w[first * n..], first, n, k, y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product in f64, the plain definition.
    fn reference(x: &[f32], w: &[f32], bias: &[f32], n: usize) -> Vec<f32> {
        let k = w.len() / n;
        x.chunks(k)
            .flat_map(|xr| {
                (0..n).map(move |j| {
                    let dot: f64 = (0..k).map(|i| xr[i] as f64 * w[i * n + j] as f64).sum();
                    (dot + bias[j] as f64) as f32
                })
            })
            .collect()
    }

    /// Deterministic values in [-1, 1) without a random-number crate.
    fn values(len: usize, seed: u32) -> Vec<f32> {
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
        // k not a multiple of 4 and n not of 8 exercise every remainder loop.
        for (rows, k, n) in [(1, 1, 1), (1, 7, 13), (3, 9, 17), (5, 32, 40), (2, 501, 7)] {
            let x = values(rows * k, 1);
            let w = values(k * n, 2);
            let bias = values(n, 3);
            let mut y = vec![f32::NAN; rows * n];
            linear(&x, Weights::F32(&w), Some(&bias), n, &mut y);
            let expected = reference(&x, &w, &bias, n);
            for (a, b) in y.iter().zip(&expected) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "f32 [{rows},{k}]x[{k},{n}]: {a} vs {b}"
                );
            }

            let w16: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let w_rounded: Vec<f32> = w16.iter().map(|v| v.to_f32()).collect();
            linear(&x, Weights::F16(&w16), None, n, &mut y);
            let expected = reference(&x, &w_rounded, &vec![0.0; n], n);
            for (a, b) in y.iter().zip(&expected) {
                assert!(
                    (a - b).abs() < 1e-5,
                    "f16 [{rows},{k}]x[{k},{n}]: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn f16_subnormals_and_signs_convert_exactly() {
        // An input of [1, 0, 0, 0] copies the first weight row through, on the eight-wide
        // path (16 columns) and the scalar one (k = 1).
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
        w.extend(values(48, 4).into_iter().map(f16::from_f32));
        let mut y = vec![0.0; 16];
        linear(&[1.0, 0.0, 0.0, 0.0], Weights::F16(&w), None, 16, &mut y);
        assert_eq!(y, expected);
        linear(&[1.0], Weights::F16(&first), None, 16, &mut y);
        assert_eq!(y, expected);
    }
}
