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

fn values(tensor: &FlexTensor) -> Vec<f32> {
    match tensor.as_slice::<f32>() {
        Some(values) => values.to_vec(),
        None => tensor
            .to_contiguous()
            .as_slice::<f32>()
            .expect("f32")
            .to_vec(),
    }
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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

/// The forward pass on host memory; returns [seq + 1, batch, hidden] and, when `keep`, what
/// the backward needs.
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
    let saved_len = if keep { seq * bh } else { 0 };
    let (mut r_all, mut z_all, mut n_all, mut ghn_all, mut h_prev_all) = (
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
    );
    let mut out = vec![0.0f32; (seq + 1) * bh];
    let mut h = h0.to_vec();
    let mut gh = vec![0.0f32; batch * g3];
    for i in 0..seq {
        let t = if reverse { seq - 1 - i } else { i };
        for row in gh.chunks_exact_mut(g3) {
            row.copy_from_slice(b_hh);
        }
        matmul(
            [batch, hidden, g3],
            &mut gh,
            true,
            &h,
            (hidden, 1),
            &w_hh,
            (g3, 1),
        );
        if keep {
            h_prev_all[t * bh..(t + 1) * bh].copy_from_slice(&h);
        }
        let gi_t = &gi[t * batch * g3..(t + 1) * batch * g3];
        let out_t = &mut out[t * bh..(t + 1) * bh];
        for b in 0..batch {
            let m = mask[t * batch + b];
            let (gi_b, gh_b) = (&gi_t[b * g3..(b + 1) * g3], &gh[b * g3..(b + 1) * g3]);
            for j in 0..hidden {
                let r = sigmoid(gi_b[j] + gh_b[j]);
                let z = sigmoid(gi_b[hidden + j] + gh_b[hidden + j]);
                let ghn = gh_b[2 * hidden + j];
                let n = (gi_b[2 * hidden + j] + r * ghn).tanh();
                let k = b * hidden + j;
                let h_new = n + z * (h[k] - n);
                if keep {
                    let s = t * bh + k;
                    (r_all[s], z_all[s], n_all[s], ghn_all[s]) = (r, z, n, ghn);
                }
                if m != 0.0 {
                    out_t[k] = h_new;
                    h[k] = h_new;
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
            let m = saved.mask[t * batch + b];
            let row = (t * batch + b) * g3;
            for j in 0..hidden {
                let k = b * hidden + j;
                let dh_new = if m != 0.0 { dh[k] + grad[s + k] } else { 0.0 };
                let (r, z, n) = (saved.r[s + k], saved.z[s + k], saved.n[s + k]);
                let h_prev = saved.h_prev[s + k];
                let dn = dh_new * (1.0 - z);
                let dz = dh_new * (h_prev - n);
                let da_n = dn * (1.0 - n * n);
                let da_r = da_n * saved.ghn[s + k] * r * (1.0 - r);
                let da_z = dz * z * (1.0 - z);
                d_gi[row + j] = da_r;
                d_gi[row + hidden + j] = da_z;
                d_gi[row + 2 * hidden + j] = da_n;
                d_gh[row + j] = da_r;
                d_gh[row + hidden + j] = da_z;
                d_gh[row + 2 * hidden + j] = da_n * r;
                // Through h' = n + z (h - n), and past the end of a sequence, unchanged.
                dh_prev[k] = if m != 0.0 { dh_new * z } else { dh[k] };
            }
        }
        // dh_prev += d_gh_t · W_hhᵀ: [batch, 3h] x [3h, hidden]
        let d_gh_t = &d_gh[t * batch * g3..(t + 1) * batch * g3];
        matmul(
            [batch, g3, hidden],
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
        values(w_hh),
        &values(b_hh),
        values(mask),
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
        let lengths = [5, 3, 1];
        let masks: Vec<Tensor<2>> = (0..seq)
            .map(|t| {
                let m: Vec<f32> = lengths
                    .iter()
                    .map(|&l| if t < l { 1.0 } else { 0.0 })
                    .collect();
                Tensor::from_data(TensorData::new(m, [batch, 1]), &device)
            })
            .collect();
        // Each output position and the final state weighed differently, so every gradient
        // path counts.
        let weights = Tensor::<3>::random(
            [seq, batch, hidden],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let last_weights =
            Tensor::<2>::random([batch, hidden], Distribution::Normal(0.0, 1.0), &device);
        for reverse in [false, true] {
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
