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
        // Parameters whose gradient is zero but for f32 noise (general attention's
        // `attn.bias`): Adam moves each element by about ±lr in the direction of that noise,
        // in PyTorch as here, so their values after the step are not compared.
        let noise: Vec<String> = fixture.cases[0]
            .grads
            .as_ref()
            .expect("the first case has gradients")
            .iter()
            .filter(|(_, g)| g.values.iter().all(|v| v.abs() < 1e-6))
            .map(|(name, _)| name.clone())
            .collect();
        for case in &fixture.cases {
            let what = format!("{name} {}", case.name);
            // The checkpoint's weights in a model without dropout.
            let config = burnchat::ModelConfig {
                dropout: 0.0,
                ..bundle.config.clone()
            };
            let model =
                Seq2Seq::new(&config, &device).load_record(bundle.model.clone().into_record());
            let before = collect(&model, None);
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
            let mut after: HashMap<String, Values> = after
                .iter()
                .map(|(n, v)| {
                    (
                        n.clone(),
                        Values {
                            shape: v.shape.clone(),
                            values: v.values.clone(),
                        },
                    )
                })
                .collect();
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
            let mut stepped = collect(&model, None);
            for name in &noise {
                after.remove(name);
                stepped.remove(name);
            }
            assert_close(
                &format!("{what} parameters after the step"),
                &stepped,
                &after,
                1e-5,
                1.0,
            );
            // The step itself (1e-4 to 6e-4 here) to 5% of the largest: parameters near 1
            // would hide a wrong step inside 1e-5. Not closer: where a gradient is at f32's
            // noise floor (1e-7 of its tensor's largest), Adam's step still depends on it.
            let moved =
                |values: &HashMap<String, (Vec<usize>, Vec<f32>)>| -> HashMap<String, Values> {
                    values
                        .iter()
                        .map(|(name, (shape, v))| {
                            let start = &before[name].1;
                            let values = v.iter().zip(start).map(|(a, b)| a - b).collect();
                            (
                                name.clone(),
                                Values {
                                    shape: shape.clone(),
                                    values,
                                },
                            )
                        })
                        .collect()
                };
            let theirs_moved = moved(
                &after
                    .iter()
                    .map(|(n, v)| (n.clone(), (v.shape.clone(), v.values.clone())))
                    .collect(),
            );
            let ours_moved = moved(&stepped)
                .into_iter()
                .map(|(n, v)| (n, (v.shape, v.values)))
                .collect();
            assert_close(
                &format!("{what} step"),
                &ours_moved,
                &theirs_moved,
                5e-2,
                0.0,
            );
        }
    }
}
