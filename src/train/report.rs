//! The training report: the loss curves as a PNG, and the model's replies to fixed prompts.

use std::path::Path;

use plotters::prelude::*;

use super::History;
use crate::SearchOptions;
use crate::chatbot::Chatbot;
use crate::error::{Error, Result};

/// The tutorial's five examples, then messages a visitor tries first (greetings, the bot
/// itself, feelings, plans, goodbyes): the replies every report and `burnchat eval` show.
pub const PROMPTS: [&str; 20] = [
    "hello",
    "what's up?",
    "who are you?",
    "where am I?",
    "where are you from?",
    "how are you?",
    "what is your name?",
    "are you a robot?",
    "how old are you?",
    "do you like music?",
    "what do you do for fun?",
    "what is your favorite movie?",
    "i had a bad day",
    "i got a new job!",
    "my dog is sick",
    "tell me a joke",
    "what are you doing this weekend?",
    "thank you so much",
    "see you later",
    "good night",
];

/// Fonts the plot's labels may use, first found wins (Debian's fonts-dejavu-core).
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Draws training loss (a moving average over 50 iterations) and validation loss against
/// iterations into a PNG.
pub fn plot_losses(history: &History, path: &Path) -> Result<()> {
    let font = FONTS
        .iter()
        .find_map(|f| std::fs::read(f).ok())
        .ok_or_else(|| {
            plot_error(
                path,
                "no DejaVuSans.ttf font (apt-get install fonts-dejavu-core)",
            )
        })?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| plot_error(path, "the font could not be read"))?;
    let smoothed: Vec<(usize, f64)> = history
        .train
        .iter()
        .enumerate()
        .map(|(i, &(it, _))| {
            let window = &history.train[i.saturating_sub(49)..=i];
            (
                it,
                window.iter().map(|&(_, l)| l).sum::<f64>() / window.len() as f64,
            )
        })
        .collect();
    let last = smoothed.last().map_or(1, |&(it, _)| it).max(1);
    let top = smoothed
        .iter()
        .chain(&history.valid)
        .map(|&(_, l)| l)
        .fold(1.0_f64, f64::max);
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("burnchat training loss (per-token NLL)", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(0..last, 0.0..top * 1.05)?;
        chart
            .configure_mesh()
            .x_desc("iteration")
            .y_desc("loss")
            .draw()?;
        chart
            .draw_series(LineSeries::new(smoothed.iter().copied(), &BLUE))?
            .label("training (mean of 50)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
        chart
            .draw_series(LineSeries::new(
                history.valid.iter().copied(),
                RED.stroke_width(2),
            ))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| plot_error(path, e))
}

/// Each prompt's reply under `options` (as a person writes it), or the error it gave.
pub fn sample_replies(bot: &Chatbot, prompts: &[&str], options: &SearchOptions) -> Vec<String> {
    prompts
        .iter()
        .map(|p| match bot.reply_with(p, options) {
            Ok(r) => r.text,
            Err(e) => format!("(error: {e})"),
        })
        .collect()
}
