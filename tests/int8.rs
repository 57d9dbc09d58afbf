//! int8 bundles (src/quant.rs): a trained f16 model written as int8 keeps at least 95% of its
//! greedy replies, on the 500 quality prompts and against PyTorch's replies with the f16
//! model; a file whose scales are missing or malformed is refused by name. The f16 model is
//! weights/e5-f16/, the model bundled before the int8 one (TRAINING.md, e5), with
//! PyTorch's greedy replies to tests/golden/inputs.txt (tests/golden/make_golden.py's,
//! then). The bundled int8 model itself answers as PyTorch does in tests/golden.rs.
#![cfg(feature = "native")]

use std::path::{Path, PathBuf};

use burnchat::{Bundle, Chatbot, Error, WeightDtype};
use safetensors::SafeTensors;
use safetensors::tensor::{Dtype, TensorView};

#[path = "golden/check.rs"]
mod check;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn f16_model() -> PathBuf {
    root().join("weights/e5-f16")
}

/// The f16 model written as an int8 bundle into a new directory.
fn int8_bundle() -> (PathBuf, tempfile::TempDir) {
    let mut bundle = Bundle::load(&f16_model(), &burnchat::backend::device()).unwrap();
    bundle.config.dtype = WeightDtype::Int8;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("int8");
    bundle.save(&path).unwrap();
    (path, dir)
}

#[test]
fn the_int8_bundle_keeps_95_percent_of_the_greedy_replies() {
    let (dir, _tmp) = int8_bundle();
    let f16 = std::fs::metadata(f16_model().join("model.safetensors"))
        .unwrap()
        .len();
    let int8 = std::fs::metadata(dir.join("model.safetensors"))
        .unwrap()
        .len();
    assert!(int8 * 10 < f16 * 7, "int8 {int8} bytes against f16 {f16}");
    let reference = Chatbot::load(&f16_model()).unwrap();
    let quantized = Chatbot::load(&dir).unwrap();

    // The 500 quality prompts: the same greedy tokens as the f16 bundle.
    let prompts = std::fs::read_to_string(root().join("bench/quality_prompts.txt")).unwrap();
    let prompts: Vec<&str> = prompts.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(prompts.len(), 500);
    let same = prompts
        .iter()
        .filter(|p| reference.reply(p).unwrap().tokens == quantized.reply(p).unwrap().tokens)
        .count();
    assert!(
        same * 100 >= prompts.len() * 95,
        "{same} of 500 replies identical"
    );

    // PyTorch's greedy replies with the f16 model.
    let golden = check::golden(&std::fs::read_to_string(f16_model().join("replies.json")).unwrap());
    let same = golden
        .iter()
        .filter(|want| quantized.reply(&want.input).unwrap().tokens == want.tokens)
        .count();
    assert!(
        same * 100 >= golden.len() * 95,
        "{same} of {} golden replies",
        golden.len()
    );
}

/// `model.safetensors` of `dir` with `edit` applied to its tensors (name, dtype, shape,
/// bytes), written back.
fn rewrite(dir: &Path, edit: impl Fn(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
}

const SCALE: &str = "decoder.out.weight_scale";

#[test]
fn malformed_scales_are_refused_by_name() {
    type Edit = Box<dyn Fn(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)>;
    let find = |t: &mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>, name: &str| {
        t.iter().position(|(n, ..)| n == name).unwrap()
    };
    let set_first = move |value: f32| -> Edit {
        Box::new(move |t| {
            let i = find(t, SCALE);
            t[i].3[..4].copy_from_slice(&value.to_le_bytes());
        })
    };
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "missing (renamed, so that the file keeps its size)",
            Box::new(move |t| {
                let i = find(t, SCALE);
                t[i].0 = "decoder.out.weight_scales".into();
            }),
            "no decoder.out.weight_scale",
        ),
        (
            "one short",
            Box::new(move |t| {
                let i = find(t, SCALE);
                t[i].2 = vec![t[i].2[0] - 1];
                let len = t[i].3.len();
                t[i].3.truncate(len - 4);
            }),
            "one per row",
        ),
        ("NaN", set_first(f32::NAN), "holds NaN"),
        ("negative", set_first(-0.5), "holds -0.5"),
        ("infinite", set_first(f32::INFINITY), "holds inf"),
        (
            "as f16",
            Box::new(move |t| {
                let i = find(t, SCALE);
                t[i].1 = Dtype::F16;
                t[i].2 = vec![t[i].2[0] * 2];
            }),
            "expected F32",
        ),
        (
            "without its weight",
            Box::new(move |t| {
                let i = find(t, SCALE);
                let scale = t[i].clone();
                t.push((
                    "decoder.nothing.weight_scale".into(),
                    scale.1,
                    scale.2,
                    scale.3,
                ));
            }),
            "a scale without its weight matrix",
        ),
    ];
    for (what, edit, message) in cases {
        let (dir, _tmp) = int8_bundle();
        rewrite(&dir, edit);
        let err = Chatbot::load(&dir).unwrap_err();
        assert!(matches!(err, Error::BadScale { .. }), "{what}: {err}");
        assert!(err.to_string().contains(message), "{what}: {err}");
    }

    // A matrix stored as f16 where the int8 format wants I8.
    let (dir, _tmp) = int8_bundle();
    rewrite(&dir, |t| {
        let i = t
            .iter()
            .position(|(n, ..)| n == "decoder.out.weight")
            .unwrap();
        let halves: Vec<u8> = t[i]
            .3
            .iter()
            .flat_map(|&q| half::f16::from_f32(q as i8 as f32).to_le_bytes())
            .collect();
        t[i].1 = Dtype::F16;
        t[i].3 = halves;
    });
    let err = Chatbot::load(&dir).unwrap_err();
    assert!(
        matches!(&err, Error::BadDtype { name, .. } if name == "decoder.out.weight"),
        "{err}"
    );
}
