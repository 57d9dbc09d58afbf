//! The six matrix-vector products of one decoder step at the tutorial's size (four GRU
//! matrices [500, 1500], `concat` [1000, 500], `out` [500, 7836]: about 30 MB of f32), timed
//! on one thread with the weights in three forms: Burn's `[in, out]` layout (what `Linear`
//! holds), PyTorch's `[out, in]` read through a transposed view, and f16. A benchmark behind
//! BENCHMARKS.md, run by hand:
//!
//!     cargo run --release --example step_products

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::{DType, Distribution};

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
        (0..20).for_each(|_| step());
        let steps = 200;
        let started = Instant::now();
        (0..steps).for_each(|_| step());
        let us = started.elapsed().as_secs_f64() * 1e6 / steps as f64;
        println!("{name}: {us:.0} µs per step");
    }
}
