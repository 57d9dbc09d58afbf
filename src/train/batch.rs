//! The tutorial's `batch2TrainData`: padded, time-major tensors of a batch of pairs.

use burn::prelude::*;

use super::pairs::Pair;
use crate::voc::{PAD_TOKEN, Voc};

/// A batch ready for the model. Every word of its pairs must be in the vocabulary.
pub struct Batch {
    /// Messages, [seq, batch], padded with PAD, longest first.
    pub input: Tensor<2, Int>,
    /// Each message's length in tokens, EOS included.
    pub lengths: Vec<usize>,
    /// Replies, [max_target_len, batch], padded with PAD.
    pub target: Tensor<2, Int>,
    /// Each reply's length in tokens, EOS included.
    pub target_lengths: Vec<usize>,
    /// Where `target`, flattened time-major, holds a word rather than padding: [words].
    pub words: Tensor<1, Int>,
    /// Those words' ids: [words, 1].
    pub word_ids: Tensor<2, Int>,
    /// Each word's weight in the loss, one over its step's count of words: [words, 1].
    pub word_weights: Tensor<2>,
    /// Per target step, how many real tokens it has.
    pub mask_counts: Vec<usize>,
    /// For each column, the index of its pair in the `pairs` the batch was built from.
    pub order: Vec<usize>,
}

/// Builds a batch, sorted by message length as the tutorial does for `pack_padded_sequence`.
pub fn batch_to_train_data(voc: &Voc, pairs: &[&Pair], device: &Device) -> Batch {
    let unsorted: Vec<(Vec<u32>, Vec<u32>)> = pairs
        .iter()
        .map(|(a, b)| (voc.encode(a).ids, voc.encode(b).ids))
        .collect();
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(unsorted[i].0.len()));
    let encoded: Vec<&(Vec<u32>, Vec<u32>)> = order.iter().map(|&i| &unsorted[i]).collect();
    let batch = encoded.len();
    let lengths: Vec<usize> = encoded.iter().map(|(a, _)| a.len()).collect();
    let seq = lengths[0];
    let target_len = encoded.iter().map(|(_, b)| b.len()).max().unwrap_or(0);
    let inputs: Vec<&[u32]> = encoded.iter().map(|(a, _)| a.as_slice()).collect();
    let targets: Vec<&[u32]> = encoded.iter().map(|(_, b)| b.as_slice()).collect();
    let input = time_major(&inputs, seq);
    let target = time_major(&targets, target_len);
    let mask_counts: Vec<usize> = target
        .chunks(batch)
        .map(|step| step.iter().filter(|&&id| id != PAD_TOKEN as i64).count())
        .collect();
    let words: Vec<i64> = (0..target.len())
        .filter(|&i| target[i] != PAD_TOKEN as i64)
        .map(|i| i as i64)
        .collect();
    let word_ids: Vec<i64> = words.iter().map(|&i| target[i as usize]).collect();
    let word_weights: Vec<f32> = words
        .iter()
        .map(|&i| 1.0 / mask_counts[i as usize / batch] as f32)
        .collect();
    let n = words.len();
    Batch {
        input: Tensor::from_data(TensorData::new(input, [seq, batch]), device),
        lengths,
        target: Tensor::from_data(TensorData::new(target, [target_len, batch]), device),
        target_lengths: targets.iter().map(|t| t.len()).collect(),
        words: Tensor::from_data(TensorData::new(words, [n]), device),
        word_ids: Tensor::from_data(TensorData::new(word_ids, [n, 1]), device),
        word_weights: Tensor::from_data(TensorData::new(word_weights, [n, 1]), device),
        mask_counts,
        order,
    }
}

/// Sequences laid out time-major and padded with PAD: element `[t * batch + b]`.
fn time_major(sequences: &[&[u32]], len: usize) -> Vec<i64> {
    let batch = sequences.len();
    let mut ids = vec![PAD_TOKEN as i64; len * batch];
    for (b, sequence) in sequences.iter().enumerate() {
        for (t, &id) in sequence.iter().enumerate() {
            ids[t * batch + b] = id as i64;
        }
    }
    ids
}
