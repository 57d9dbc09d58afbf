//! int8 bundles: every weight matrix stored as int8, symmetric, with one f32 scale per output
//! row; the embedding and the biases as f16.
//!
//! In `model.safetensors` of a bundle whose `config.json` says `"dtype": "int8"`, each 2-D
//! tensor but `embedding.weight` (PyTorch's `[out, in]` layout, so a row is one output unit)
//! is `I8` under its usual name, and `NAME_scale` is `F32` `[out]`: the weight is
//! `q × scale[row]`, with `scale = max |w| / 127` over the row and `q = round(w / scale)`.
//! Everything else is `F16`. Loading turns such a file into the int8 matrices inference
//! multiplies by ([`crate::kernel::Int8Matrix`]) and an f16 file the model is built from
//! ([`dequantize`]); writing goes the other way from an f32 file ([`quantize`]).
//!
//! The model's float copy of a matrix is `q × scale[row]` rounded to the nearest f16: replies
//! do not read it (the int8 kernel does not), but converting the bundle to another dtype and
//! backward passes do, and f16 halves its memory.

use std::collections::HashMap;

use half::f16;
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::kernel::Int8Matrix;

/// The name of `weight`'s scale tensor.
pub fn scale_name(weight: &str) -> String {
    format!("{weight}_scale")
}

/// Whether an int8 bundle stores the tensor `name` of `shape` as int8: every matrix but the
/// embedding.
pub fn is_quantized(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2 && name != "embedding.weight"
}

/// `w` (`rows` rows, row-major) as int8 and one scale per row: `w ≈ q × scale[row]`, each
/// value within `scale / 2` of its original. A row of zeros has scale 0.
pub fn quantize_rows(w: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = w.len().checked_div(rows).unwrap_or(0);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks_exact(cols.max(1)).take(rows) {
        let max = row.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
        let scale = max / 127.0;
        scales.push(scale);
        let inverse = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        q.extend(
            row.iter()
                .map(|&x| (x * inverse).round().clamp(-127.0, 127.0) as i8),
        );
    }
    (q, scales)
}

/// `q × scale[row]`, row-major.
pub fn dequantize_rows(q: &[i8], scales: &[f32]) -> Vec<f32> {
    let cols = q.len().checked_div(scales.len()).unwrap_or(0);
    q.chunks_exact(cols.max(1))
        .zip(scales)
        .flat_map(|(row, &s)| row.iter().map(move |&v| v as f32 * s))
        .collect()
}

fn bad(name: &str, message: impl Into<String>) -> Error {
    Error::BadScale {
        name: name.to_string(),
        message: message.into(),
    }
}

fn malformed(e: safetensors::SafeTensorError) -> Error {
    Error::bundle(crate::bundle::MODEL_FILE, e)
}

/// An int8 bundle's `model.safetensors` as the f16 file the model is built from (the
/// dequantised values rounded to f16, the rest stored as f16: half the memory of an f32 one
/// while loading, which in wasm is never given back), and its int8 matrices by tensor name,
/// which the model's `Linear`s multiply by. Refused
/// with [`Error::BadScale`] when a matrix has no scale, or one of another shape, type or
/// value (negative, infinite, NaN); with [`Error::BadDtype`] when a tensor is not stored as
/// the int8 format says. Shapes and names are checked against `config.json` afterwards, as for
/// any bundle.
pub fn dequantize(bytes: &[u8]) -> Result<(Vec<u8>, HashMap<String, Int8Matrix>)> {
    let file = SafeTensors::deserialize(bytes).map_err(malformed)?;
    // Every scale first, whatever order the file lists the tensors in.
    let mut scales: HashMap<String, Vec<f32>> = HashMap::new();
    for (name, view) in file.tensors() {
        if let Some(weight) = name.strip_suffix("_scale") {
            if file.tensor(weight).is_err() {
                return Err(bad(&name, "a scale without its weight matrix"));
            }
        } else if is_quantized(&name, view.shape()) {
            let rows = view.shape()[0];
            scales.insert(name.clone(), scales_of(&file, &name, rows)?);
        }
    }
    let mut out: Vec<Stored> = Vec::new();
    let mut matrices = HashMap::new();
    for (name, view) in file.tensors() {
        if name.ends_with("_scale") {
            continue;
        }
        let shape = view.shape().to_vec();
        // A matrix is rounded to f16 once, here; the rest is f16 already and copied as is.
        let halves = if let Some(scales) = scales.get(&name) {
            expect_dtype(&name, &view, Dtype::I8, "I8")?;
            let q: Vec<i8> = view.data().iter().map(|&b| b as i8).collect();
            let halves = f16_bytes(&dequantize_rows(&q, scales));
            matrices.insert(name.clone(), Int8Matrix::from_rows(&q, scales));
            halves
        } else {
            expect_dtype(&name, &view, Dtype::F16, "F16")?;
            view.data().to_vec()
        };
        out.push((name, halves, shape, Dtype::F16));
    }
    Ok((serialize(&out, metadata_of(bytes)?)?, matrices))
}

/// The scales of the matrix `name`, which has `rows` rows, checked.
fn scales_of(file: &SafeTensors, name: &str, rows: usize) -> Result<Vec<f32>> {
    let scale_name = scale_name(name);
    let scale = file
        .tensor(&scale_name)
        .map_err(|_| bad(name, format!("no {scale_name}")))?;
    if scale.dtype() != Dtype::F32 {
        return Err(bad(
            &scale_name,
            format!("stored as {:?}, expected F32", scale.dtype()),
        ));
    }
    if scale.shape() != [rows] {
        return Err(bad(
            &scale_name,
            format!("shape {:?}, expected [{rows}] (one per row)", scale.shape()),
        ));
    }
    let scales = f32s(scale.data());
    match scales.iter().find(|s| !(s.is_finite() && **s >= 0.0)) {
        Some(s) => Err(bad(
            &scale_name,
            format!("holds {s}; a scale is finite and 0 or more"),
        )),
        None => Ok(scales),
    }
}

fn expect_dtype(name: &str, view: &TensorView, dtype: Dtype, label: &str) -> Result<()> {
    if view.dtype() == dtype {
        Ok(())
    } else {
        Err(Error::BadDtype {
            name: name.to_string(),
            expected: label.to_string(),
            found: format!("{:?}", view.dtype()),
        })
    }
}

/// An f32 or f16 `model.safetensors` (as a bundle of that dtype writes it) in the int8
/// format.
pub fn quantize(bytes: &[u8]) -> Result<Vec<u8>> {
    let file = SafeTensors::deserialize(bytes).map_err(malformed)?;
    let mut tensors: Vec<Stored> = Vec::new();
    for (name, view) in file.tensors() {
        let shape = view.shape().to_vec();
        let values = match view.dtype() {
            Dtype::F32 => f32s(view.data()),
            _ => {
                expect_dtype(&name, &view, Dtype::F16, "F32 or F16")?;
                f16s(view.data())
            }
        };
        if is_quantized(&name, &shape) {
            let (q, scales) = quantize_rows(&values, shape[0]);
            tensors.push((
                name.clone(),
                q.iter().map(|&v| v as u8).collect(),
                shape.clone(),
                Dtype::I8,
            ));
            tensors.push((
                scale_name(&name),
                f32_bytes(&scales),
                vec![shape[0]],
                Dtype::F32,
            ));
        } else {
            tensors.push((name, f16_bytes(&values), shape, Dtype::F16));
        }
    }
    serialize(&tensors, metadata_of(bytes)?)
}

/// A tensor as a file stores it: name, little-endian bytes, shape, element type.
type Stored = (String, Vec<u8>, Vec<usize>, Dtype);

/// `tensors` as a safetensors file, with `metadata` in its header.
fn serialize(tensors: &[Stored], metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, data, shape, dtype)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(malformed)
        })
        .collect::<Result<_>>()?;
    safetensors::serialize(views, metadata).map_err(malformed)
}

/// The header's metadata of a safetensors file (burn-store writes its version there).
fn metadata_of(bytes: &[u8]) -> Result<Option<HashMap<String, String>>> {
    Ok(SafeTensors::read_metadata(bytes)
        .map_err(malformed)?
        .1
        .metadata()
        .clone())
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn f16s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect()
}

fn f16_bytes(values: &[f32]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|&v| f16::from_f32(v).to_le_bytes())
        .collect()
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Bytes of an int8 bundle's tensors for `config`, or `None` on overflow.
pub fn tensor_bytes(config: &ModelConfig) -> Option<usize> {
    crate::bundle::tensor_shapes(config)
        .iter()
        .try_fold(0usize, |total, (name, shape)| {
            let n = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))?;
            let bytes = if is_quantized(name, shape) {
                n.checked_add(shape[0].checked_mul(4)?)?
            } else {
                n.checked_mul(2)?
            };
            total.checked_add(bytes)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_quantize_within_half_a_step_and_zero_rows_stay_zero() {
        let w: Vec<f32> = (0..60)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.013)
            .collect();
        let mut w = w;
        w[40..60].fill(0.0);
        let (q, scales) = quantize_rows(&w, 3);
        assert_eq!(scales.len(), 3);
        assert_eq!(scales[2], 0.0);
        for (r, row) in w.chunks(20).enumerate() {
            let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            assert_eq!(scales[r], max / 127.0);
        }
        let back = dequantize_rows(&q, &scales);
        for (i, (a, b)) in w.iter().zip(&back).enumerate() {
            assert!(
                (a - b).abs() <= scales[i / 20] / 2.0 * 1.0001,
                "{i}: {a} vs {b}"
            );
        }
        assert!(
            q.iter().any(|&v| v == 127 || v == -127),
            "a row's largest value maps to ±127"
        );
    }
}
