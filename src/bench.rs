//! The reply-latency benchmark behind `burnchat bench` and the browser's `bench()`: one
//! fixed list of messages (`bench/prompts.txt`, which the PyTorch script reads too), a
//! warm-up pass, then every reply timed with a clock the caller supplies (`Instant`
//! natively, `performance.now()` in a browser).

use serde::Serialize;

use crate::chatbot::Chatbot;
use crate::error::Result;
use crate::search::SearchOptions;

/// The benchmark's messages, one per line; every word is in the bundled vocabulary.
pub const PROMPTS: &str = include_str!("../bench/prompts.txt");

/// The messages of [`PROMPTS`].
pub fn prompts() -> impl Iterator<Item = &'static str> + Clone {
    PROMPTS.lines().filter(|line| !line.trim().is_empty())
}

/// Milliseconds per reply over the timed rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latency {
    /// Replies timed (warm-up not counted).
    pub replies: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub mean_ms: f64,
    /// Tokens per reply (EOS included).
    pub mean_tokens: f64,
    /// All timed milliseconds over all tokens: the cost of one decoder step plus its share
    /// of the encoder.
    pub ms_per_token: f64,
}

/// One warm-up pass over the prompts, then `rounds` timed passes; `now_ms` is any
/// monotonic clock in milliseconds.
pub fn measure(
    bot: &Chatbot,
    options: &SearchOptions,
    rounds: usize,
    mut now_ms: impl FnMut() -> f64,
) -> Result<Latency> {
    for prompt in prompts() {
        bot.reply_with(prompt, options)?;
    }
    let mut times = Vec::new();
    let mut tokens = 0;
    for _ in 0..rounds {
        for prompt in prompts() {
            let started = now_ms();
            let reply = bot.reply_with(prompt, options)?;
            times.push(now_ms() - started);
            tokens += reply.tokens.len();
        }
    }
    let total: f64 = times.iter().sum();
    let replies = times.len();
    times.sort_by(f64::total_cmp);
    Ok(Latency {
        replies,
        median_ms: percentile(&times, 50.0),
        p90_ms: percentile(&times, 90.0),
        mean_ms: total / replies.max(1) as f64,
        mean_tokens: tokens as f64 / replies.max(1) as f64,
        ms_per_token: total / tokens.max(1) as f64,
    })
}

/// The `q`th percentile of sorted values, interpolating linearly between ranks (numpy's
/// default, which the PyTorch script uses); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => {
            let rank = q / 100.0 * (n - 1) as f64;
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
        }
    }
}

/// Memory while replying without a break, to show it stays flat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Soak {
    pub replies: usize,
    /// Bytes after the first [`Soak::BASELINE`] replies.
    pub baseline_bytes: u64,
    /// The most bytes seen at any later sample (every 100 replies).
    pub max_bytes: u64,
    /// Bytes after the last reply.
    pub final_bytes: u64,
}

impl Soak {
    /// Replies before the baseline is taken: allocators and caches settle in those.
    pub const BASELINE: usize = 100;

    /// `max_bytes - baseline_bytes`, never negative.
    pub fn growth_bytes(&self) -> u64 {
        self.max_bytes.saturating_sub(self.baseline_bytes)
    }
}

/// Replies `replies` times (cycling through the prompts), sampling `memory_bytes` (resident
/// memory natively, the wasm memory in a browser) after the first [`Soak::BASELINE`]
/// replies and every 100 after.
pub fn soak(
    bot: &Chatbot,
    options: &SearchOptions,
    replies: usize,
    mut memory_bytes: impl FnMut() -> u64,
) -> Result<Soak> {
    let mut soak = Soak {
        replies,
        baseline_bytes: 0,
        max_bytes: 0,
        final_bytes: 0,
    };
    for (i, prompt) in prompts().cycle().take(replies).enumerate() {
        bot.reply_with(prompt, options)?;
        let done = i + 1;
        if done == Soak::BASELINE {
            soak.baseline_bytes = memory_bytes();
        } else if done > Soak::BASELINE && done % 100 == 0 {
            soak.max_bytes = soak.max_bytes.max(memory_bytes());
        }
    }
    soak.final_bytes = memory_bytes();
    soak.max_bytes = soak.max_bytes.max(soak.final_bytes);
    Ok(soak)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    /// Expected values from `numpy.percentile` (numpy 2.4), which bench/reply_speed.py uses.
    #[test]
    fn percentile_equals_numpys() {
        assert_eq!(percentile(&[15.0, 20.0, 35.0, 40.0, 50.0], 40.0), 29.0);
        assert!((percentile(&[1.0, 2.0, 3.0, 4.0], 90.0) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&[7.5], 50.0), 7.5);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
