//! `burnchat bench`: reply latency and memory of a bundle, as the terminal sees them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use burnchat::bench::{self, Latency, Soak};
use clap::Args;
use serde::Serialize;

#[derive(Args)]
pub struct BenchArgs {
    /// Bundle directory.
    #[arg(long, default_value = super::default_weights())]
    weights: PathBuf,
    /// Compute threads (Burn's rayon pool); all cores when not given.
    #[arg(long)]
    threads: Option<usize>,
    /// Timed passes over the prompts, after one warm-up pass.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Then reply this many times in a row and report resident memory (0: skip).
    #[arg(long, default_value_t = 0)]
    soak: usize,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    search: super::search::SearchArgs,
}

#[derive(Serialize)]
struct Report {
    backend: &'static str,
    threads: usize,
    weights: String,
    /// The precision the weight matrices are held in (`f16` or `f32`).
    held_as: burnchat::WeightDtype,
    hidden_size: usize,
    num_words: usize,
    /// The decoding settings timed.
    search: burnchat::Search,
    latency: Latency,
    /// Peak resident memory of the process (Linux `VmHWM`).
    peak_rss_bytes: Option<u64>,
    soak: Option<Soak>,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("setting the thread count")?;
    }
    let bot = args.search.with_backward(super::load(&args.weights)?)?;
    let clock = Instant::now();
    let options = args.search.options();
    let search = bot.search(&options)?;
    let latency = bench::measure(&bot, &options, args.rounds, || {
        clock.elapsed().as_secs_f64() * 1e3
    })?;
    let soak = match args.soak {
        0 => None,
        n => Some(bench::soak(&bot, &options, n, || {
            proc_status("VmRSS:").unwrap_or(0)
        })?),
    };
    let config = &bot.bundle().config;
    let report = Report {
        backend: burnchat::backend::NAME,
        threads: rayon::current_num_threads(),
        weights: args.weights.display().to_string(),
        held_as: bot.weights_held_as(),
        hidden_size: config.hidden_size,
        search,
        num_words: config.num_words,
        latency,
        peak_rss_bytes: proc_status("VmHWM:"),
        soak,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

fn print_table(r: &Report) {
    let l = &r.latency;
    println!(
        "{} backend, {} thread(s); {} (hidden {}, {} words, weights read as {:?})",
        r.backend, r.threads, r.weights, r.hidden_size, r.num_words, r.held_as
    );
    println!(
        "search: {}",
        serde_json::to_string(&r.search).unwrap_or_default()
    );
    println!(
        "{} replies: median {:.2} ms, p90 {:.2} ms, mean {:.2} ms; {:.1} tokens per reply, {:.3} ms per token",
        l.replies, l.median_ms, l.p90_ms, l.mean_ms, l.mean_tokens, l.ms_per_token
    );
    if let Some(peak) = r.peak_rss_bytes {
        println!("peak resident memory: {:.1} MiB", mib(peak));
    }
    if let Some(s) = &r.soak {
        println!(
            "{} replies in a row: resident {:.1} MiB after {}, at most {:.1} MiB after (growth {} KiB), {:.1} MiB at the end",
            s.replies,
            mib(s.baseline_bytes),
            Soak::BASELINE,
            mib(s.max_bytes),
            s.growth_bytes() / 1024,
            mib(s.final_bytes)
        );
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A `kB` line of `/proc/self/status`, in bytes; `None` off Linux.
fn proc_status(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}
