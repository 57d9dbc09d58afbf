//! The matrix products of one training iteration at the tutorial's size (batch 64, hidden
//! 500, 7,830 words, about 10 steps), timed through Burn's flex backend with the threads of
//! `RAYON_NUM_THREADS`. A benchmark behind BENCHMARKS.md ("Training"), run by hand:
//!
//!     RAYON_NUM_THREADS=2 cargo run --release --example train_products
//!
//! and PyTorch's for the same shapes:
//!
//!     python -c "import torch,time; torch.set_num_threads(2)
//!     for m,k,n in [(640,500,7830),(640,7830,500),(500,640,7830),(64,500,1500),(64,1500,500),(500,640,1500),(640,1000,1500)]:
//!         a,b=torch.rand(m,k),torch.rand(k,n); a@b; r=max(3,int(2e9/(2*m*k*n))); t=time.perf_counter()
//!         for _ in range(r): a@b
//!         s=(time.perf_counter()-t)/r; print(m,k,n,f'{s*1e3:.2f} ms {2*m*k*n/s/1e9:.1f} GFLOP/s')"

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;

/// (m, k, n): `out` forward, its input gradient, its weight gradient; one GRU step forward
/// and its state gradient; a GRU weight gradient over all steps; a layer-1 input projection.
const SHAPES: [(usize, usize, usize); 7] = [
    (640, 500, 7830),
    (640, 7830, 500),
    (500, 640, 7830),
    (64, 500, 1500),
    (64, 1500, 500),
    (500, 640, 1500),
    (640, 1000, 1500),
];

fn main() {
    let device = Device::flex();
    for (m, k, n) in SHAPES {
        let a = Tensor::<2>::random([m, k], Distribution::Default, &device);
        let b = Tensor::<2>::random([k, n], Distribution::Default, &device);
        let _ = a.clone().matmul(b.clone()).into_data();
        let reps = (2e9 / (2.0 * (m * k * n) as f64)).max(3.0) as usize;
        let started = Instant::now();
        for _ in 0..reps {
            let _ = a.clone().matmul(b.clone()).into_data();
        }
        let s = started.elapsed().as_secs_f64() / reps as f64;
        let gflops = 2.0 * (m * k * n) as f64 / s / 1e9;
        println!("{m} x {k} x {n}: {:.2} ms, {gflops:.1} GFLOP/s", s * 1e3);
    }
}
