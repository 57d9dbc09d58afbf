//! The tutorial's optimizer step, made equal to PyTorch's:
//!
//! ```python
//! clip_grad_norm_(encoder.parameters(), clip)   # the embedding is among them
//! clip_grad_norm_(decoder.parameters(), clip)   # and among these: clipped twice
//! encoder_optimizer.step()                      # steps the embedding
//! decoder_optimizer.step()                      # steps it again, with its own moments
//! ```
//!
//! [`Adam`] is PyTorch's `torch.optim.Adam` (β 0.9, 0.999, ε 1e-8, no weight decay) as one
//! pass over each parameter's values, gradient and moments, where Burn's Adam runs about a
//! dozen tensor operations per parameter, each allocating a tensor of its size.

use std::collections::BTreeMap;
use std::path::Path;

use burn::backend::Flex;
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use rayon::prelude::*;
use safetensors::tensor::{Dtype, TensorView};

use super::{flex, flex_values};
use crate::error::{Error, Result, read};
use crate::model::Seq2Seq;

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPSILON: f64 = 1e-8;

/// The metadata entry that marks a file of [`Adam::save`], and the prefix of each step count's.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "burnchat-adam-1";
const STEP: &str = "step:";

/// One parameter's Adam state: PyTorch's `step`, `exp_avg` and `exp_avg_sq`.
#[derive(Debug, Clone, PartialEq)]
struct Moments {
    step: u64,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// `torch.optim.Adam` over named parameters; a name may be stepped by more than one module
/// (the shared embedding is not: each optimizer keeps its own moments for it, as PyTorch's
/// two optimizers do).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Adam {
    moments: BTreeMap<String, Moments>,
}

impl Adam {
    pub fn new() -> Self {
        Self::default()
    }

    /// One Adam step on every parameter of `module` with a gradient in `grads`, each gradient
    /// first multiplied by `scale` (the clipping coefficient). `prefix` names the module in
    /// this optimizer's state.
    pub fn step<M: Module>(
        &mut self,
        prefix: &str,
        lr: f64,
        module: M,
        grads: &GradientsParams,
        scale: f64,
    ) -> M {
        module.map(&mut Stepper {
            adam: self,
            grads,
            lr,
            scale,
            path: vec![prefix.to_string()],
        })
    }

    /// Writes the moments as safetensors (`<name>.m`, `<name>.v`; `step:<name>` and the
    /// format in the metadata), through a temporary file so an interrupted save keeps the old one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<(String, Vec<u8>, usize)> = self
            .moments
            .iter()
            .flat_map(|(name, moments)| {
                [("m", &moments.m), ("v", &moments.v)].map(|(kind, values)| {
                    let bytes = values.iter().flat_map(|x| x.to_le_bytes()).collect();
                    (format!("{name}.{kind}"), bytes, values.len())
                })
            })
            .collect();
        let views = bytes.iter().map(|(name, bytes, len)| {
            let view = TensorView::new(Dtype::F32, vec![*len], bytes).expect("sizes agree");
            (name.clone(), view)
        });
        let mut metadata: std::collections::HashMap<String, String> = self
            .moments
            .iter()
            .map(|(name, moments)| (format!("{STEP}{name}"), moments.step.to_string()))
            .collect();
        metadata.insert(FORMAT_KEY.into(), FORMAT.into());
        let data = safetensors::serialize(views, Some(metadata))
            .map_err(|e| bad_state(path, e.to_string()))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, data).map_err(Error::io(&tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io(path))
    }

    /// Reads what [`save`](Self::save) wrote.
    pub fn load(path: &Path) -> Result<Self> {
        let data = read(path)?;
        let (_, metadata) = safetensors::SafeTensors::read_metadata(&data)
            .map_err(|e| bad_state(path, e.to_string()))?;
        let file = safetensors::SafeTensors::deserialize(&data)
            .map_err(|e| bad_state(path, e.to_string()))?;
        let metadata = metadata.metadata().clone().unwrap_or_default();
        if metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
            return Err(bad_state(path, format!("not a {FORMAT} file")));
        }
        let steps = metadata
            .into_iter()
            .filter_map(|(key, step)| Some((key.strip_prefix(STEP)?.to_string(), step)));
        let values = |name: &str| -> Result<Vec<f32>> {
            let view = file
                .tensor(name)
                .map_err(|e| bad_state(path, format!("{name}: {e}")))?;
            if view.dtype() != Dtype::F32 {
                return Err(bad_state(path, format!("{name} is not f32")));
            }
            Ok(view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect())
        };
        let mut moments = BTreeMap::new();
        for (name, step) in steps {
            let step = step
                .parse()
                .map_err(|_| bad_state(path, format!("{name}: step {step:?} is not a count")))?;
            let (m, v) = (values(&format!("{name}.m"))?, values(&format!("{name}.v"))?);
            if m.len() != v.len() {
                return Err(bad_state(
                    path,
                    format!("{name}: moments of different sizes"),
                ));
            }
            moments.insert(name, Moments { step, m, v });
        }
        Ok(Self { moments })
    }
}

fn bad_state(path: &Path, message: String) -> Error {
    Error::BadBundle {
        file: path.display().to_string(),
        message,
    }
}

struct Stepper<'a> {
    adam: &'a mut Adam,
    grads: &'a GradientsParams,
    lr: f64,
    scale: f64,
    path: Vec<String>,
}

impl ModuleMapper for Stepper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.get::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let (require_grad, autodiff) = (tensor.is_require_grad(), tensor.is_autodiff());
        // The parameter's memory, updated in place when nothing else holds it.
        let mut values = flex(tensor.inner());
        let grad = flex(grad);
        let grad = flex_values(&grad);
        let storage = values.storage_mut::<f32>();
        let moments = self
            .adam
            .moments
            .entry(self.path.join("."))
            .or_insert_with(|| Moments {
                step: 0,
                m: vec![0.0; storage.len()],
                v: vec![0.0; storage.len()],
            });
        adam_update(storage, &grad, moments, self.lr, self.scale);
        let mut updated = Tensor::<D>::from_primitive::<Flex>(values);
        if autodiff {
            updated = Tensor::from_inner(updated);
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

/// PyTorch's single-tensor Adam, in one pass:
/// `m = β1 m + (1-β1) g`, `v = β2 v + (1-β2) g²`,
/// `p -= lr / (1-β1^t) · m / (√v / √(1-β2^t) + ε)`.
fn adam_update(values: &mut [f32], grad: &[f32], moments: &mut Moments, lr: f64, scale: f64) {
    moments.step += 1;
    let t = moments.step as i32;
    let step_size = (lr / (1.0 - BETA1.powi(t))) as f32;
    let bias_correction2_sqrt = (1.0 - BETA2.powi(t)).sqrt() as f32;
    let (b1, b2, eps, scale) = (BETA1 as f32, BETA2 as f32, EPSILON as f32, scale as f32);
    // In blocks over the pool's threads; each element's arithmetic is the same either way.
    const BLOCK: usize = 1 << 16;
    values
        .par_chunks_mut(BLOCK)
        .zip(grad.par_chunks(BLOCK))
        .zip(moments.m.par_chunks_mut(BLOCK))
        .zip(moments.v.par_chunks_mut(BLOCK))
        .for_each(|(((values, grad), m), v)| {
            // Zipped rather than indexed, so that the loop has no bounds checks and vectorises.
            let slices = values
                .iter_mut()
                .zip(grad)
                .zip(m.iter_mut())
                .zip(v.iter_mut());
            for (((value, &grad), m), v) in slices {
                let g = grad * scale;
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                let denom = v.sqrt() / bias_correction2_sqrt + eps;
                *value -= step_size * *m / denom;
            }
        });
}

/// Σ g² over the gradients of `module`'s parameters in `grads`.
pub fn squared_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    struct Norm<'a> {
        grads: &'a GradientsParams,
        sum: f64,
    }
    impl ModuleVisitor for Norm<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                let grad = flex(grad);
                self.sum += flex_values(&grad)
                    .par_chunks(1 << 16)
                    .map(crate::fastmath::sum_of_squares)
                    .sum::<f64>();
            }
        }
    }
    let mut norm = Norm { grads, sum: 0.0 };
    module.visit(&mut norm);
    norm.sum
}

/// `clip_grad_norm_`'s factor for a total squared norm: `min(1, clip / (norm + 1e-6))`.
pub fn clip_coefficient(clip: f64, squared_norm: f64) -> f64 {
    (clip / (squared_norm.sqrt() + 1e-6)).min(1.0)
}

/// The total gradient norms `clip_grad_norm_` returns for the encoder's parameters and then
/// the decoder's (the latter sees the embedding's gradient as the first clip left it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradNorms {
    pub encoder: f64,
    pub decoder: f64,
}

/// The two optimizers of the tutorial: the encoder's steps the embedding and encoder at
/// `lr`, the decoder's the embedding and decoder at `lr * decoder_learning_ratio`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Optimizers {
    pub encoder: Adam,
    pub decoder: Adam,
}

impl Optimizers {
    /// Clips and steps `model` with the gradients of one backward pass, as the tutorial's
    /// `train` does after `loss.backward()`; also returns the norms before clipping.
    pub fn step(
        &mut self,
        model: Seq2Seq,
        mut grads: burn::tensor::Gradients,
        lr: f64,
        decoder_learning_ratio: f64,
        clip: f64,
    ) -> (Seq2Seq, GradNorms) {
        let Seq2Seq {
            embedding,
            encoder,
            decoder,
        } = model;
        let embedding_grads = GradientsParams::from_module(&mut grads, &embedding);
        let encoder_grads = GradientsParams::from_module(&mut grads, &encoder);
        let decoder_grads = GradientsParams::from_module(&mut grads, &decoder);
        let embedding_norm = squared_norm(&embedding, &embedding_grads);
        let encoder_norm = embedding_norm + squared_norm(&encoder, &encoder_grads);
        let encoder_clip = clip_coefficient(clip, encoder_norm);
        // The second clip sees the embedding's gradient as the first left it.
        let decoder_norm =
            encoder_clip * encoder_clip * embedding_norm + squared_norm(&decoder, &decoder_grads);
        let decoder_clip = clip_coefficient(clip, decoder_norm);
        let embedding_clip = encoder_clip * decoder_clip;
        let decoder_lr = lr * decoder_learning_ratio;
        let embedding =
            self.encoder
                .step("embedding", lr, embedding, &embedding_grads, embedding_clip);
        let encoder = self
            .encoder
            .step("encoder", lr, encoder, &encoder_grads, encoder_clip);
        let embedding = self.decoder.step(
            "embedding",
            decoder_lr,
            embedding,
            &embedding_grads,
            embedding_clip,
        );
        let decoder =
            self.decoder
                .step("decoder", decoder_lr, decoder, &decoder_grads, decoder_clip);
        let norms = GradNorms {
            encoder: encoder_norm.sqrt(),
            decoder: decoder_norm.sqrt(),
        };
        let model = Seq2Seq {
            embedding,
            encoder,
            decoder,
        };
        (model, norms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkpoint keeps every moment and step count exactly, before the first step too.
    #[test]
    fn moments_survive_a_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("adam.safetensors");
        let mut adam = Adam::new();
        adam.save(&path).unwrap();
        assert_eq!(Adam::load(&path).unwrap(), adam);
        for (name, step, len) in [
            ("encoder.gru.cells.0.ih.weight", 3, 7),
            ("embedding.weight", 1, 2),
        ] {
            let values = |k: f32| (0..len).map(|i| k * i as f32 - 0.1).collect();
            adam.moments.insert(
                name.into(),
                Moments {
                    step,
                    m: values(1.5e-3),
                    v: values(2.5e-7),
                },
            );
        }
        adam.save(&path).unwrap();
        assert_eq!(Adam::load(&path).unwrap(), adam);
    }
}
