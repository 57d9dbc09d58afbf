//! `nn.GRU` with PyTorch's equations, gate order and packed-sequence semantics.

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, tanh};

use super::linear::{Linear, linear, product, with_values};
use crate::fastmath;

/// One direction of one layer: PyTorch's `weight_ih_l{k}`, `bias_ih_l{k}`, `weight_hh_l{k}`,
/// `bias_hh_l{k}` (with `_reverse` for the backward direction). Each `Linear` holds all
/// three gates (r, z, n), so a step costs one matrix product per weight matrix.
#[derive(Module, Debug)]
pub struct GruCell {
    /// `weight_ih`: [input, 3 * hidden] in Burn's layout (PyTorch stores its transpose).
    pub ih: Linear,
    /// `weight_hh`: [hidden, 3 * hidden].
    pub hh: Linear,
}

impl GruCell {
    pub(crate) fn new(input: usize, hidden: usize, device: &Device) -> Self {
        Self {
            ih: Linear::new(input, 3 * hidden, device),
            hh: Linear::new(hidden, 3 * hidden, device),
        }
    }

    /// One time step. `gi`: the input projection `W_ih x + b_ih` of this step, [batch, 3 * hidden];
    /// `h`: [batch, hidden]. Returns the new hidden state, [batch, hidden]:
    ///
    /// ```text
    /// r = σ(gi_r + gh_r)   z = σ(gi_z + gh_z)   n = tanh(gi_n + r ⊙ gh_n)
    /// h' = (1 - z) ⊙ n + z ⊙ h
    /// ```
    fn step(&self, gi: Tensor<2>, h: Tensor<2>) -> Tensor<2> {
        if let Some(next) = self.step_on_host(&gi, &h) {
            return next;
        }
        let [batch, three_hidden] = gi.dims();
        let hidden = three_hidden / 3;
        let gh = linear(&self.hh, h.clone()); // [batch, 3 * hidden]
        let rz = sigmoid(
            gi.clone().slice(s![.., 0..2 * hidden]) + gh.clone().slice(s![.., 0..2 * hidden]),
        ); // [batch, 2 * hidden]
        let r = rz.clone().slice(s![.., 0..hidden]);
        let z = rz.slice(s![.., hidden..2 * hidden]);
        let n = tanh(gi.slice(s![.., 2 * hidden..]) + r * gh.slice(s![.., 2 * hidden..]));
        debug_assert_eq!(n.dims(), [batch, hidden]);
        n.clone() + z * (h - n)
    }

    /// [`step`](Self::step) for inference, in one pass over the values with the polynomial
    /// `sigmoid` and `tanh` of [`crate::fastmath`], which vectorise: about a dozen Burn
    /// operations fewer per step, each a pass and an allocation, and no `libm` call per
    /// value. `None` for tensors that record gradients (training).
    fn step_on_host(&self, gi: &Tensor<2>, h: &Tensor<2>) -> Option<Tensor<2>> {
        let [batch, three_hidden] = gi.dims();
        let hidden = three_hidden / 3;
        let next = with_values(h, |h| {
            let gh = product(&self.hh, h)?; // [batch, 3 * hidden]
            with_values(gi, |gi| gates(gi, &gh, h, hidden))
        })??;
        Some(Tensor::from_data(
            TensorData::new(next, [batch, hidden]),
            &gi.device(),
        ))
    }

    /// Runs the cell over a whole sequence. `gi`: [seq, batch, 3 * hidden], the input
    /// projections of every step; `h`: [batch, hidden]; `mask`: per step, [batch, 1] with 1
    /// where the step is a real token and 0 where it is padding. Returns the outputs
    /// [seq, batch, hidden] in time order (zero at padding) and the final state.
    ///
    /// A padded step leaves the state as it was, so the forward direction ends on each
    /// sequence's last real token and the reverse direction starts there, as
    /// `pack_padded_sequence` makes PyTorch do.
    pub(crate) fn run(
        &self,
        gi: Tensor<3>,
        mut h: Tensor<2>,
        mask: Option<&[Tensor<2>]>,
        reverse: bool,
    ) -> (Tensor<3>, Tensor<2>) {
        let [seq, batch, three_hidden] = gi.dims();
        let mut outputs = Vec::with_capacity(seq);
        for i in 0..seq {
            let t = if reverse { seq - 1 - i } else { i };
            let gi_t = gi.clone().slice(s![t]).reshape([batch, three_hidden]);
            let h_new = self.step(gi_t, h.clone());
            match mask {
                Some(mask) => {
                    let m = mask[t].clone(); // [batch, 1]
                    let out = h_new * m.clone();
                    h = out.clone() + h * (m.neg() + 1.0);
                    outputs.push(out);
                }
                None => {
                    h = h_new;
                    outputs.push(h.clone());
                }
            }
        }
        if reverse {
            outputs.reverse();
        }
        (Tensor::stack(outputs, 0), h)
    }
}

/// PyTorch's `nn.GRU(input_size, hidden_size, num_layers, dropout, bidirectional)`,
/// time-major (`batch_first=False`).
#[derive(Module, Debug)]
pub struct Gru {
    /// Forward direction of each layer (`*_l{k}`).
    pub cells: Vec<GruCell>,
    /// Backward direction of each layer (`*_l{k}_reverse`); empty when unidirectional.
    pub cells_reverse: Vec<GruCell>,
    /// Dropout on each layer's output but the last, in training only.
    pub dropout: Dropout,
    pub hidden_size: usize,
}

impl Gru {
    pub fn new(
        input: usize,
        hidden: usize,
        layers: usize,
        bidirectional: bool,
        dropout: f64,
        device: &Device,
    ) -> Self {
        let directions = if bidirectional { 2 } else { 1 };
        let layer_input = |k: usize| if k == 0 { input } else { directions * hidden };
        let cells = (0..layers)
            .map(|k| GruCell::new(layer_input(k), hidden, device))
            .collect();
        let cells_reverse = if bidirectional {
            (0..layers)
                .map(|k| GruCell::new(layer_input(k), hidden, device))
                .collect()
        } else {
            Vec::new()
        };
        // PyTorch applies no dropout to a single-layer GRU; the tutorial passes 0 then.
        let dropout = if layers == 1 { 0.0 } else { dropout };
        Self {
            cells,
            cells_reverse,
            dropout: DropoutConfig::new(dropout).init(),
            hidden_size: hidden,
        }
    }

    pub fn num_layers(&self) -> usize {
        self.cells.len()
    }

    fn num_directions(&self) -> usize {
        if self.cells_reverse.is_empty() { 1 } else { 2 }
    }

    /// `input`: [seq, batch, input]; `h0`: [layers * directions, batch, hidden], zeros when
    /// `None`; `mask`: per step [batch, 1], 1 for real tokens, `None` when nothing is padded.
    ///
    /// Returns `output` [seq, batch, directions * hidden] (zero at padding) and `h_n`
    /// [layers * directions, batch, hidden] ordered as PyTorch's: l0 fwd, l0 bwd, l1 fwd, ...
    pub fn forward(
        &self,
        input: Tensor<3>,
        h0: Option<Tensor<3>>,
        mask: Option<&[Tensor<2>]>,
    ) -> (Tensor<3>, Tensor<3>) {
        #[cfg(feature = "train")]
        if input.is_autodiff() {
            // Training: packed rows, each recurrence one node with a hand-written backward.
            return crate::train::gru::forward_packed(self, input, h0, mask);
        }
        self.forward_steps(input, h0, mask)
    }

    /// [`forward`](Self::forward) through Burn's tensor operations, one step at a time.
    pub(crate) fn forward_steps(
        &self,
        input: Tensor<3>,
        h0: Option<Tensor<3>>,
        mask: Option<&[Tensor<2>]>,
    ) -> (Tensor<3>, Tensor<3>) {
        let [seq, batch, _] = input.dims();
        let directions = self.num_directions();
        let device = input.device();
        let h0 = h0.unwrap_or_else(|| {
            Tensor::zeros(
                [self.num_layers() * directions, batch, self.hidden_size],
                &device,
            )
        });
        let mut x = input;
        let mut h_n = Vec::with_capacity(self.num_layers() * directions);
        for k in 0..self.num_layers() {
            if k > 0 {
                x = self.dropout.forward(x);
            }
            let mut layer_cells = vec![(&self.cells[k], false)];
            if let Some(cell) = self.cells_reverse.get(k) {
                layer_cells.push((cell, true));
            }
            let mut outputs = Vec::with_capacity(directions);
            for (d, (cell, reverse)) in layer_cells.into_iter().enumerate() {
                // One product for the whole sequence: [seq, batch, 3 * hidden].
                let gi = linear(&cell.ih, x.clone());
                let h = h0
                    .clone()
                    .slice(s![k * directions + d])
                    .reshape([batch, self.hidden_size]);
                let (out, h_last) = cell.run(gi, h, mask, reverse);
                outputs.push(out);
                h_n.push(h_last);
            }
            x = if outputs.len() == 1 {
                outputs.pop().expect("one direction")
            } else {
                Tensor::cat(outputs, 2)
            };
            debug_assert_eq!(x.dims()[0], seq);
        }
        (x, Tensor::stack(h_n, 0))
    }
}

/// The new states of [`GruCell::step`] from `gi` and `gh` ([batch, 3 * hidden], gates r, z,
/// n) and `h` ([batch, hidden]), in one pass: [batch, hidden].
fn gates(gi: &[f32], gh: &[f32], h: &[f32], hidden: usize) -> Vec<f32> {
    let mut next = vec![0.0f32; h.len()];
    let rows = gi.chunks_exact(3 * hidden).zip(gh.chunks_exact(3 * hidden));
    for ((gi, gh), (h, out)) in rows.zip(h.chunks_exact(hidden).zip(next.chunks_exact_mut(hidden)))
    {
        let (gi_r, gi_z, gi_n) = (&gi[..hidden], &gi[hidden..2 * hidden], &gi[2 * hidden..]);
        let (gh_r, gh_z, gh_n) = (&gh[..hidden], &gh[hidden..2 * hidden], &gh[2 * hidden..]);
        for j in 0..hidden {
            let r = fastmath::sigmoid(gi_r[j] + gh_r[j]);
            let z = fastmath::sigmoid(gi_z[j] + gh_z[j]);
            let n = fastmath::tanh(gi_n[j] + r * gh_n[j]);
            out[j] = n + z * (h[j] - n);
        }
    }
    next
}

/// Per step, [batch, 1]: 1.0 where step `t` is inside the sequence, 0.0 past its end.
/// `None` when no sequence is shorter than `seq`, so unpadded input pays nothing.
pub(crate) fn step_masks(lengths: &[usize], seq: usize, device: &Device) -> Option<Vec<Tensor<2>>> {
    if lengths.iter().all(|&l| l == seq) {
        return None;
    }
    let batch = lengths.len();
    let values: Vec<f32> = (0..seq)
        .flat_map(|t| lengths.iter().map(move |&l| if t < l { 1.0 } else { 0.0 }))
        .collect();
    let mask = Tensor::<3>::from_data(TensorData::new(values, [seq, batch, 1]), device);
    Some(
        (0..seq)
            .map(|t| mask.clone().slice(s![t]).reshape([batch, 1]))
            .collect(),
    )
}
