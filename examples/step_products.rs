//! The six matrix-vector products of one decoder step at the tutorial's size (four GRU
//! matrices [500, 1500], `concat` [1000, 500], `out` [500, 7836]: about 30 MB of f32), timed
//! on one thread with the weights in three forms: Burn's `[in, out]` layout (what `Linear`
//! holds), PyTorch's `[out, in]` read through a transposed view, and f16; then the same with
//! burnchat's own kernel (src/kernel.rs), f32, f16 and int8 weights, for 1 to 10 input rows (beam
//! search multiplies all its hypotheses at once). A benchmark behind
//! BENCHMARKS.md, run by hand:
//!
//!     cargo run --release --example step_products

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::{DType, Distribution, TensorData};
use burnchat::kernel::{self, Int8Matrix, Weights};

/// Rows of the kernel's input: greedy search's one, and beam search's hypotheses.
const ROWS: [usize; 4] = [1, 2, 5, 10];

const SHAPES: [(usize, usize); 6] = [
    (500, 1500),
    (500, 1500),
    (500, 1500),
    (500, 1500),
    (1000, 500),
    (500, 7836),
];

fn main() {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("the first thread pool");
    let device = burnchat::backend::device();
    let random = |shape: [usize; 2], dtype: DType| -> Tensor<2> {
        Tensor::<2>::random(shape, Distribution::Default, &device).cast(dtype)
    };
    for (name, pytorch_layout, dtype) in [
        ("Burn [in, out], f32", false, DType::F32),
        ("PyTorch [out, in] transposed, f32", true, DType::F32),
        ("Burn [in, out], f16", false, DType::F16),
    ] {
        let weights: Vec<Tensor<2>> = SHAPES
            .iter()
            .map(|&(k, n)| random(if pytorch_layout { [n, k] } else { [k, n] }, dtype))
            .collect();
        let inputs: Vec<Tensor<2>> = SHAPES.iter().map(|&(k, _)| random([1, k], dtype)).collect();
        let step = || {
            for (w, x) in weights.iter().zip(&inputs) {
                let w = if pytorch_layout {
                    w.clone().transpose()
                } else {
                    w.clone()
                };
                x.clone().matmul(w).into_data(); // [1, n]
            }
        };
        println!("{name}: {:.0} µs per step", microseconds_per_step(step));
    }
    for (dtype, rows) in [DType::F32, DType::F16, DType::I8]
        .into_iter()
        .flat_map(|d| ROWS.map(|r| (d, r)))
    {
        let float = if dtype == DType::I8 {
            DType::F32
        } else {
            dtype
        };
        let weights: Vec<TensorData> = SHAPES
            .iter()
            .map(|&(k, n)| random([k, n], float).into_data())
            .collect();
        // An int8 bundle's matrices: PyTorch's [out, in] rows of int8 values, a scale each.
        let int8: Vec<Int8Matrix> = weights
            .iter()
            .filter(|_| dtype == DType::I8)
            .zip(SHAPES)
            .map(|(w, (_, n))| {
                let q: Vec<i8> = w
                    .as_slice::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| (v * 127.0) as i8)
                    .collect();
                Int8Matrix::from_rows(&q, &vec![1.0 / 127.0; n])
            })
            .collect();
        let inputs: Vec<Vec<f32>> = SHAPES
            .iter()
            .map(|&(k, _)| {
                random([rows, k], DType::F32)
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap()
            })
            .collect();
        let mut outputs: Vec<Vec<f32>> = SHAPES.iter().map(|&(_, n)| vec![0.0; rows * n]).collect();
        let matrices: Vec<Weights> = match dtype {
            DType::I8 => int8.iter().map(Weights::I8).collect(),
            DType::F32 => weights
                .iter()
                .map(|w| Weights::F32(w.as_slice().unwrap()))
                .collect(),
            _ => weights
                .iter()
                .map(|w| Weights::F16(w.as_slice().unwrap()))
                .collect(),
        };
        let step = || {
            for ((&w, x), y) in matrices.iter().zip(&inputs).zip(&mut outputs) {
                kernel::linear(x, w, None, y.len() / rows, y);
            }
        };
        let us = microseconds_per_step(step);
        println!("burnchat::kernel [in, out], {dtype:?}, {rows} row(s): {us:.0} µs per step");
    }
}

/// Mean microseconds of `step` over 200 calls, after 20 to warm up.
fn microseconds_per_step(mut step: impl FnMut()) -> f64 {
    (0..20).for_each(|_| step());
    let steps = 200;
    let started = Instant::now();
    (0..steps).for_each(|_| step());
    started.elapsed().as_secs_f64() * 1e6 / steps as f64
}
