//! One training step against PyTorch's (feature `train`): for a fixture checkpoint and one
//! fixed padded batch, the tutorial's loss, the gradient of every parameter, and every
//! parameter after `clip_grad_norm_` and both Adam steps, from
//! tests/fixtures/make_train_fixtures.py. Dropout is off, as there.
#![cfg(feature = "train")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use burnchat::WeightDtype;
use burnchat::import::import_checkpoint;
use burnchat::model::Seq2Seq;
use burnchat::train::batch::batch_to_train_data;
use burnchat::train::optim::Optimizers;
use burnchat::train::{batch_loss, device};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    checkpoint: String,
    pairs: Vec<(String, String)>,
    learning_rate: f64,
    decoder_learning_ratio: f64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    clip: f64,
    teacher_forcing: bool,
    loss: f64,
    /// What `clip_grad_norm_` returned for the encoder's and then the decoder's parameters.
    grad_norms: [f64; 2],
    grads: Option<HashMap<String, Values>>,
    after: Option<HashMap<String, Values>>,
}

#[derive(Deserialize)]
struct Values {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A Burn module path as the bundle (PyTorch) names it: `encoder.gru.cells_reverse.1.ih.weight`
/// is `encoder.gru.weight_ih_l1_reverse`.
fn bundle_name(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    match parts.as_slice() {
        [module, "gru", cells, layer, gate, kind] => {
            let reverse = if *cells == "cells_reverse" {
                "_reverse"
            } else {
                ""
            };
            format!("{module}.gru.{kind}_{gate}_l{layer}{reverse}")
        }
        _ => path.to_string(),
    }
}

/// Every parameter's values (and gradient, when `grads` is given) by bundle name, in
/// PyTorch's layout: Burn keeps a `Linear` weight as [in, out], PyTorch as [out, in].
struct Collect<'a> {
    path: Vec<String>,
    grads: Option<&'a burn::tensor::Gradients>,
    out: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let name = bundle_name(&self.path.join("."));
        let tensor = match self.grads {
            Some(grads) => match param.val().grad(grads) {
                Some(grad) => grad,
                None => panic!("{name} has no gradient"),
            },
            None => param.val().inner(),
        };
        let data = if D == 2 && name != "embedding.weight" {
            tensor.transpose().into_data()
        } else {
            tensor.into_data()
        };
        let shape = data.shape().to_vec();
        let values = data.convert::<f32>().try_into_vec::<f32>().unwrap();
        self.out.insert(name, (shape, values));
    }
}

fn collect(
    model: &Seq2Seq,
    grads: Option<&burn::tensor::Gradients>,
) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    let mut visitor = Collect {
        path: Vec::new(),
        grads,
        out: HashMap::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

/// Each tensor within `tolerance` of the largest magnitude PyTorch's holds, or of `floor`
/// where that is smaller.
fn assert_close(
    what: &str,
    ours: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    theirs: &HashMap<String, Values>,
    tolerance: f32,
    floor: f32,
) {
    let mut names: Vec<&String> = theirs.keys().collect();
    names.sort();
    assert_eq!(ours.len(), theirs.len(), "{what}: parameter count");
    for name in names {
        let want = &theirs[name];
        let (shape, got) = ours
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no parameter {name}"));
        assert_eq!(shape, &want.shape, "{what}: {name} shape");
        let scale = want.values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = got
            .iter()
            .zip(&want.values)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst <= tolerance * scale.max(floor),
            "{what}: {name} differs by {worst} (largest value {scale})"
        );
    }
}

/// Gradients are compared to 1e-4 of their tensor's largest, but never closer than 1e-6:
/// the general attention's `attn.bias` has a gradient of exactly zero (it adds the same
/// amount to every score of a step, which softmax ignores), so both sides hold f32 noise
/// near 1e-7 there, against gradients up to about 1 elsewhere.
const GRAD_FLOOR: f32 = 1e-2;

/// Parameters after the step to 1e-6, a hundredth of the smallest step Adam takes here
/// (about lr = 1e-4 per element on a first step). Elements whose gradient is below what the
/// gradient check verifies (1e-4 of its tensor's largest, or 1e-6) but not zero are left out: Adam's
/// first step is `lr · g / (|g| + ε)`, which for such a gradient follows f32 noise in
/// PyTorch as here (general attention's `attn.bias`, whose gradient is exactly zero, moves
/// by ±lr in both, in directions that differ).
fn assert_step(
    what: &str,
    ours: &HashMap<String, (Vec<usize>, Vec<f32>)>,
    theirs: &HashMap<String, Values>,
    grads: &HashMap<String, Values>,
) {
    assert_eq!(ours.len(), theirs.len(), "{what}: parameter count");
    let (mut compared, mut left_out) = (0, 0);
    for (name, want) in theirs {
        let (_, got) = &ours[name];
        let grad = &grads[name].values;
        let floor = 1e-4 * grad.iter().fold(GRAD_FLOOR, |m, g| m.max(g.abs()));
        for (i, (a, b)) in got.iter().zip(&want.values).enumerate() {
            if grad[i] != 0.0 && grad[i].abs() < floor {
                left_out += 1;
                continue;
            }
            compared += 1;
            assert!(
                (a - b).abs() <= 1e-6,
                "{what}: {name}[{i}] is {a} after the step, PyTorch's {b} (gradient {})",
                grad[i]
            );
        }
    }
    assert!(
        left_out * 100 < compared,
        "{what}: {left_out} left out, {compared} compared"
    );
}

#[test]
fn one_step_equals_pytorch() {
    for name in ["dot_2x2_h24", "general_1x1_h20", "concat_2x2_h28"] {
        let fixture: Fixture = serde_json::from_slice(
            &std::fs::read(fixtures().join(format!("{name}.train.json"))).unwrap(),
        )
        .unwrap();
        let device = device();
        let bundle = import_checkpoint(
            &fixtures().join(&fixture.checkpoint),
            WeightDtype::F32,
            &device,
        )
        .unwrap();
        let pairs: Vec<&(String, String)> = fixture.pairs.iter().collect();
        let batch = batch_to_train_data(&bundle.voc, &pairs, &device);
        let mut grads_tf = None;
        for case in &fixture.cases {
            let what = format!("{name} {}", case.name);
            // The checkpoint's weights in a model without dropout.
            let config = burnchat::ModelConfig {
                dropout: 0.0,
                ..bundle.config.clone()
            };
            let model =
                Seq2Seq::new(&config, &device).load_record(bundle.model.clone().into_record());
            let (loss, _) = batch_loss(&model, &batch, case.teacher_forcing);
            let loss_value = loss.clone().into_scalar::<f64>();
            assert!(
                (loss_value - case.loss).abs() <= 1e-4 * case.loss.abs(),
                "{what}: loss {loss_value} against PyTorch's {}",
                case.loss
            );
            let grads = loss.backward();
            let ours = collect(&model, Some(&grads));
            match (&case.grads, case.teacher_forcing) {
                (Some(theirs), true) => {
                    assert_close(
                        &format!("{what} gradients"),
                        &ours,
                        theirs,
                        1e-4,
                        GRAD_FLOOR,
                    );
                    grads_tf = Some(ours);
                }
                (Some(theirs), false) => assert_close(
                    &format!("{what} gradients"),
                    &ours,
                    theirs,
                    1e-4,
                    GRAD_FLOOR,
                ),
                // The clipped case's gradients are the tutorial case's.
                (None, _) => assert_eq!(grads_tf.as_ref(), Some(&ours), "{what}: gradients"),
            }
            let Some(after) = &case.after else { continue };
            let mut optimizers = Optimizers::default();
            let (model, norms) = optimizers.step(
                model,
                grads,
                fixture.learning_rate,
                fixture.decoder_learning_ratio,
                case.clip,
            );
            // Adam hardly depends on a gradient's scale, so the step alone would not show a
            // wrong clip; the norms do.
            for (ours, theirs) in [norms.encoder, norms.decoder]
                .into_iter()
                .zip(case.grad_norms)
            {
                assert!(
                    (ours - theirs).abs() <= 1e-4 * theirs,
                    "{what}: gradient norm {ours} against PyTorch's {theirs}"
                );
            }
            let theirs_grads = case.grads.as_ref().or(fixture.cases[0].grads.as_ref());
            assert_step(&what, &collect(&model, None), after, theirs_grads.unwrap());
        }
    }
}
