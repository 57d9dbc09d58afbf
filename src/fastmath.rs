//! `exp`, `sigmoid` and `tanh` for the hot loops of training and decoding: branch-free, so
//! that the compiler vectorises the loops that call them, where flex and `libm` compute one
//! element at a time.

/// `e^x` as Cephes' `expf` computes it (a degree-5 polynomial after taking out powers of
/// two), within 2 ulp, without branches or calls, so that loops over it vectorise; `libm`'s
/// `expf` and `tanhf` are calls, one element at a time, and were half a GRU step's time.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // `clamp`, but as two selects that vectorise (`f32::clamp` is compiled to a scalar
    // branch for NaN, which passes through here as well).
    let x = if x < -87.3 { -87.3 } else { x };
    let x = if x > 88.7 { 88.7 } else { x };
    // k = round(x / ln 2), by the 1.5 * 2^23 trick (floor and round are calls without SSE4.1):
    // in `shifted`, k is the low bits of the mantissa.
    const SHIFT: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + SHIFT;
    let k = shifted - SHIFT;
    // r = x - k ln 2, with ln 2 split in two for precision.
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    // 2^k, built in the exponent bits; k read from `shifted`'s bits, not converted (`as i32`
    // saturates, which does not vectorise either).
    let k_bits = (shifted.to_bits() as i32).wrapping_sub(SHIFT.to_bits() as i32);
    let two_k = f32::from_bits((k_bits.wrapping_add(127) as u32) << 23);
    e_r * two_k
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x`: `1 - 2 / (e^{2x} + 1)`, and below 0.625 in magnitude, where that loses digits
/// to cancellation, Cephes' odd polynomial, so the error is relative (a few 1e-7) everywhere,
/// as `libm`'s is. Both are computed and one selected, which vectorises.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let large = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
    let z = x * x;
    let p = -5.704_988_7e-3;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    let small = p * z * x + x;
    if z < 0.625 * 0.625 { small } else { large }
}

/// Lanes of the reductions below: independent partial results, which the compiler keeps in
/// vector registers, where one running total is a chain of dependent additions.
const LANES: usize = 8;

/// `Σ x²` in f64.
pub fn sum_of_squares(values: &[f32]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f64 = chunks
        .remainder()
        .iter()
        .map(|&x| f64::from(x).powi(2))
        .sum();
    for chunk in chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(x) * f64::from(x);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `log Σ exp(x)`, with the maximum taken out first; `-inf` for an empty slice.
pub fn log_sum_exp(values: &[f32]) -> f32 {
    let mut max = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks.clone() {
        for (lane, &x) in max.iter_mut().zip(chunk) {
            *lane = lane.max(x);
        }
    }
    let max = rest
        .iter()
        .chain(&max)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let mut sum = [0.0f32; LANES];
    for chunk in chunks {
        for (lane, &x) in sum.iter_mut().zip(chunk) {
            *lane += exp(x - max);
        }
    }
    let tail: f32 = rest.iter().map(|&x| exp(x - max)).sum();
    max + (sum.iter().sum::<f32>() + tail).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The polynomial `exp` against the standard library's over the range the gates see.
    #[test]
    fn fast_activations_are_accurate() {
        for i in -20_000..=20_000 {
            let x = i as f32 * 4e-3; // -80 to 80
            let (ours, std) = (exp(x), x.exp());
            assert!(
                (ours - std).abs() <= 3e-7 * std,
                "exp({x}) = {ours}, not {std}"
            );
            let x = x / 4.0;
            assert!((tanh(x) - x.tanh()).abs() <= 2e-7, "tanh({x})");
            // Relative near 0 too, where a difference of exponentials would cancel.
            let x = x / 1e4;
            assert!(
                (tanh(x) - x.tanh()).abs() <= 3e-7 * x.tanh().abs(),
                "tanh({x}) = {}, not {}",
                tanh(x),
                x.tanh()
            );
            assert!(
                (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() <= 2e-7,
                "sigmoid({x})"
            );
        }
    }

    /// The lane-wise reductions against plain sums in f64, at lengths around the lane count.
    #[test]
    fn reductions_match_plain_sums() {
        for len in [0, 1, 7, 8, 9, 100, 4875] {
            let values: Vec<f32> = (0..len)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.3)
                .collect();
            let squares: f64 = values.iter().map(|&x| f64::from(x).powi(2)).sum();
            assert!((sum_of_squares(&values) - squares).abs() <= 1e-9 * squares.max(1.0));
            let lse = values.iter().map(|&x| f64::from(x).exp()).sum::<f64>().ln();
            let ours = log_sum_exp(&values);
            if len == 0 {
                assert_eq!(ours, f32::NEG_INFINITY);
            } else {
                assert!(
                    (f64::from(ours) - lse).abs() <= 2e-6 * lse.abs().max(1.0),
                    "{len}: {ours} vs {lse}"
                );
            }
        }
    }
}
