//! The `burnchat` binary end to end: `import` a tutorial checkpoint written by PyTorch
//! (tests/fixtures/make_fixtures.py), then `reply --json` gives PyTorch's greedy tokens;
//! `convert` to f16 gives PyTorch's tokens with f16-rounded weights; `bench` reports.
#![cfg(feature = "native")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn burnchat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_burnchat"))
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn expected(name: &str) -> Value {
    let path = fixtures().join(format!("{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `burnchat import tests/fixtures/<name>.tar --out <dir> <extra>`.
fn import(name: &str, extra: &[&str], dir: &Path) {
    let status = burnchat()
        .arg("import")
        .arg(fixtures().join(format!("{name}.tar")))
        .args(extra)
        .arg("--out")
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

/// `burnchat reply --json --weights <dir> <texts>`: the output and its JSON lines.
fn reply_json(dir: &Path, texts: &[&str]) -> (Output, Vec<Value>) {
    let output = burnchat()
        .args(["reply", "--json", "--weights"])
        .arg(dir)
        .args(texts)
        .output()
        .unwrap();
    let lines = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (output, lines)
}

/// Replies of a bundle against one list of the fixture's expected replies.
fn assert_tokens(dir: &Path, replies: &[Value]) {
    let inputs: Vec<&str> = replies
        .iter()
        .map(|r| r["input"].as_str().unwrap())
        .collect();
    let (output, lines) = reply_json(dir, &inputs);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lines.len(), replies.len());
    for (got, want) in lines.iter().zip(replies) {
        assert_eq!(got["input"], want["input"]);
        assert_eq!(got["tokens"], want["tokens"], "{}", want["input"]);
        assert_eq!(got["unknown"], want["unknown"]);
        // One word per token that is neither PAD (dropped, as the tutorial does) nor EOS.
        let words = got["reply"].as_str().unwrap().split_whitespace().count();
        let tokens = want["tokens"].as_array().unwrap();
        let said = tokens.iter().filter(|t| *t != 0 && *t != 2).count();
        assert!(tokens.len() <= 10 && words == said, "{got}");
    }
}

#[test]
fn import_then_reply_json_gives_pytorchs_tokens() {
    let dir = tempfile::tempdir().unwrap();
    import("dot_2x2_h24", &[], dir.path());
    assert_tokens(
        dir.path(),
        expected("dot_2x2_h24")["replies"].as_array().unwrap(),
    );
}

#[test]
fn convert_to_f16_gives_pytorchs_tokens_with_f16_weights() {
    let f32_dir = tempfile::tempdir().unwrap();
    import("concat_3x2_h12", &[], f32_dir.path());
    let f16_dir = tempfile::tempdir().unwrap();
    let status = burnchat()
        .arg("convert")
        .arg(f32_dir.path())
        .args(["--dtype", "f16", "--out"])
        .arg(f16_dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let config = std::fs::read_to_string(f16_dir.path().join("config.json")).unwrap();
    assert!(config.contains(r#""dtype": "f16""#), "{config}");
    assert_tokens(
        f16_dir.path(),
        expected("concat_3x2_h12")["replies_f16"]
            .as_array()
            .unwrap(),
    );
}

#[test]
fn bench_times_every_prompt_and_samples_memory() {
    let weights = Path::new(env!("CARGO_MANIFEST_DIR")).join("weights");
    // Every benchmark prompt is fully known to the bundled model, so none is shortened.
    let prompts: Vec<&str> = burnchat::bench::prompts().collect();
    let (output, lines) = reply_json(&weights, &prompts);
    assert!(output.status.success());
    assert!(lines.iter().all(|l| l["unknown"] == Value::Array(vec![])));

    let output = burnchat()
        .args([
            "bench",
            "--rounds",
            "2",
            "--soak",
            "250",
            "--threads",
            "1",
            "--json",
            "--weights",
        ])
        .arg(&weights)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let latency = &report["latency"];
    assert_eq!(latency["replies"], 2 * prompts.len());
    let ms = |k: &str| latency[k].as_f64().unwrap();
    assert!(
        0.0 < ms("median_ms") && ms("median_ms") <= ms("p90_ms"),
        "{latency}"
    );
    // The replies' own token counts, from `reply --json`.
    let tokens: usize = lines
        .iter()
        .map(|l| l["tokens"].as_array().unwrap().len())
        .sum();
    assert_eq!(ms("mean_tokens"), tokens as f64 / prompts.len() as f64);
    assert_eq!(report["threads"], 1);
    // weights/ is an int8 bundle, and replies multiply by its int8 matrices on any backend.
    assert_eq!(report["held_as"], "int8");
    assert_eq!(report["soak"]["replies"], 250);
    assert!(report["soak"]["baseline_bytes"].as_u64().unwrap() > 0);
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn bad_messages_are_reported_per_line_and_in_the_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    import("general_1x1_h20", &["--dtype", "f16"], dir.path());
    let (output, lines) = reply_json(dir.path(), &["hello", "", "zorblax"]);
    assert!(!output.status.success());
    assert!(lines[0]["reply"].is_string());
    assert!(lines[1]["error"].as_str().unwrap().contains("no words"));
    assert!(lines[2]["error"].as_str().unwrap().contains("zorblax"));

    let missing = burnchat()
        .args(["reply", "--weights", "/nonexistent/bundle", "hello"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/bundle"));
}

/// The search flags: `reply --json` reports the new fields, and an unusable flag is refused
/// once, before any message, with the reason.
#[test]
fn search_flags_reach_the_reply_and_bad_ones_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    import("dot_2x2_h24", &[], dir.path());
    let output = burnchat()
        .args([
            "reply",
            "--json",
            "--search",
            "beam",
            "--beam-width",
            "3",
            "--weights",
        ])
        .arg(dir.path())
        .arg("how are you?")
        .output()
        .unwrap();
    assert!(output.status.success());
    let line: Value = serde_json::from_slice(&output.stdout).unwrap();
    let tokens = line["tokens"].as_array().unwrap();
    assert_eq!(line["attention"].as_array().unwrap().len(), tokens.len());
    assert!(line["score"].as_f64().unwrap() < 0.0);
    assert!(line["text"].is_string());
    assert_eq!(line["input_tokens"].as_array().unwrap().last().unwrap(), 2);

    let refused = burnchat()
        .args([
            "reply",
            "--search",
            "beam",
            "--beam-width",
            "0",
            "--weights",
        ])
        .arg(dir.path())
        .args(["hello", "how are you?"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stderr
            .matches("beam width must be between 1 and 64")
            .count(),
        1,
        "{stderr}"
    );
}

/// `import` writes its bundle whole or not at all: a damaged checkpoint leaves no directory
/// and no staging files, and an existing bundle stays as it was; a good import over an
/// existing bundle replaces its three files and keeps the others.
#[test]
fn import_never_leaves_a_partial_bundle() {
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("bundle");
    let good = std::fs::read(fixtures().join("dot_2x2_h24.tar")).unwrap();
    let damaged = [
        ("truncated.tar", good[..good.len() / 2].to_vec()),
        ("not-a-checkpoint.tar", b"this is not a checkpoint".to_vec()),
    ];
    let entries = || {
        let mut names: Vec<String> = std::fs::read_dir(parent.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let import_file = |path: &Path| {
        burnchat()
            .arg("import")
            .arg(path)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    for (name, bytes) in &damaged {
        let path = parent.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let output = import_file(&path);
        assert!(!output.status.success(), "{name}");
        assert!(!output.stderr.is_empty(), "{name}");
    }
    assert_eq!(entries(), ["not-a-checkpoint.tar", "truncated.tar"]);

    import("concat_3x2_h12", &[], &out);
    std::fs::write(out.join("notes.txt"), "kept").unwrap();
    for (name, _) in &damaged {
        assert!(!import_file(&parent.path().join(name)).status.success());
    }
    assert_tokens(
        &out,
        expected("concat_3x2_h12")["replies"].as_array().unwrap(),
    );

    import("dot_2x2_h24", &[], &out);
    assert_tokens(&out, expected("dot_2x2_h24")["replies"].as_array().unwrap());
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "kept"
    );
    assert_eq!(
        entries(),
        ["bundle", "not-a-checkpoint.tar", "truncated.tar"]
    );
}

/// Hostile checkpoints (tests/fixtures/make_hostile_checkpoints.py, by hand with torch) are
/// refused with a reason that names what is wrong, and leave no bundle; a storage that only
/// declares an enormous size is never allocated, and the checkpoint imports and answers as
/// the fixture it was made from.
#[test]
fn hostile_checkpoints_are_refused_with_a_reason() {
    let parent = tempfile::tempdir().unwrap();
    let out = parent.path().join("bundle");
    for (name, says) in [
        ("wrong_pickle", "Expected a dictionary"),
        ("wrong_shape", "decoder.out.weight"),
        ("huge_shape", "needs 1099511627776 elements"),
    ] {
        let output = burnchat()
            .arg("import")
            .arg(fixtures().join(format!("hostile/{name}.tar")))
            .arg("--out")
            .arg(&out)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}");
        assert!(stderr.contains(says), "{name}: {stderr}");
        assert!(!out.exists(), "{name}");
    }
    import("hostile/huge_storage", &[], &out);
    assert_tokens(&out, expected("dot_1x1_h16")["replies"].as_array().unwrap());
}
