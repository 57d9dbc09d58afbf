//! `-log softmax(logits)[target]` of each row as one autodiff node, for the training loss.
//!
//! Through Burn's ops, `log_softmax(logits, 1).gather(1, target).neg()` makes five passes
//! over the `[words, num_words]` logits forward, each allocating a result and computing
//! `exp` one element at a time, and as many backward, the gather's a scatter into zeros.
//! Here the forward keeps only each row's log-sum-exp, and the backward writes the logits'
//! gradient in one pass: `g (softmax(x) - onehot(target))`.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, Flex, backend_extension};
use burn::prelude::*;
use rayon::prelude::*;

use super::flex_values as values;
use crate::fastmath::{exp, log_sum_exp};

#[backend_extension(Flex, Autodiff)]
pub trait NllBackend: Backend {
    /// `logits` [rows, classes], `targets` [rows] (class ids). Returns [rows, 1]:
    /// `-log softmax(logits)[target]` of each row.
    fn nll(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self>;
}

/// `-log softmax(logits)[target]` of each row: `logits` [rows, classes], `targets` [rows].
/// Returns [rows, 1]. Training's tensors only (the flex backend, with or without autodiff).
pub fn nll(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<2> {
    Tensor::from_dispatch(<burn::backend::Dispatch as NllBackend>::nll(
        logits.into_dispatch(),
        targets.into_dispatch(),
    ))
}

/// What the backward needs.
#[derive(Debug, Clone)]
struct Saved {
    logits: FlexTensor,
    /// Each row's `log Σ exp(logits)`.
    lse: Vec<f32>,
    targets: Vec<usize>,
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// The class ids, checked against the number of classes.
fn targets_of(targets: FlexTensor, classes: usize) -> Vec<usize> {
    let ids = targets
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("integer targets");
    ids.into_iter()
        .map(|id| {
            let id = usize::try_from(id).expect("a class id is not negative");
            assert!(id < classes, "class id {id} of {classes} classes");
            id
        })
        .collect()
}

/// Rows per parallel task: a few rows of logits, so both threads get work.
const ROWS_PER_TASK: usize = 8;

/// Returns each row's NLL and log-sum-exp.
fn forward(logits: &[f32], classes: usize, targets: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let rows = targets.len();
    let mut lse = vec![0.0f32; rows];
    lse.par_chunks_mut(ROWS_PER_TASK)
        .zip(logits.par_chunks(ROWS_PER_TASK * classes))
        .for_each(|(lse, logits)| {
            for (lse, row) in lse.iter_mut().zip(logits.chunks_exact(classes)) {
                *lse = log_sum_exp(row);
            }
        });
    let nll = targets
        .iter()
        .enumerate()
        .map(|(i, &t)| lse[i] - logits[i * classes + t])
        .collect();
    (nll, lse)
}

/// The logits' gradient from that of the NLL [rows]: `g (softmax(x) - onehot(target))`.
fn backward(saved: &Saved, grad: &[f32]) -> Vec<f32> {
    let logits = values(&saved.logits);
    let classes = logits.len() / saved.targets.len().max(1);
    let mut d = vec![0.0f32; logits.len()];
    d.par_chunks_mut(ROWS_PER_TASK * classes)
        .zip(logits.par_chunks(ROWS_PER_TASK * classes))
        .enumerate()
        .for_each(|(task, (d, logits))| {
            let rows = d
                .chunks_exact_mut(classes)
                .zip(logits.chunks_exact(classes));
            for (j, (d, x)) in rows.enumerate() {
                let i = task * ROWS_PER_TASK + j;
                let (g, lse) = (grad[i], saved.lse[i]);
                for (d, &x) in d.iter_mut().zip(x) {
                    *d = g * exp(x - lse);
                }
                d[saved.targets[i]] -= g;
            }
        });
    d
}

fn run(logits: FlexTensor, targets: FlexTensor) -> (FlexTensor, Saved) {
    let shape = logits.layout().shape();
    let (rows, classes) = (shape[0], shape[1]);
    let targets = targets_of(targets, classes);
    assert_eq!(targets.len(), rows, "one target per row");
    let (nll, lse) = forward(&values(&logits), classes, &targets);
    let saved = Saved {
        logits,
        lse,
        targets,
    };
    (tensor(nll, vec![rows, 1]), saved)
}

impl NllBackend for Flex {
    fn nll(logits: FlexTensor, targets: FlexTensor) -> FlexTensor {
        run(logits, targets).0
    }
}

#[derive(Debug)]
struct NllBackward;

impl Backward<Flex, 1> for NllBackward {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let saved = ops.state;
        let d = backward(&saved, &values(&grad));
        if let Some(node) = node {
            let shape = saved.logits.layout().shape().to_vec();
            grads.register::<Flex>(node.id, tensor(d, shape));
        }
    }
}

impl<C: CheckpointStrategy> NllBackend for Autodiff<Flex, C> {
    fn nll(logits: FloatTensor<Self>, targets: IntTensor<Self>) -> FloatTensor<Self> {
        let prep = NllBackward
            .prepare::<C>([logits.node()])
            .compute_bound()
            .stateful();
        let (out, saved) = run(logits.primitive().clone(), targets);
        match prep {
            OpsKind::Tracked(prep) => prep.finish(saved, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use burn::tensor::activation::log_softmax;

    use super::*;

    /// Against Burn's own `log_softmax`, `gather` and autodiff: the NLL and the logits'
    /// gradient, with rows weighed differently and logits far apart (a row of large ones
    /// checks the max is taken out).
    #[test]
    fn nll_matches_burns_log_softmax() {
        let device = crate::train::device();
        device.seed(5);
        let (rows, classes) = (21, 37);
        let logits = Tensor::<2>::random([rows, classes], Distribution::Normal(0.0, 3.0), &device);
        let shift = Tensor::<2>::from_data(
            TensorData::new(
                (0..rows).map(|i| if i == 3 { 60.0 } else { 0.0 }).collect(),
                [rows, 1],
            ),
            &device,
        );
        let logits = logits + shift;
        let targets: Vec<i64> = (0..rows).map(|i| (i * 7 % classes) as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [rows]), &device);
        let weights = Tensor::<2>::random([rows, 1], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let logits = logits.clone().require_grad();
            let out = if fused {
                nll(logits.clone(), targets.clone())
            } else {
                log_softmax(logits.clone(), 1)
                    .gather(1, targets.clone().reshape([rows, 1]))
                    .neg()
            };
            let grads = (out.clone() * weights.clone()).sum().backward();
            (out.to_data(), logits.grad(&grads).unwrap().to_data())
        };
        let (fused, reference) = (run(true), run(false));
        let tolerance = burn::tensor::Tolerance::<f32>::absolute(2e-5);
        fused.0.assert_approx_eq(&reference.0, tolerance);
        fused.1.assert_approx_eq(&reference.1, tolerance);
    }
}
