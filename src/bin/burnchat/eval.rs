//! `burnchat eval`: bundles and corpora in, a table (or JSON) of their measures out; the
//! measuring is the library's (`burnchat::train::eval`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use burnchat::train::eval::{
    EvalSettings, Metrics, evaluate, evaluator, offered_searches, readable_by_all,
};
use burnchat::train::pairs::split_pairs;
use burnchat::train::report::{PROMPTS, sample_replies};
use burnchat::{Bundle, SearchOptions};
use clap::Args;
use serde::Serialize;

use crate::search::SearchArgs;
use crate::train::DataArgs;

#[derive(Args)]
pub struct EvalArgs {
    /// A bundle directory; give several to compare them on the pairs all of them can read.
    #[arg(long, required = true)]
    weights: Vec<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Pairs the loss is measured over (the first held-out ones); 0: all.
    #[arg(long, default_value_t = 0)]
    loss_pairs: usize,
    /// Pairs ranked for Recall@1.
    #[arg(long, default_value_t = 500)]
    recall_pairs: usize,
    /// Replies each true one is ranked among.
    #[arg(long, default_value_t = 20)]
    candidates: usize,
    /// Messages answered under each search for distinct-n.
    #[arg(long, default_value_t = 500)]
    reply_pairs: usize,
    /// Seeds which replies are Recall's distractors.
    #[arg(long, default_value_t = 0)]
    recall_seed: u64,
    /// Search flags, if any, add one more search to the three a bundle offers, e.g. to
    /// compare anti-LM weights.
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(Serialize)]
struct Report {
    /// Held-out pairs of the corpora, and how many every bundle can read.
    held_out: usize,
    readable: usize,
    models: Vec<Model>,
}

#[derive(Serialize)]
struct Model {
    weights: PathBuf,
    metrics: Metrics,
    /// The replies to `PROMPTS` under the given search, else the page's, as a person writes
    /// them.
    samples: Vec<(String, String)>,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    anyhow::ensure!(args.candidates >= 2, "--candidates must be at least 2");
    let bots = args
        .weights
        .iter()
        .map(|dir| {
            let bundle = Bundle::load(dir, &burnchat::backend::device())
                .with_context(|| format!("loading the bundle {}", dir.display()))?;
            args.search.with_backward(evaluator(bundle))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut held_out = Vec::new();
    for (_, corpus) in args.data.read()? {
        let (_, valid) = split_pairs(
            &corpus.conversations,
            args.data.max_length,
            args.data.valid_fraction,
            args.data.split_seed,
        );
        held_out.extend(valid);
    }
    let pairs = readable_by_all(&held_out, &bots.iter().collect::<Vec<_>>());
    anyhow::ensure!(
        !pairs.is_empty(),
        "none of the {} held-out pairs has only words every bundle knows",
        held_out.len()
    );
    let settings = EvalSettings {
        loss_pairs: args.loss_pairs,
        recall_pairs: args.recall_pairs,
        candidates: args.candidates,
        reply_pairs: args.reply_pairs,
        seed: args.recall_seed,
    };
    // The samples are shown under the given search, else under the page's (the second).
    let mut searches = offered_searches(args.search.has_backward());
    let mut shown = 1;
    let extra = args.search.options();
    if extra != SearchOptions::default() {
        bots[0].search(&extra)?;
        searches.push(("the given search".into(), extra));
        shown = searches.len() - 1;
    }
    let shown = &searches[shown];
    let mut models = Vec::new();
    for (dir, bot) in args.weights.iter().zip(&bots) {
        let metrics = evaluate(bot, &pairs, &searches, &settings)
            .with_context(|| format!("evaluating {}", dir.display()))?;
        let replies = sample_replies(bot, &PROMPTS, &shown.1);
        models.push(Model {
            weights: dir.clone(),
            metrics,
            samples: PROMPTS.iter().map(|p| p.to_string()).zip(replies).collect(),
        });
    }
    let report = Report {
        held_out: held_out.len(),
        readable: pairs.len(),
        models,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} held-out pairs, {} of them with only words every bundle knows\n",
            report.held_out, report.readable
        );
        let columns: Vec<(String, &Metrics)> = report
            .models
            .iter()
            .map(|m| (m.weights.display().to_string(), &m.metrics))
            .collect();
        print!("{}", metrics_table(&columns));
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        print!(
            "\nReplies under {}:\n\n{}",
            shown.0,
            table_header("message", &names)
        );
        for (i, prompt) in PROMPTS.iter().enumerate() {
            let replies: Vec<&str> = report
                .models
                .iter()
                .map(|m| m.samples[i].1.as_str())
                .collect();
            println!("| {prompt} | {} |", replies.join(" | "));
        }
    }
    Ok(())
}

/// A Markdown table: one row per measure, one column per model.
pub fn metrics_table(columns: &[(String, &Metrics)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "pairs (tokens)".into(),
            columns
                .iter()
                .map(|(_, m)| format!("{} ({})", m.pairs, m.tokens))
                .collect(),
        ),
        (
            "loss".into(),
            columns
                .iter()
                .map(|(_, m)| format!("{:.3}", m.loss))
                .collect(),
        ),
        (
            "perplexity".into(),
            columns
                .iter()
                .map(|(_, m)| format!("{:.1}", m.perplexity))
                .collect(),
        ),
        (
            "Recall@1/20".into(),
            columns
                .iter()
                .map(|(_, m)| {
                    m.recall_at_1
                        .map_or("-".into(), |r| format!("{r:.3} of {}", m.recall_pairs))
                })
                .collect(),
        ),
    ];
    let searches = columns.first().map_or(0, |(_, m)| m.searches.len());
    for s in 0..searches {
        let name = &columns[0].1.searches[s].search;
        let cell = |f: &dyn Fn(&burnchat::train::eval::SearchMetrics) -> String| {
            columns.iter().map(|(_, m)| f(&m.searches[s])).collect()
        };
        rows.push((
            format!("{name}: distinct-1"),
            cell(&|x| format!("{:.3}", x.distinct_1)),
        ));
        rows.push((
            format!("{name}: distinct-2"),
            cell(&|x| format!("{:.3}", x.distinct_2)),
        ));
        rows.push((
            format!("{name}: distinct replies"),
            cell(&|x| format!("{} of {}", x.distinct_replies, x.replies)),
        ));
        rows.push((
            format!("{name}: most common reply"),
            cell(&|x| format!("{:.1}% \"{}\"", 100.0 * x.top_reply_share, x.top_reply)),
        ));
        rows.push((
            format!("{name}: words per reply"),
            cell(&|x| format!("{:.1}", x.words_per_reply)),
        ));
    }
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    let mut out = table_header("measure", &names);
    for (name, cells) in rows {
        out.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    out
}

/// A Markdown table's first two lines.
fn table_header(first: &str, columns: &[&str]) -> String {
    format!(
        "| {first} | {} |\n|---|{}\n",
        columns.join(" | "),
        "---|".repeat(columns.len())
    )
}
