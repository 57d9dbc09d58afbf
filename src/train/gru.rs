//! The GRU of training: each layer and direction's recurrence one autodiff node with a
//! hand-written backward, over packed sequences.
//!
//! Through Burn's ordinary ops a step of [`GruCell`](crate::model::gru::GruCell) records a
//! dozen nodes, each allocating its result, and the backward computes `dW_hh` one step at a
//! time. Here the forward runs the steps over reused buffers, keeps the gates, and the
//! backward computes `dW_hh` as one product over all steps, as PyTorch's CPU GRU does.
//!
//! Like PyTorch's `PackedSequence`, only real tokens are computed: the rows of a padded
//! `[seq, batch]` batch where the mask is 1, in time-major order ("packed" rows). The input
//! projections `W_ih x + b_ih` are one product over the packed rows through Burn, and each
//! step's recurrence multiplies only the rows still running; padding costs nothing.
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
use burn::tensor::IndexingUpdateOp;

use super::flex_values as values;
use crate::fastmath::{sigmoid, tanh};
use crate::model::Gru;
use crate::model::linear::linear;

/// Which rows of a padded `[seq, batch]` batch are real tokens, and where each step's rows
/// sit among the packed ones.
#[derive(Debug, Clone)]
struct Packing {
    batch: usize,
    /// Per step `t`: the first packed row of the step and the batch entries it holds, in
    /// order (packed row `offsets[t] + j` is entry `rows[t][j]` at step `t`).
    offsets: Vec<usize>,
    rows: Vec<Vec<usize>>,
}

impl Packing {
    /// From a mask [seq, batch], time-major: 1 for a real token.
    fn new(mask: &[f32], batch: usize) -> Self {
        let rows: Vec<Vec<usize>> = mask
            .chunks_exact(batch)
            .map(|m| (0..batch).filter(|&b| m[b] != 0.0).collect())
            .collect();
        let offsets = rows
            .iter()
            .scan(0, |at, r| {
                let offset = *at;
                *at += r.len();
                Some(offset)
            })
            .collect();
        Self {
            batch,
            offsets,
            rows,
        }
    }

    fn seq(&self) -> usize {
        self.rows.len()
    }

    /// Packed rows in all.
    fn len(&self) -> usize {
        self.offsets
            .last()
            .map_or(0, |o| o + self.rows[self.seq() - 1].len())
    }

    /// Each packed row's index in the padded batch flattened time-major, `t * batch + b`.
    fn padded_index(&self) -> Vec<i64> {
        self.rows
            .iter()
            .enumerate()
            .flat_map(|(t, rows)| rows.iter().map(move |&b| (t * self.batch + b) as i64))
            .collect()
    }
}

/// The sizes of one recurrence.
#[derive(Debug, Clone, Copy)]
struct Dims {
    /// Packed rows.
    rows: usize,
    batch: usize,
    hidden: usize,
}

#[backend_extension(Flex, Autodiff)]
pub trait GruBackend: Backend {
    /// `gi` [rows, 3 * hidden], the input projections of the packed rows; `h0` [batch,
    /// hidden]; `w_hh` [hidden, 3 * hidden] (Burn's layout); `b_hh` [3 * hidden]; `mask`
    /// [seq, batch] (1 for a real token, 0 for padding; never differentiated), which says
    /// which rows were packed. Returns [rows + batch, hidden]: the packed outputs, then the
    /// final state. `reverse` runs from the last step to the first.
    fn gru_sequence(
        gi: FloatTensor<Self>,
        h0: FloatTensor<Self>,
        w_hh: FloatTensor<Self>,
        b_hh: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        reverse: bool,
    ) -> FloatTensor<Self>;
}

/// [`Gru::forward`] in training, over packed rows: `input` [seq, batch, input]; `h0`
/// [layers * directions, batch, hidden] or zeros; `mask` per step [batch, 1]. Returns what
/// `Gru::forward` does: the outputs [seq, batch, directions * hidden], zero at padding, and
/// `h_n` [layers * directions, batch, hidden].
pub fn forward_packed(
    gru: &Gru,
    input: Tensor<3>,
    h0: Option<Tensor<3>>,
    mask: Option<&[Tensor<2>]>,
) -> (Tensor<3>, Tensor<3>) {
    let [seq, batch, input_size] = input.dims();
    let device = input.device();
    let hidden = gru.hidden_size;
    let directions = 1 + usize::from(!gru.cells_reverse.is_empty());
    let mask = match mask {
        Some(mask) => Tensor::cat(mask.to_vec(), 0).reshape([seq, batch]),
        None => Tensor::ones([seq, batch], &device),
    };
    let mask_values = mask.to_data().try_into_vec::<f32>().expect("an f32 mask");
    let packing = Packing::new(&mask_values, batch);
    let rows = packing.len();
    // Every row real: packing is a reshape.
    let index = (rows < seq * batch).then(|| {
        Tensor::<1, Int>::from_data(TensorData::new(packing.padded_index(), [rows]), &device)
    });
    let mut x = input.reshape([seq * batch, input_size]);
    if let Some(index) = &index {
        x = x.select(0, index.clone()); // [rows, input]
    }
    let h0 = h0
        .unwrap_or_else(|| Tensor::zeros([gru.num_layers() * directions, batch, hidden], &device));
    let mut h_n = Vec::with_capacity(gru.num_layers() * directions);
    for k in 0..gru.num_layers() {
        if k > 0 {
            x = gru.dropout.forward(x);
        }
        let mut outputs = Vec::with_capacity(directions);
        let cells = std::iter::once((&gru.cells[k], false))
            .chain(gru.cells_reverse.get(k).map(|cell| (cell, true)));
        for (d, (cell, reverse)) in cells.enumerate() {
            let gi = linear(&cell.ih, x.clone()); // [rows, 3 * hidden]
            let h = h0
                .clone()
                .slice(s![k * directions + d])
                .reshape([batch, hidden]);
            let bias = cell.hh.bias.as_ref().map(|b| b.val());
            let bias = bias.unwrap_or_else(|| Tensor::zeros([3 * hidden], &device));
            let out =
                Tensor::<2>::from_dispatch(<burn::backend::Dispatch as GruBackend>::gru_sequence(
                    gi.into_dispatch(),
                    h.into_dispatch(),
                    cell.hh.weight.val().into_dispatch(),
                    bias.into_dispatch(),
                    mask.clone().into_dispatch(),
                    reverse,
                )); // [rows + batch, hidden]
            outputs.push(out.clone().slice(s![0..rows]));
            h_n.push(out.slice(s![rows..]));
        }
        x = Tensor::cat(outputs, 1); // [rows, directions * hidden]
    }
    let width = directions * hidden;
    let output = match index {
        Some(index) => Tensor::zeros([seq * batch, width], &device).select_assign(
            0,
            index,
            x,
            IndexingUpdateOp::Add,
        ),
        None => x,
    };
    (output.reshape([seq, batch, width]), Tensor::stack(h_n, 0))
}

/// What the backward needs: the gates of every packed row and the state it started from,
/// all [rows, hidden].
#[derive(Debug, Clone)]
struct Saved {
    dims: Dims,
    packing: Packing,
    reverse: bool,
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    /// `gh_n = (W_hh h + b_hh)_n`, which `r` multiplies.
    ghn: Vec<f32>,
    h_prev: Vec<f32>,
    w_hh: Vec<f32>,
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
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

/// The forward pass on host memory; returns [rows + batch, hidden] and, when `keep`, what
/// the backward needs.
#[allow(clippy::too_many_arguments)]
fn forward(
    gi: &[f32],
    h0: &[f32],
    w_hh: Vec<f32>,
    b_hh: &[f32],
    packing: Packing,
    dims: Dims,
    reverse: bool,
    keep: bool,
) -> (Vec<f32>, Option<Saved>) {
    let Dims { rows, hidden, .. } = dims;
    let g3 = 3 * hidden;
    let seq = packing.seq();
    // The gates of every row (kept for the backward) or of one step (reused).
    let saved_len = if keep {
        rows * hidden
    } else {
        dims.batch * hidden
    };
    let (mut r_all, mut z_all, mut n_all, mut ghn_all, mut h_prev_all) = (
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
        vec![0.0; saved_len],
    );
    let mut out = vec![0.0f32; rows * hidden + h0.len()];
    let mut h = h0.to_vec();
    let mut gh = vec![0.0f32; dims.batch * g3];
    for i in 0..seq {
        let t = if reverse { seq - 1 - i } else { i };
        let (offset, active) = (packing.offsets[t], &packing.rows[t]);
        let k = active.len();
        let at = if keep { offset * hidden } else { 0 };
        // The running rows' states, gathered: [k, hidden].
        let h_prev = &mut h_prev_all[at..at + k * hidden];
        for (j, &b) in active.iter().enumerate() {
            h_prev[j * hidden..(j + 1) * hidden].copy_from_slice(&h[b * hidden..(b + 1) * hidden]);
        }
        for row in gh.chunks_exact_mut(g3).take(k) {
            row.copy_from_slice(b_hh);
        }
        // gh = h · W_hh + b_hh: [k, hidden] x [hidden, 3h]
        matmul(
            [k, hidden, g3],
            &mut gh,
            true,
            h_prev,
            (hidden, 1),
            &w_hh,
            (g3, 1),
        );
        for (j, &b) in active.iter().enumerate() {
            let (gi_j, gh_j) = (
                &gi[(offset + j) * g3..(offset + j + 1) * g3],
                &gh[j * g3..(j + 1) * g3],
            );
            let row = at + j * hidden..at + (j + 1) * hidden;
            let (r, z) = (&mut r_all[row.clone()], &mut z_all[row.clone()]);
            let (n, ghn) = (&mut n_all[row.clone()], &mut ghn_all[row]);
            let (gi_r, gi_z, gi_n) = (
                &gi_j[..hidden],
                &gi_j[hidden..2 * hidden],
                &gi_j[2 * hidden..],
            );
            let (gh_r, gh_z, gh_n) = (
                &gh_j[..hidden],
                &gh_j[hidden..2 * hidden],
                &gh_j[2 * hidden..],
            );
            for c in 0..hidden {
                r[c] = sigmoid(gi_r[c] + gh_r[c]);
                z[c] = sigmoid(gi_z[c] + gh_z[c]);
                ghn[c] = gh_n[c];
                n[c] = tanh(gi_n[c] + r[c] * gh_n[c]);
            }
            let h_b = &mut h[b * hidden..(b + 1) * hidden];
            let out_j = &mut out[(offset + j) * hidden..(offset + j + 1) * hidden];
            for c in 0..hidden {
                h_b[c] = n[c] + z[c] * (h_b[c] - n[c]);
                out_j[c] = h_b[c];
            }
        }
    }
    out[rows * hidden..].copy_from_slice(&h);
    let saved = keep.then(|| Saved {
        dims,
        packing,
        reverse,
        r: r_all,
        z: z_all,
        n: n_all,
        ghn: ghn_all,
        h_prev: h_prev_all,
        w_hh,
    });
    (out, saved)
}

/// The gradients of `gi`, `h0`, `w_hh` and `b_hh` from that of the output [rows + batch,
/// hidden].
fn backward(saved: &Saved, grad: &[f32]) -> [Vec<f32>; 4] {
    let Dims { rows, hidden, .. } = saved.dims;
    let g3 = 3 * hidden;
    let packing = &saved.packing;
    let seq = packing.seq();
    let mut d_gi = vec![0.0f32; rows * g3];
    // The gradient of `gh` of every row, for dW_hh and db_hh in one pass at the end.
    let mut d_gh = vec![0.0f32; rows * g3];
    // The gradient of the state after the step being undone; rows that did not run at a
    // step pass it through unchanged.
    let mut dh = grad[rows * hidden..].to_vec();
    let mut dh_prev = vec![0.0f32; dh.len()];
    for i in 0..seq {
        // Undo the steps in the opposite order to the forward's.
        let t = if saved.reverse { i } else { seq - 1 - i };
        let (offset, active) = (packing.offsets[t], &packing.rows[t]);
        let k = active.len();
        for (j, &b) in active.iter().enumerate() {
            let packed = offset + j;
            let (dh_b, dh_prev_j) = (
                &dh[b * hidden..(b + 1) * hidden],
                &mut dh_prev[j * hidden..(j + 1) * hidden],
            );
            let gates = packed * g3..(packed + 1) * g3;
            let (d_gi_j, d_gh_j) = (&mut d_gi[gates.clone()], &mut d_gh[gates]);
            let at = packed * hidden..(packed + 1) * hidden;
            let (r, z, n) = (
                &saved.r[at.clone()],
                &saved.z[at.clone()],
                &saved.n[at.clone()],
            );
            let (ghn, h_prev, grad_j) =
                (&saved.ghn[at.clone()], &saved.h_prev[at.clone()], &grad[at]);
            let (d_gi_r, rest) = d_gi_j.split_at_mut(hidden);
            let (d_gi_z, d_gi_n) = rest.split_at_mut(hidden);
            let (d_gh_r, rest) = d_gh_j.split_at_mut(hidden);
            let (d_gh_z, d_gh_n) = rest.split_at_mut(hidden);
            for c in 0..hidden {
                let dh_new = dh_b[c] + grad_j[c];
                let da_n = dh_new * (1.0 - z[c]) * (1.0 - n[c] * n[c]);
                let da_r = da_n * ghn[c] * r[c] * (1.0 - r[c]);
                let da_z = dh_new * (h_prev[c] - n[c]) * z[c] * (1.0 - z[c]);
                d_gi_r[c] = da_r;
                d_gi_z[c] = da_z;
                d_gi_n[c] = da_n;
                d_gh_r[c] = da_r;
                d_gh_z[c] = da_z;
                d_gh_n[c] = da_n * r[c];
                // Through h' = n + z (h - n).
                dh_prev_j[c] = dh_new * z[c];
            }
        }
        // dh_prev += d_gh_t · W_hhᵀ: [k, 3h] x [3h, hidden]
        matmul(
            [k, g3, hidden],
            &mut dh_prev,
            true,
            &d_gh[offset * g3..(offset + k) * g3],
            (g3, 1),
            &saved.w_hh,
            (1, g3),
        );
        for (j, &b) in active.iter().enumerate() {
            dh[b * hidden..(b + 1) * hidden]
                .copy_from_slice(&dh_prev[j * hidden..(j + 1) * hidden]);
        }
    }
    // dW_hh = Σ_rows h_prevᵀ · d_gh: [hidden, rows] x [rows, 3h]
    let mut d_w = vec![0.0f32; hidden * g3];
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

fn run(
    gi: &FlexTensor,
    h0: &FlexTensor,
    w_hh: &FlexTensor,
    b_hh: &FlexTensor,
    mask: &FlexTensor,
    reverse: bool,
    keep: bool,
) -> (FlexTensor, Option<Saved>) {
    let h0_shape = h0.layout().shape();
    let (batch, hidden) = (h0_shape[0], h0_shape[1]);
    let packing = Packing::new(&values(mask), batch);
    let dims = Dims {
        rows: packing.len(),
        batch,
        hidden,
    };
    assert_eq!(
        gi.layout().shape().to_vec(),
        vec![dims.rows, 3 * hidden],
        "one input projection per packed row"
    );
    let (out, saved) = forward(
        &values(gi),
        &values(h0),
        values(w_hh).into_owned(),
        &values(b_hh),
        packing,
        dims,
        reverse,
        keep,
    );
    (tensor(out, vec![dims.rows + batch, hidden]), saved)
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
        let Dims {
            rows,
            batch,
            hidden,
        } = saved.dims;
        let [d_gi, d_h0, d_w, d_b] = backward(&saved, &values(&grad));
        let shapes = [
            vec![rows, 3 * hidden],
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

    /// The packed GRU against the same layers through Burn's own operations and autodiff,
    /// step by step over the padded batch: outputs, final states and the gradients of the
    /// input, the initial state and every weight, for a two-layer bidirectional GRU with
    /// padding, sorted longest first and not, and with none. A wrong gate in either backward,
    /// or a row packed in the wrong place, fails this.
    #[test]
    fn packed_gru_matches_burns_autodiff() {
        let device = crate::train::device();
        let (seq, batch, input, hidden) = (5, 3, 4, 6);
        device.seed(3);
        let gru = Gru::new(input, hidden, 2, true, 0.0, &device);
        let x = Tensor::<3>::random([seq, batch, input], Distribution::Normal(0.0, 1.0), &device);
        let h0 = Tensor::<3>::random([4, batch, hidden], Distribution::Normal(0.0, 0.5), &device);
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
        // Each output position and final state weighed differently, so every gradient path
        // counts.
        let weights = Tensor::<3>::random(
            [seq, batch, 2 * hidden],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let last_weights =
            Tensor::<3>::random([4, batch, hidden], Distribution::Normal(0.0, 1.0), &device);
        for lengths in [Some([5, 3, 1]), Some([3, 5, 1]), Some([2, 4, 3]), None] {
            let masks = lengths.map(masks_for);
            let run = |packed: bool| {
                let x = x.clone().require_grad();
                let h0 = h0.clone().require_grad();
                let (out, last) = if packed {
                    forward_packed(&gru, x.clone(), Some(h0.clone()), masks.as_deref())
                } else {
                    gru.forward_steps(x.clone(), Some(h0.clone()), masks.as_deref())
                };
                let loss = (out.clone() * weights.clone()).sum()
                    + (last.clone() * last_weights.clone()).sum();
                let grads = loss.backward();
                let mut values = vec![
                    out.to_data(),
                    last.to_data(),
                    x.grad(&grads).unwrap().to_data(),
                    h0.grad(&grads).unwrap().to_data(),
                ];
                for cell in gru.cells.iter().chain(&gru.cells_reverse) {
                    for linear in [&cell.ih, &cell.hh] {
                        values.push(linear.weight.val().grad(&grads).unwrap().to_data());
                        let bias = linear.bias.as_ref().unwrap().val();
                        values.push(bias.grad(&grads).unwrap().to_data());
                    }
                }
                values
            };
            let (packed, reference) = (run(true), run(false));
            let tolerance = burn::tensor::Tolerance::<f32>::absolute(1e-5);
            for (p, r) in packed.iter().zip(&reference) {
                p.assert_approx_eq(r, tolerance);
            }
        }
    }
}
