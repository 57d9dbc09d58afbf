//! The GRU recurrence of one layer and direction as one autodiff node with a hand-written
//! backward, for training.
//!
//! Through Burn's ordinary ops a step of [`GruCell`](crate::model::gru::GruCell) records a
//! dozen nodes, each allocating its result, and the backward computes `dW_hh` one step at a
//! time. Here the forward runs the steps over reused buffers, keeps the gates, and the
//! backward computes `dW_hh` as one product over all steps, as PyTorch's CPU GRU does. The
//! input projection `W_ih x + b_ih` stays outside, one product over all steps through Burn.
//!
//! PyTorch's equations (gate order r, z, n), with `gi = W_ih x + b_ih`, `gh = W_hh h + b_hh`:
//!
//! ```text
//! r = σ(gi_r + gh_r)   z = σ(gi_z + gh_z)   n = tanh(gi_n + r ⊙ gh_n)   h' = (1 - z) ⊙ n + z ⊙ h
//! ```
//!
//! and, where a sequence has ended (mask 0), the state passes through and the output is 0.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::prelude::*;

use super::flex_values as values;

/// The sizes of one recurrence.
#[derive(Debug, Clone, Copy)]
struct Dims {
    seq: usize,
    batch: usize,
    hidden: usize,
}

#[backend_extension(Flex, Autodiff)]
pub trait GruBackend: Backend {
    /// `gi` [seq, batch, 3 * hidden], `h0` [batch, hidden], `w_hh` [hidden, 3 * hidden] (Burn's
    /// layout), `b_hh` [3 * hidden], `mask` [seq, batch] (1 for a real token, 0 past the end;
    /// never differentiated). Returns [seq + 1, batch, hidden]: the outputs in time order, then
    /// the final state. `reverse` runs from the last step to the first.
    fn gru_sequence(
        gi: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self>;
}

/// The recurrence for `GruCell::run` in training: `gi` [seq, batch, 3 * hidden], `h0`
/// [batch, hidden], `mask` [seq, batch]. Returns the outputs [seq, batch, hidden] and the
/// final state [batch, hidden].
pub fn gru_sequence(
    gi: Tensor<3>,
    h0: Tensor<2>,
    w_hh: Tensor<2>,
    b_hh: Tensor<1>,
    mask: Tensor<2>,
    reverse: bool,
) -> (Tensor<3>, Tensor<2>) {
    let [seq, batch, three_hidden] = gi.dims();
    let out = Tensor::<3>::from_dispatch(<burn::backend::Dispatch as GruBackend>::gru_sequence(
        gi.into_dispatch(),
        h0.into_dispatch(),
        w_hh.into_dispatch(),
        b_hh.into_dispatch(),
        mask.into_dispatch(),
        reverse,
    )); // [seq + 1, batch, hidden]
    let hidden = three_hidden / 3;
    let last = out.clone().slice(s![seq]).reshape([batch, hidden]);
    (out.slice(s![0..seq]), last)
}

/// What the backward needs: the gates of every step and the state each started from, all
/// [seq, batch, hidden] in time order.
#[derive(Debug, Clone)]
struct Saved {
    dims: Dims,
    reverse: bool,
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    /// `gh_n = (W_hh h + b_hh)_n`, which `r` multiplies.
    ghn: Vec<f32>,
    h_prev: Vec<f32>,
    mask: Vec<f32>,
    w_hh: Vec<f32>,
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `e^x` as Cephes' `expf` computes it (a degree-5 polynomial after taking out powers of
/// two), within 2 ulp, without branches or calls, so that loops over it vectorise; `libm`'s
/// `expf` and `tanhf` are calls, one element at a time, and were half a GRU step's time.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.7);
    // k = round(x / ln 2), by the 1.5 * 2^23 trick (floor and round are calls without SSE4.1).
    const SHIFT: f32 = 12_582_912.0;
    let k = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    // r = x - k ln 2, with ln 2 split in two for precision.
    let r = x - k * 0.693_359_4 + k * 2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    // 2^k, built in the exponent bits.
    let two_k = f32::from_bits(((k as i32 + 127) as u32) << 23);
    e_r * two_k
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `tanh x = 1 - 2 / (e^{2x} + 1)`: absolute error about 1e-7 near 0, where `libm`'s is
/// relative.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]` (+ `dst` when `accumulate`), row-major, with strides
/// given as (row, column) so transposed operands need no copy.
#[allow(clippy::too_many_arguments)]
fn matmul(
    [m, k, n]: [usize; 3],
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    let parallelism = if m * k * n >= 1 << 20 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the strides reach inside the slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// How many rows of a step to compute: those before the first ended one when every row after
/// it has ended too (a batch sorted by length, longest first, as the tutorial's and
/// burnchat's are: `pack_padded_sequence` skips the same rows), else all of them.
fn active_rows(mask_t: &[f32]) -> usize {
    let active = mask_t.iter().take_while(|&&m| m != 0.0).count();
    if mask_t[active..].iter().all(|&m| m == 0.0) {
        active
    } else {
        mask_t.len()
    }
}

/// The forward pass on host memory; returns [seq + 1, batch, hidden] and, when `keep`, what
/// the backward needs.
#[allow(clippy::too_many_arguments)]
fn forward(
    gi: &[f32],
    h0: &[f32],
    w_hh: Vec<f32>,
    b_hh: &[f32],
    mask: Vec<f32>,
    dims: Dims,
    reverse: bool,
    keep: bool,
) -> (Vec<f32>, Option<Saved>) {
    let Dims { seq, batch, hidden } = dims;
    let (bh, g3) = (batch * hidden, 3 * hidden);
    // The gates of every step (kept for the backward) or of one (reused).
    let saved_len = if keep { seq * bh } else { bh };
    let (mut r_all, mut z_all, mut n_all, mut ghn_all, mut h_prev_all) = (
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; if keep { seq * bh } else { 0 }],
    );
    let mut out = vec![0.0f32; (seq + 1) * bh];
    let mut h = h0.to_vec();
    let mut gh = vec![0.0f32; batch * g3];
    for i in 0..seq {
        let t = if reverse { seq - 1 - i } else { i };
        let active = active_rows(&mask[t * batch..(t + 1) * batch]);
        for row in gh.chunks_exact_mut(g3).take(active) {
            row.copy_from_slice(b_hh);
        }
        // gh = h · W_hh + b_hh: [active, hidden] x [hidden, 3h]
        matmul(
            [active, hidden, g3],
            &mut gh,
            true,
            &h,
            (hidden, 1),
            &w_hh,
            (g3, 1),
        );
        let at = if keep { t * bh } else { 0 };
        if keep {
            h_prev_all[at..at + bh].copy_from_slice(&h);
        }
        let gi_t = &gi[t * batch * g3..(t + 1) * batch * g3];
        // Rows past `active` have ended: their state passes through, their output stays 0.
        for b in 0..active {
            let (gi_b, gh_b) = (&gi_t[b * g3..(b + 1) * g3], &gh[b * g3..(b + 1) * g3]);
            let row = at + b * hidden..at + (b + 1) * hidden;
            let (r, z) = (&mut r_all[row.clone()], &mut z_all[row.clone()]);
            let (n, ghn) = (&mut n_all[row.clone()], &mut ghn_all[row]);
            let (gi_r, gi_z, gi_n) = (
                &gi_b[..hidden],
                &gi_b[hidden..2 * hidden],
                &gi_b[2 * hidden..],
            );
            let (gh_r, gh_z, gh_n) = (
                &gh_b[..hidden],
                &gh_b[hidden..2 * hidden],
                &gh_b[2 * hidden..],
            );
            for j in 0..hidden {
                r[j] = sigmoid(gi_r[j] + gh_r[j]);
                z[j] = sigmoid(gi_z[j] + gh_z[j]);
                ghn[j] = gh_n[j];
                n[j] = tanh(gi_n[j] + r[j] * gh_n[j]);
            }
            if mask[t * batch + b] != 0.0 {
                let h_b = &mut h[b * hidden..(b + 1) * hidden];
                let out_b = &mut out[t * bh + b * hidden..t * bh + (b + 1) * hidden];
                for j in 0..hidden {
                    h_b[j] = n[j] + z[j] * (h_b[j] - n[j]);
                    out_b[j] = h_b[j];
                }
            }
        }
    }
    out[seq * bh..].copy_from_slice(&h);
    let saved = keep.then(|| Saved {
        dims,
        reverse,
        r: r_all,
        z: z_all,
        n: n_all,
        ghn: ghn_all,
        h_prev: h_prev_all,
        mask,
        w_hh,
    });
    (out, saved)
}

/// The gradients of `gi`, `h0`, `w_hh` and `b_hh` from that of the output [seq + 1, batch, hidden].
fn backward(saved: &Saved, grad: &[f32]) -> [Vec<f32>; 4] {
    let Dims { seq, batch, hidden } = saved.dims;
    let (bh, g3) = (batch * hidden, 3 * hidden);
    let mut d_gi = vec![0.0f32; seq * batch * g3];
    // The gradient of `gh` at every step, for dW_hh and db_hh in one pass at the end.
    let mut d_gh = vec![0.0f32; seq * batch * g3];
    // The gradient of the state after the step being undone.
    let mut dh = grad[seq * bh..].to_vec();
    let mut dh_prev = vec![0.0f32; bh];
    for i in 0..seq {
        // Undo the steps in the opposite order to the forward's.
        let t = if saved.reverse { i } else { seq - 1 - i };
        let s = t * bh;
        for b in 0..batch {
            let row = b * hidden..(b + 1) * hidden;
            let (dh_b, dh_prev_b) = (&dh[row.clone()], &mut dh_prev[row]);
            let gates = (t * batch + b) * g3..(t * batch + b + 1) * g3;
            let (d_gi_b, d_gh_b) = (&mut d_gi[gates.clone()], &mut d_gh[gates]);
            if saved.mask[t * batch + b] == 0.0 {
                // Past the end: the state passed through; the gates' gradients stay 0.
                dh_prev_b.copy_from_slice(dh_b);
                continue;
            }
            let at = s + b * hidden..s + (b + 1) * hidden;
            let (r, z, n) = (
                &saved.r[at.clone()],
                &saved.z[at.clone()],
                &saved.n[at.clone()],
            );
            let (ghn, h_prev, grad_b) =
                (&saved.ghn[at.clone()], &saved.h_prev[at.clone()], &grad[at]);
            let (d_gi_r, rest) = d_gi_b.split_at_mut(hidden);
            let (d_gi_z, d_gi_n) = rest.split_at_mut(hidden);
            let (d_gh_r, rest) = d_gh_b.split_at_mut(hidden);
            let (d_gh_z, d_gh_n) = rest.split_at_mut(hidden);
            for j in 0..hidden {
                let dh_new = dh_b[j] + grad_b[j];
                let da_n = dh_new * (1.0 - z[j]) * (1.0 - n[j] * n[j]);
                let da_r = da_n * ghn[j] * r[j] * (1.0 - r[j]);
                let da_z = dh_new * (h_prev[j] - n[j]) * z[j] * (1.0 - z[j]);
                d_gi_r[j] = da_r;
                d_gi_z[j] = da_z;
                d_gi_n[j] = da_n;
                d_gh_r[j] = da_r;
                d_gh_z[j] = da_z;
                d_gh_n[j] = da_n * r[j];
                // Through h' = n + z (h - n).
                dh_prev_b[j] = dh_new * z[j];
            }
        }
        // dh_prev += d_gh_t · W_hhᵀ: [active, 3h] x [3h, hidden]; ended rows' d_gh is 0.
        let d_gh_t = &d_gh[t * batch * g3..(t + 1) * batch * g3];
        matmul(
            [
                active_rows(&saved.mask[t * batch..(t + 1) * batch]),
                g3,
                hidden,
            ],
            &mut dh_prev,
            true,
            d_gh_t,
            (g3, 1),
            &saved.w_hh,
            (1, g3),
        );
        std::mem::swap(&mut dh, &mut dh_prev);
    }
    // dW_hh = Σ_t h_prev_tᵀ · d_gh_t: [hidden, seq * batch] x [seq * batch, 3h]
    let mut d_w = vec![0.0f32; hidden * g3];
    let rows = seq * batch;
    matmul(
        [hidden, rows, g3],
        &mut d_w,
        false,
        &saved.h_prev,
        (1, hidden),
        &d_gh,
        (g3, 1),
    );
    let mut d_b = vec![0.0f32; g3];
    for row in d_gh.chunks_exact(g3) {
        for (d, g) in d_b.iter_mut().zip(row) {
            *d += g;
        }
    }
    [d_gi, dh, d_w, d_b]
}

fn dims_of(gi: &FlexTensor) -> Dims {
    let shape = gi.layout().shape();
    Dims {
        seq: shape[0],
        batch: shape[1],
        hidden: shape[2] / 3,
    }
}

fn run(
    gi: &FlexTensor,
    h0: &FlexTensor,
    w_hh: &FlexTensor,
    b_hh: &FlexTensor,
    mask: &FlexTensor,
    reverse: bool,
    keep: bool,
) -> (FlexTensor, Option<Saved>) {
    let dims = dims_of(gi);
    let (out, saved) = forward(
        &values(gi),
        &values(h0),
        values(w_hh).into_owned(),
        &values(b_hh),
        values(mask).into_owned(),
        dims,
        reverse,
        keep,
    );
    let shape = vec![dims.seq + 1, dims.batch, dims.hidden];
    (tensor(out, shape), saved)
}

impl GruBackend for Flex {
    fn gru_sequence(
        gi: FlexTensor,
        h0: FlexTensor,
        w_hh: FlexTensor,
        b_hh: FlexTensor,
        mask: FlexTensor,
        reverse: bool,
    ) -> FlexTensor {
        run(&gi, &h0, &w_hh, &b_hh, &mask, reverse, false).0
    }
}

#[derive(Debug)]
struct GruSequenceBackward;

impl Backward<Flex, 4> for GruSequenceBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_gi, node_h0, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let saved = ops.state;
        let Dims { seq, batch, hidden } = saved.dims;
        let [d_gi, d_h0, d_w, d_b] = backward(&saved, &values(&grad));
        let shapes = [
            vec![seq, batch, 3 * hidden],
            vec![batch, hidden],
            vec![hidden, 3 * hidden],
            vec![3 * hidden],
        ];
        for ((node, values), shape) in [node_gi, node_h0, node_w, node_b]
            .into_iter()
            .zip([d_gi, d_h0, d_w, d_b])
            .zip(shapes)
        {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, tensor(values, shape));
            }
        }
    }
}

impl<C: CheckpointStrategy> GruBackend for Autodiff<Flex, C> {
    fn gru_sequence(
        gi: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self> {
        let prep = GruSequenceBackward
            .prepare::<C>([gi.node(), h0.node(), w_hh.node(), b_hh.node()])
            .compute_bound()
            .stateful();
        let inputs = (
            gi.primitive(),
            h0.primitive(),
            w_hh.primitive(),
            b_hh.primitive(),
            mask.primitive(),
        );
        match prep {
            OpsKind::Tracked(prep) => {
                let (out, saved) = run(
                    inputs.0, inputs.1, inputs.2, inputs.3, inputs.4, reverse, true,
                );
                prep.finish(saved.expect("kept"), out)
            }
            OpsKind::UnTracked(prep) => {
                let (out, _) = run(
                    inputs.0, inputs.1, inputs.2, inputs.3, inputs.4, reverse, false,
                );
                prep.finish(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::model::gru::GruCell;

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
            assert!(
                (sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs() <= 2e-7,
                "sigmoid({x})"
            );
        }
    }

    /// The fused recurrence against the same steps through Burn's own operations and
    /// autodiff: outputs, final state and the gradients of every input, with padding in both
    /// directions. A wrong gate in either backward fails this.
    #[test]
    fn fused_recurrence_matches_burns_autodiff() {
        let device = crate::train::device();
        let (seq, batch, input, hidden) = (5, 3, 4, 6);
        device.seed(3);
        let cell = GruCell::new(input, hidden, &device);
        let x = Tensor::<3>::random([seq, batch, input], Distribution::Normal(0.0, 1.0), &device);
        let h0 = Tensor::<2>::random([batch, hidden], Distribution::Normal(0.0, 0.5), &device);
        // Sorted longest first (ended rows skipped) and not (every row computed).
        let masks_for = |lengths: [usize; 3]| -> Vec<Tensor<2>> {
            (0..seq)
                .map(|t| {
                    let m: Vec<f32> = lengths
                        .iter()
                        .map(|&l| if t < l { 1.0 } else { 0.0 })
                        .collect();
                    Tensor::from_data(TensorData::new(m, [batch, 1]), &device)
                })
                .collect()
        };
        // Each output position and the final state weighed differently, so every gradient
        // path counts.
        let weights = Tensor::<3>::random(
            [seq, batch, hidden],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let last_weights =
            Tensor::<2>::random([batch, hidden], Distribution::Normal(0.0, 1.0), &device);
        for (reverse, lengths) in [false, true]
            .into_iter()
            .flat_map(|r| [(r, [5, 3, 1]), (r, [3, 5, 1])])
        {
            let masks = masks_for(lengths);
            let run = |fused: bool| {
                let x = x.clone().require_grad();
                let h0 = h0.clone().require_grad();
                let gi = crate::model::linear::linear(&cell.ih, x.clone());
                let (out, last) = if fused {
                    cell.run(gi, h0.clone(), Some(&masks), reverse)
                } else {
                    cell.run_steps(gi, h0.clone(), Some(&masks), reverse)
                };
                let loss = (out.clone() * weights.clone()).sum()
                    + (last.clone() * last_weights.clone()).sum();
                let grads = loss.backward();
                let inner = |t: Tensor<2>| t.to_data();
                (
                    out.to_data(),
                    last.to_data(),
                    x.grad(&grads).unwrap().to_data(),
                    inner(h0.grad(&grads).unwrap()),
                    cell.hh.weight.val().grad(&grads).unwrap().to_data(),
                    cell.hh
                        .bias
                        .as_ref()
                        .unwrap()
                        .val()
                        .grad(&grads)
                        .unwrap()
                        .to_data(),
                    cell.ih.weight.val().grad(&grads).unwrap().to_data(),
                )
            };
            let (fused, reference) = (run(true), run(false));
            let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-5);
            fused.0.assert_approx_eq(&reference.0, tolerance);
            fused.1.assert_approx_eq(&reference.1, tolerance);
            fused.2.assert_approx_eq(&reference.2, tolerance);
            fused.3.assert_approx_eq(&reference.3, tolerance);
            fused.4.assert_approx_eq(&reference.4, tolerance);
            fused.5.assert_approx_eq(&reference.5, tolerance);
            fused.6.assert_approx_eq(&reference.6, tolerance);
        }
    }
}
