//! The `burnchat` binary end to end: `import` a tutorial checkpoint written by PyTorch
//! (tests/fixtures/make_fixtures.py), then `reply --json` gives PyTorch's greedy tokens.
#![cfg(feature = "native")]

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn burnchat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_burnchat"))
}

#[test]
fn import_then_reply_json_gives_pytorchs_tokens() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("dot_2x2_h24.json")).unwrap())
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let status = burnchat()
        .arg("import")
        .arg(fixtures.join("dot_2x2_h24.tar"))
        .arg("--out")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());

    let replies = expected["replies"].as_array().unwrap();
    let inputs: Vec<&str> = replies
        .iter()
        .map(|r| r["input"].as_str().unwrap())
        .collect();
    let output = burnchat()
        .args(["reply", "--json", "--weights"])
        .arg(dir.path())
        .args(&inputs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), replies.len());
    for (got, want) in lines.iter().zip(replies) {
        assert_eq!(got["input"], want["input"]);
        assert_eq!(got["tokens"], want["tokens"], "{}", want["input"]);
        assert_eq!(got["unknown"], want["unknown"]);
        let words = got["reply"].as_str().unwrap().split(' ').count();
        let eos = want["tokens"].as_array().unwrap().iter().any(|t| t == 2);
        assert!(words <= 10 && (eos || words == 10), "{got}");
    }
}

#[test]
fn bad_messages_are_reported_per_line_and_in_the_exit_status() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = tempfile::tempdir().unwrap();
    assert!(
        burnchat()
            .arg("import")
            .arg(fixtures.join("general_1x1_h20.tar"))
            .args(["--dtype", "f16", "--out"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    let output = burnchat()
        .args(["reply", "--json", "--weights"])
        .arg(dir.path())
        .args(["hello", "", "zorblax"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
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
