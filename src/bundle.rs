//! The weight bundle: `model.safetensors`, `config.json` and `voc.json` in one directory.
//!
//! Tensors carry the tutorial's state-dict names and PyTorch's layouts, one `embedding.weight`
//! shared by `encoder.*` and `decoder.*` (see [`tensor_shapes`] for the full list). Inside
//! Burn the GRU weights live at other module paths and every `Linear` weight is transposed;
//! [`to_module_paths`] / [`to_bundle_names`] and burn-store's PyTorch adapters translate.

use burn::prelude::*;
use burn::tensor::DType;
#[cfg(feature = "native")]
use burn_store::BurnToPyTorchAdapter;
use burn_store::burn_pack::Tensor as PackTensor;
use burn_store::{
    FloatCastAdapter, KeyRemapper, ModuleAdapter, ModuleContext, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, SafetensorsStore,
};

use crate::config::{ModelConfig, WeightDtype};
use crate::error::{Error, Result};
use crate::model::Seq2Seq;
use crate::voc::Voc;

pub const MODEL_FILE: &str = "model.safetensors";
pub const CONFIG_FILE: &str = "config.json";
pub const VOC_FILE: &str = "voc.json";

/// Every tensor a bundle of this configuration holds, with its shape in PyTorch's layout,
/// in state-dict order. This list is the format: nothing more, nothing less is accepted.
pub fn tensor_shapes(config: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let h = config.hidden_size;
    let mut shapes = vec![("embedding.weight".to_string(), vec![config.num_words, h])];
    gru_shapes("encoder.gru", h, config.encoder_n_layers, true, &mut shapes);
    gru_shapes(
        "decoder.gru",
        h,
        config.decoder_n_layers,
        false,
        &mut shapes,
    );
    let mut push = |name: &str, shape: Vec<usize>| shapes.push((format!("decoder.{name}"), shape));
    push("concat.weight", vec![h, 2 * h]);
    push("concat.bias", vec![h]);
    push("out.weight", vec![config.num_words, h]);
    push("out.bias", vec![config.num_words]);
    use crate::config::AttnMethod::*;
    match config.attn_model {
        Dot => {}
        General => {
            push("attn.attn.weight", vec![h, h]);
            push("attn.attn.bias", vec![h]);
        }
        Concat => {
            push("attn.attn.weight", vec![h, 2 * h]);
            push("attn.attn.bias", vec![h]);
            push("attn.v", vec![h]);
        }
    }
    shapes
}

/// `nn.GRU(hidden, hidden, layers, bidirectional)`'s parameters under `prefix`.
fn gru_shapes(
    prefix: &str,
    h: usize,
    layers: usize,
    bidirectional: bool,
    out: &mut Vec<(String, Vec<usize>)>,
) {
    let suffixes: &[&str] = if bidirectional {
        &["", "_reverse"]
    } else {
        &[""]
    };
    for k in 0..layers {
        let input = if k == 0 { h } else { suffixes.len() * h };
        for suffix in suffixes {
            out.push((
                format!("{prefix}.weight_ih_l{k}{suffix}"),
                vec![3 * h, input],
            ));
            out.push((format!("{prefix}.weight_hh_l{k}{suffix}"), vec![3 * h, h]));
            out.push((format!("{prefix}.bias_ih_l{k}{suffix}"), vec![3 * h]));
            out.push((format!("{prefix}.bias_hh_l{k}{suffix}"), vec![3 * h]));
        }
    }
}

/// Bundle names to Burn module paths: `encoder.gru.weight_ih_l1_reverse` becomes
/// `encoder.gru.cells_reverse.1.ih.weight`; every other name is already its module path.
pub fn to_module_paths() -> KeyRemapper {
    remapper(&[
        (
            r"^(encoder|decoder)\.gru\.(weight|bias)_(ih|hh)_l(\d+)_reverse$",
            "$1.gru.cells_reverse.$4.$3.$2",
        ),
        (
            r"^(encoder|decoder)\.gru\.(weight|bias)_(ih|hh)_l(\d+)$",
            "$1.gru.cells.$4.$3.$2",
        ),
    ])
}

/// The inverse of [`to_module_paths`].
pub fn to_bundle_names() -> KeyRemapper {
    remapper(&[
        (
            r"^(encoder|decoder)\.gru\.cells_reverse\.(\d+)\.(ih|hh)\.(weight|bias)$",
            "$1.gru.${4}_${3}_l${2}_reverse",
        ),
        (
            r"^(encoder|decoder)\.gru\.cells\.(\d+)\.(ih|hh)\.(weight|bias)$",
            "$1.gru.${4}_${3}_l${2}",
        ),
    ])
}

fn remapper(patterns: &[(&str, &str)]) -> KeyRemapper {
    KeyRemapper::from_patterns(patterns.to_vec()).expect("the patterns are valid regexes")
}

/// Builds the model from tensors named as in a bundle, after checking every name, shape and
/// element type against the configuration. Float tensors of any width load as f32 (on flex,
/// an int8 bundle's float copies of its matrices as the f16 they are stored as).
pub fn model_from_tensors(
    config: &ModelConfig,
    tensors: Vec<PackTensor>,
    device: &Device,
) -> Result<Seq2Seq> {
    check_tensors(config, &tensors, None)?;
    let expected = tensor_shapes(config).len();
    let (tensors, _) = to_module_paths().remap(tensors);
    let mut model = Seq2Seq::new(config, device);
    // An int8 bundle's float matrices stay f16 where the backend holds f16: replies multiply
    // by the int8 ones, and the model never holds an f32 copy.
    let keep_matrices = config.dtype == WeightDtype::Int8 && cfg!(feature = "flex");
    let adapter = PyTorchToBurnAdapter.chain(ToF32 { keep_matrices });
    let result = model.apply(tensors, None, Some(Box::new(adapter)), false);
    if let Some(error) = result.errors.first() {
        return Err(Error::bundle(MODEL_FILE, error));
    }
    if !result.missing.is_empty() || result.applied.len() != expected {
        // Reaching this means tensor_shapes and the module disagree: a bug, not bad input.
        return Err(Error::bundle(
            MODEL_FILE,
            format!(
                "internal: {} of {expected} tensors applied; {result}",
                result.applied.len()
            ),
        ));
    }
    Ok(model)
}

/// Casts every float tensor to f32, but with `keep_matrices` the `Linear` weight matrices.
#[derive(Clone)]
struct ToF32 {
    keep_matrices: bool,
}

impl ModuleAdapter for ToF32 {
    fn adapt(&self, tensor: PackTensor, ctx: ModuleContext<'_>) -> PackTensor {
        if self.keep_matrices
            && tensor.shape.len() == 2
            && ctx.module_type() == Some("Struct:Linear")
        {
            return tensor;
        }
        FloatCastAdapter::to(DType::F32).adapt(tensor, ctx)
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

/// Refuses tensors that do not match [`tensor_shapes`]; `dtype`, when given, is the one
/// element type allowed (a bundle's tensors must all be stored as its `config.json` says).
fn check_tensors(config: &ModelConfig, tensors: &[PackTensor], dtype: Option<DType>) -> Result<()> {
    let expected = tensor_shapes(config);
    for tensor in tensors {
        let found = tensor.shape.to_vec();
        let Some((name, shape)) = expected.iter().find(|(n, _)| *n == tensor.name) else {
            return Err(Error::UnexpectedTensor {
                name: tensor.name.clone(),
                found,
            });
        };
        if *shape != found {
            return Err(Error::BadTensor {
                name: name.clone(),
                expected: shape.clone(),
                found,
            });
        }
        let allowed = match dtype {
            Some(d) => tensor.dtype == d,
            None => tensor.dtype.is_float(),
        };
        if !allowed {
            return Err(Error::BadDtype {
                name: name.clone(),
                expected: dtype.map_or("a float type".to_string(), |d| format!("{d:?}")),
                found: format!("{:?}", tensor.dtype),
            });
        }
    }
    if let Some((name, shape)) = expected
        .iter()
        .find(|(n, _)| !tensors.iter().any(|t| t.name == *n))
    {
        return Err(Error::MissingTensor {
            name: name.clone(),
            expected: shape.clone(),
        });
    }
    Ok(())
}

fn dtype_of(dtype: WeightDtype) -> DType {
    match dtype {
        WeightDtype::F32 => DType::F32,
        // An int8 file is checked once dequantized to f16 ([`crate::quant::dequantize`]).
        WeightDtype::F16 | WeightDtype::Int8 => DType::F16,
    }
}

/// A loaded bundle: the model with its configuration and vocabulary.
#[derive(Debug)]
pub struct Bundle {
    pub config: ModelConfig,
    pub voc: Voc,
    pub model: Seq2Seq,
}

impl Bundle {
    /// Loads a bundle from the bytes of its three files (the browser's way).
    pub fn from_bytes(model: Vec<u8>, config: &[u8], voc: &[u8], device: &Device) -> Result<Self> {
        let config = ModelConfig::from_json(config)?;
        // The sizes must agree with the file before anything of their size is read or made:
        // the tensors alone take `tensor_bytes`.
        let needed = config.tensor_bytes().unwrap_or(usize::MAX);
        if needed > model.len() {
            return Err(Error::bundle(
                MODEL_FILE,
                format!(
                    "{} bytes, too few for the {} parameters config.json describes ({needed} bytes at {:?})",
                    model.len(),
                    config.parameters().unwrap_or(usize::MAX),
                    config.dtype
                ),
            ));
        }
        let voc = Voc::from_json(voc)?;
        if voc.num_words() != config.num_words {
            return Err(Error::bundle(
                VOC_FILE,
                format!(
                    "{} words, but config.json says num_words is {}",
                    voc.num_words(),
                    config.num_words
                ),
            ));
        }
        let (model, mut int8) = match config.dtype {
            WeightDtype::Int8 => crate::quant::dequantize(&model)?,
            _ => (model, Default::default()),
        };
        let mut store = SafetensorsStore::from_bytes(Some(model));
        let tensors: Vec<PackTensor> = store
            .get_all_tensors()
            .map_err(|e| Error::bundle(MODEL_FILE, e))?
            .values()
            .cloned()
            .collect();
        check_tensors(&config, &tensors, Some(dtype_of(config.dtype)))?;
        let mut model = model_from_tensors(&config, tensors, device)?;
        for (name, linear) in model.linears_mut() {
            linear.int8 = int8.remove(&name).map(std::sync::Arc::new);
        }
        Ok(Self { config, voc, model })
    }

    /// Loads a bundle from a directory.
    #[cfg(feature = "native")]
    pub fn load(dir: &std::path::Path, device: &Device) -> Result<Self> {
        let read = |file: &str| crate::error::read(&dir.join(file));
        Self::from_bytes(
            read(MODEL_FILE)?,
            &read(CONFIG_FILE)?,
            &read(VOC_FILE)?,
            device,
        )
    }

    /// Writes the bundle into `dir` (created if needed), tensors stored as `config.dtype`.
    ///
    /// Nothing partial is left behind: the three files are written whole into a staging
    /// directory beside `dir` and then renamed into place, so a failed or interrupted write
    /// leaves `dir` as it was. A new `dir` appears complete in one rename; into an existing
    /// one each file is replaced by its own rename, and other files there are kept.
    #[cfg(feature = "native")]
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        use std::path::Path;
        // `.` or `out/..` name their directory only once resolved.
        let resolved = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let dir = resolved.as_path();
        let name = dir
            .file_name()
            .ok_or_else(|| Error::io(dir)(std::io::Error::other("not a directory's name")))?
            .to_string_lossy();
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        let parent = parent.unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(Error::io(&staging))?;
        let written = self.write_files(&staging).and_then(|()| {
            if !dir.exists() {
                return std::fs::rename(&staging, dir).map_err(Error::io(dir));
            }
            for file in [MODEL_FILE, CONFIG_FILE, VOC_FILE] {
                let to = dir.join(file);
                std::fs::rename(staging.join(file), &to).map_err(Error::io(&to))?;
            }
            Ok(())
        });
        let _ = std::fs::remove_dir_all(&staging);
        written
    }

    /// Writes the three files into the existing directory `dir`.
    #[cfg(feature = "native")]
    fn write_files(&self, dir: &std::path::Path) -> Result<()> {
        // int8 quantises from f32, so that no value is rounded twice.
        let written_as = match self.config.dtype {
            WeightDtype::Int8 => DType::F32,
            dtype => dtype_of(dtype),
        };
        let adapter = BurnToPyTorchAdapter.chain(FloatCastAdapter::to(written_as));
        let model_path = dir.join(MODEL_FILE);
        let mut store = SafetensorsStore::from_file(&model_path)
            .with_to_adapter(adapter)
            .remap(to_bundle_names())
            .overwrite(true);
        self.model
            .save_into(&mut store)
            .map_err(|e| Error::bundle(MODEL_FILE, e))?;
        // int8: written as f32 above, then each matrix quantized by rows.
        if self.config.dtype == WeightDtype::Int8 {
            let f32_file = std::fs::read(&model_path).map_err(Error::io(&model_path))?;
            std::fs::write(&model_path, crate::quant::quantize(&f32_file)?)
                .map_err(Error::io(&model_path))?;
        }
        // burn-store writes through a private temporary file; a bundle is meant to be served.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&model_path, std::fs::Permissions::from_mode(0o644))
                .map_err(Error::io(&model_path))?;
        }
        let config_path = dir.join(CONFIG_FILE);
        std::fs::write(&config_path, self.config.to_json_pretty() + "\n")
            .map_err(Error::io(&config_path))?;
        let voc_path = dir.join(VOC_FILE);
        std::fs::write(&voc_path, self.voc.to_json() + "\n").map_err(Error::io(&voc_path))?;
        Ok(())
    }
}
