//! Import of the tutorial's checkpoint: the dict `torch.save` writes, with keys `en`, `de`,
//! `embedding`, `voc_dict` (and optimizer states, ignored), read without Python.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use burn_store::bridge;
use burn_store::pytorch_reader::{PickleValue, PytorchReader};

use crate::bundle::{Bundle, model_from_tensors};
use crate::config::{AttnMethod, ModelConfig, WeightDtype};
use crate::error::{Error, Result};
use crate::voc::Voc;

/// Reads a tutorial checkpoint into a bundle whose tensors will be stored as `dtype`.
///
/// The shape is inferred from the state dicts: hidden size and vocabulary from the
/// embedding, layer counts from the GRU weights, the attention method from `attn.v`
/// (concat), `attn.attn.weight` (general) or neither (dot).
pub fn import_checkpoint(path: &Path, dtype: WeightDtype, device: &Device) -> Result<Bundle> {
    let bad = |m: String| Error::BadCheckpoint(m);
    let reader = PytorchReader::new(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let mut tensors = HashMap::new();
    for (name, tensor) in reader.into_tensors() {
        // `en.embedding.weight` and `de.embedding.weight` are copies of `embedding.weight`.
        let bundle_name = match name.split_once('.') {
            Some(("en", rest)) if !rest.starts_with("embedding.") => format!("encoder.{rest}"),
            Some(("de", rest)) if !rest.starts_with("embedding.") => format!("decoder.{rest}"),
            Some(("embedding", "weight")) => name.clone(),
            _ => continue,
        };
        tensors.insert(bundle_name, tensor);
    }
    let embedding = tensors
        .get("embedding.weight")
        .ok_or_else(|| bad("no 'embedding' state dict with 'weight'".into()))?;
    let [num_words, hidden_size] = embedding.shape()[..] else {
        return Err(bad(format!(
            "embedding.weight has shape {:?}, expected 2 dimensions",
            embedding.shape()
        )));
    };
    let layers = |prefix: &str| {
        (0..)
            .take_while(|k| tensors.contains_key(&format!("{prefix}.gru.weight_ih_l{k}")))
            .count()
    };
    let attn_model = if tensors.contains_key("decoder.attn.v") {
        AttnMethod::Concat
    } else if tensors.contains_key("decoder.attn.attn.weight") {
        AttnMethod::General
    } else {
        AttnMethod::Dot
    };
    let config = ModelConfig {
        encoder_n_layers: layers("encoder"),
        decoder_n_layers: layers("decoder"),
        attn_model,
        dtype,
        ..ModelConfig::new(num_words, hidden_size)
    };
    config.check().map_err(|e| bad(format!("inferred {e}")))?;

    let voc = read_voc(path)?;
    if voc.num_words() != num_words {
        return Err(bad(format!(
            "voc_dict has {} words but the embedding has {num_words} rows",
            voc.num_words()
        )));
    }
    let tensors = tensors
        .into_iter()
        .map(|(name, mut tensor)| {
            tensor.name = name;
            bridge::from_pytorch(tensor)
        })
        .collect();
    let model = model_from_tensors(&config, tensors, device)?;
    Ok(Bundle { config, voc, model })
}

/// `voc_dict`, the tutorial's `voc.__dict__`: `index2word` maps ids 0..num_words to words.
fn read_voc(path: &Path) -> Result<Voc> {
    let bad = |m: &str| Error::BadCheckpoint(format!("voc_dict: {m}"));
    let voc_dict = PytorchReader::read_pickle_data(path, Some("voc_dict"))
        .map_err(|e| Error::BadCheckpoint(format!("voc_dict: {e}")))?;
    let PickleValue::Dict(voc_dict) = voc_dict else {
        return Err(bad("not a dict"));
    };
    let Some(PickleValue::Int(num_words)) = voc_dict.get("num_words") else {
        return Err(bad("no integer 'num_words'"));
    };
    let Some(PickleValue::Dict(index2word)) = voc_dict.get("index2word") else {
        return Err(bad("no dict 'index2word'"));
    };
    let words = (0..*num_words)
        .map(|i| match index2word.get(&i.to_string()) {
            Some(PickleValue::String(w)) => Ok(w.clone()),
            _ => Err(bad(&format!("index2word has no word for {i}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    Voc::new(words).map_err(|e| Error::BadCheckpoint(format!("voc_dict: {e}")))
}
