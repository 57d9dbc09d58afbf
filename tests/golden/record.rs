//! One line of tests/golden/replies.json, as `burnchat reply --json` prints it; shared by the
//! native (tests/golden.rs) and browser (tests/web.rs) checks.

use serde::Deserialize;

#[derive(Deserialize)]
pub struct Golden {
    pub input: String,
    pub reply: String,
    pub tokens: Vec<u32>,
    pub scores: Vec<f32>,
    pub unknown: Vec<String>,
}
