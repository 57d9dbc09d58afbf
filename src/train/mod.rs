//! Training with the tutorial's recipe (feature `train`): masked NLL over the padded target,
//! teacher forcing, Adam with the decoder's learning rate five times the encoder's, gradient
//! clipping, dropout. Runs on Burn's `flex` CPU backend with autodiff.
//!
//! The step equals PyTorch's (`tests/train_step.rs` checks loss, gradients and the parameters
//! after it against the tutorial's): `clip_grad_norm_` over each optimizer's parameters
//! together, and the shared embedding stepped by both optimizers ([`optim`]).

pub mod batch;
pub mod corpus;
pub mod eval;
pub mod gru;
pub mod nll;
pub mod optim;
pub mod pairs;
pub mod report;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn_store::{BurnpackStore, ModuleSnapshot};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::config::{ModelConfig, WeightDtype};
use crate::error::{Error, Result, read};
use crate::model::Seq2Seq;
use crate::model::linear::linear;
use crate::voc::{SOS_TOKEN, Voc};
use batch::{Batch, batch_to_train_data};
use optim::{Adam, Optimizers};
use pairs::{Dataset, Pair};

/// The device training runs on: Burn's `flex` CPU backend with autodiff, the fastest CPU
/// backend for this model's matrix products.
pub fn device() -> Device {
    Device::flex().autodiff()
}

/// Training settings; the defaults are the tutorial's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model's shape; `num_words` is set from the data.
    pub model: ModelConfig,
    /// Pairs per iteration, sampled with replacement as the tutorial does (64).
    pub batch_size: usize,
    /// Iterations to run in all (4000).
    pub iterations: usize,
    /// Adam's learning rate for the embedding and encoder (1e-4).
    pub learning_rate: f64,
    /// The decoder's learning rate over the encoder's (5.0).
    pub decoder_learning_ratio: f64,
    /// Gradient norm clip (50.0).
    pub clip: f64,
    /// Share of iterations fed the true previous word rather than the model's own (1.0).
    pub teacher_forcing_ratio: f64,
    /// Seeds initialisation, batch sampling, teacher forcing and dropout.
    pub seed: u64,
    /// Iterations between validation losses.
    pub valid_every: usize,
    /// Validation pairs scored each time (the first ones of the held-out split).
    pub valid_pairs: usize,
    /// Iterations between full evaluations ([`eval`]: Recall@1/20 and each search's
    /// replies); 0: none. A multiple of `valid_every` to fall on validation points.
    #[serde(default)]
    pub eval_every: usize,
    /// Stop once this many validations in a row found no lower validation loss than the
    /// best before them; 0: never stop early.
    #[serde(default)]
    pub patience: usize,
}

impl TrainConfig {
    pub fn new(model: ModelConfig) -> Self {
        Self {
            model,
            batch_size: 64,
            iterations: 4000,
            learning_rate: 1e-4,
            decoder_learning_ratio: 5.0,
            clip: 50.0,
            teacher_forcing_ratio: 1.0,
            seed: 0,
            valid_every: 200,
            valid_pairs: 1024,
            eval_every: 0,
            patience: 0,
        }
    }
}

impl TrainConfig {
    /// Refuses settings no run can use.
    pub fn check(&self) -> Result<()> {
        self.model.check()?;
        let fail = |m: &str| {
            Err(Error::BadCorpus {
                file: "training settings".into(),
                message: m.into(),
            })
        };
        if self.batch_size == 0 || self.valid_every == 0 {
            return fail("batch_size and valid_every must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.decoder_learning_ratio > 0.0 && self.clip > 0.0) {
            return fail("learning_rate, decoder_learning_ratio and clip must be positive");
        }
        if !(0.0..=1.0).contains(&self.teacher_forcing_ratio) {
            return fail("teacher_forcing_ratio must be in [0, 1]");
        }
        Ok(())
    }
}

/// The losses so far: (iteration, mean per-token NLL), and the full evaluations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub train: Vec<(usize, f64)>,
    pub valid: Vec<(usize, f64)>,
    #[serde(default)]
    pub eval: Vec<(usize, eval::Metrics)>,
}

/// Where the iterations' time went, summed since the trainer was made or resumed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimes {
    pub iterations: usize,
    /// Batch building, encoder, decoder and loss.
    pub forward: Duration,
    pub backward: Duration,
    /// Gradient clipping and both Adam steps.
    pub optimizer: Duration,
}

/// What `Trainer::run` reports after each iteration.
pub struct Progress<'a> {
    pub iteration: usize,
    pub loss: f64,
    pub history: &'a History,
}

#[derive(Serialize, Deserialize)]
struct TrainerState {
    config: TrainConfig,
    iteration: usize,
    history: History,
}

const MODEL_FILE: &str = "model.bpk";
const BEST_MODEL_FILE: &str = "best.bpk";
const ENCODER_OPTIM_FILE: &str = "encoder_optimizer.safetensors";
const DECODER_OPTIM_FILE: &str = "decoder_optimizer.safetensors";
const STATE_FILE: &str = "trainer.json";
const VOC_FILE: &str = "voc.json";

/// A model being trained, with everything needed to continue exactly where it stopped.
pub struct Trainer {
    pub config: TrainConfig,
    pub voc: Voc,
    train: Vec<Pair>,
    /// Per corpus: its pairs' count in `train` and its weight.
    sources: Vec<(usize, f64)>,
    valid: Vec<Pair>,
    model: Option<Seq2Seq>,
    /// The model as it was at the lowest validation loss so far.
    best: Option<Seq2Seq>,
    optimizers: Optimizers,
    pub iteration: usize,
    pub history: History,
    /// Time spent in [`step`](Self::step), by phase.
    pub times: StepTimes,
    device: Device,
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::BadBundle {
        file: path.display().to_string(),
        message: e.to_string(),
    }
}

impl Trainer {
    /// A fresh model for `dataset`; `config.model.num_words` is taken from its vocabulary.
    pub fn new(mut config: TrainConfig, dataset: Dataset, device: Device) -> Result<Self> {
        config.model.num_words = dataset.voc.num_words();
        config.check()?;
        if dataset.train.is_empty() {
            return Err(Error::BadCorpus {
                file: "corpus".into(),
                message: "no training pairs left after filtering".into(),
            });
        }
        device.seed(config.seed);
        let model = Seq2Seq::new(&config.model, &device);
        // Burn draws initial weights lazily, on first use; draw them now, while the seed
        // just set is the RNG's state, so that the seed alone fixes them.
        model.visit(&mut Materialize);
        Ok(Self {
            optimizers: Optimizers::default(),
            config,
            voc: dataset.voc,
            train: dataset.train,
            sources: dataset.sources,
            valid: dataset.valid,
            model: Some(model),
            best: None,
            iteration: 0,
            history: History::default(),
            times: StepTimes::default(),
            device,
        })
    }

    /// Continues from a checkpoint written by [`save_checkpoint`](Self::save_checkpoint).
    /// `dataset` must be the one it was trained on (same vocabulary); `iterations` may
    /// raise the total.
    pub fn resume(
        dir: &Path,
        dataset: Dataset,
        iterations: Option<usize>,
        device: Device,
    ) -> Result<Self> {
        let state_path = dir.join(STATE_FILE);
        let state: TrainerState =
            serde_json::from_slice(&read(&state_path)?).map_err(|e| store_error(&state_path, e))?;
        let voc_path = dir.join(VOC_FILE);
        let voc = Voc::from_json(&read(&voc_path)?)?;
        if voc != dataset.voc {
            return Err(store_error(
                &voc_path,
                "the corpus gives another vocabulary than the checkpoint's; resume with the same corpus and settings",
            ));
        }
        let mut trainer = Self::new(state.config, dataset, device)?;
        if let Some(iterations) = iterations {
            trainer.config.iterations = iterations;
        }
        let model_path = dir.join(MODEL_FILE);
        let mut store = BurnpackStore::from_file(&model_path);
        let model = trainer.model.as_mut().expect("model present between steps");
        model
            .load_from(&mut store)
            .map_err(|e| store_error(&model_path, e))?;
        if !dir.join(ENCODER_OPTIM_FILE).exists() && dir.join("encoder_optimizer.bpk").exists() {
            return Err(store_error(
                &dir.join("encoder_optimizer.bpk"),
                "a checkpoint of an older burnchat, whose optimizer state (Burn's Adam, clipped per tensor) this one cannot continue; start a new run",
            ));
        }
        let best_path = dir.join(BEST_MODEL_FILE);
        if best_path.exists() {
            let mut best = trainer.model().clone();
            best.load_from(&mut BurnpackStore::from_file(&best_path))
                .map_err(|e| store_error(&best_path, e))?;
            trainer.best = Some(best);
        }
        trainer.optimizers = Optimizers {
            encoder: Adam::load(&dir.join(ENCODER_OPTIM_FILE))?,
            decoder: Adam::load(&dir.join(DECODER_OPTIM_FILE))?,
        };
        trainer.iteration = state.iteration;
        trainer.history = state.history;
        Ok(trainer)
    }

    /// Writes the model, both optimizers, the iteration and the history into `dir`, each file
    /// replaced whole, so an interrupted save leaves the previous checkpoint readable.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let model_path = dir.join(MODEL_FILE);
        let mut store = BurnpackStore::from_file(&model_path).overwrite(true);
        self.model()
            .save_into(&mut store)
            .map_err(|e| store_error(&model_path, e))?;
        if let Some(best) = &self.best {
            let best_path = dir.join(BEST_MODEL_FILE);
            best.save_into(&mut BurnpackStore::from_file(&best_path).overwrite(true))
                .map_err(|e| store_error(&best_path, e))?;
        }
        self.optimizers
            .encoder
            .save(&dir.join(ENCODER_OPTIM_FILE))?;
        self.optimizers
            .decoder
            .save(&dir.join(DECODER_OPTIM_FILE))?;
        let state = TrainerState {
            config: self.config.clone(),
            iteration: self.iteration,
            history: self.history.clone(),
        };
        let write = |file: &str, text: String| {
            let path = dir.join(file);
            let tmp = dir.join(format!("{file}.tmp"));
            std::fs::write(&tmp, text).map_err(Error::io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(Error::io(&path))
        };
        write(VOC_FILE, self.voc.to_json())?;
        write(
            STATE_FILE,
            serde_json::to_string_pretty(&state).expect("state serialises"),
        )?;
        Ok(())
    }

    fn model(&self) -> &Seq2Seq {
        self.model.as_ref().expect("model present between steps")
    }

    /// The pairs of one iteration and whether it uses teacher forcing: a function of the seed
    /// and the iteration alone, so a resumed run draws what the uninterrupted one would have.
    pub fn draw(&self, iteration: usize) -> (Vec<&Pair>, bool) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(iteration as u64);
        let pairs = (0..self.config.batch_size)
            .map(|_| &self.train[self.draw_index(&mut rng)])
            .collect();
        let teacher_forcing = rng.random::<f64>() < self.config.teacher_forcing_ratio;
        (pairs, teacher_forcing)
    }

    /// One training pair's index: uniform over all pairs when the corpora weigh the same,
    /// else a corpus first, with probability proportional to its pairs times its weight.
    fn draw_index(&self, rng: &mut ChaCha8Rng) -> usize {
        let same = self.sources.iter().all(|s| s.1 == self.sources[0].1);
        if same {
            return rng.random_range(0..self.train.len());
        }
        let total: f64 = self.sources.iter().map(|(n, w)| *n as f64 * w).sum();
        let mut target = rng.random::<f64>() * total;
        let mut start = 0;
        for &(n, w) in &self.sources {
            let mass = n as f64 * w;
            if n > 0 && (target < mass || start + n == self.train.len()) {
                return start + rng.random_range(0..n);
            }
            target -= mass;
            start += n;
        }
        unreachable!("the last non-empty corpus takes what rounding leaves")
    }

    /// One iteration: returns the batch's mean per-token NLL.
    pub fn step(&mut self) -> f64 {
        let started = Instant::now();
        let (pairs, teacher_forcing) = self.draw(self.iteration);
        let batch = batch_to_train_data(&self.voc, &pairs, &self.device);
        self.device
            .seed(self.config.seed ^ (self.iteration as u64).wrapping_mul(0x9E37_79B9));
        let model = self.model.take().expect("model present between steps");
        let (loss, mean) = batch_loss(&model, &batch, teacher_forcing);
        let forward_done = Instant::now();
        let grads = loss.backward();
        let backward_done = Instant::now();
        let config = &self.config;
        let (model, _) = self.optimizers.step(
            model,
            grads,
            config.learning_rate,
            config.decoder_learning_ratio,
            config.clip,
        );
        self.model = Some(model);
        let times = &mut self.times;
        times.iterations += 1;
        times.forward += forward_done - started;
        times.backward += backward_done - forward_done;
        times.optimizer += backward_done.elapsed();
        self.iteration += 1;
        self.history.train.push((self.iteration, mean));
        mean
    }

    /// Mean per-token NLL over the first `valid_pairs` held-out pairs, with teacher forcing and
    /// without dropout; `None` when nothing was held out.
    pub fn validate(&mut self) -> Option<f64> {
        let n = self.valid.len().min(self.config.valid_pairs);
        if n == 0 {
            return None;
        }
        let model = self.model().valid();
        let device = self.device.clone().inner();
        let (mut nll, mut tokens) = (0.0, 0usize);
        for chunk in self.valid[..n].chunks(self.config.batch_size) {
            let pairs: Vec<&Pair> = chunk.iter().collect();
            let batch = batch_to_train_data(&self.voc, &pairs, &device);
            let count: usize = batch.mask_counts.iter().sum();
            let (_, mean) = batch_loss(&model, &batch, true);
            nll += mean * count as f64;
            tokens += count;
        }
        let loss = nll / tokens as f64;
        if self.history.valid.iter().all(|&(_, v)| loss < v) {
            self.best = Some(self.model().clone());
        }
        self.history.valid.push((self.iteration, loss));
        Some(loss)
    }

    /// The iteration and validation loss of the best validation so far.
    pub fn best_validation(&self) -> Option<(usize, f64)> {
        self.history
            .valid
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Whether the last `config.patience` validations all missed the best loss before them.
    pub fn stopped_improving(&self) -> bool {
        let patience = self.config.patience;
        let valid = &self.history.valid;
        patience > 0
            && valid.len() > patience
            && self
                .best_validation()
                .is_some_and(|(i, _)| valid[valid.len() - patience].0 > i)
    }

    /// Makes the model the one of the lowest validation loss, if one was kept and it is not
    /// already; returns its iteration. The checkpoint keeps the last state, to resume from.
    pub fn restore_best(&mut self) -> Option<usize> {
        let (iteration, _) = self.best_validation()?;
        let best = self.best.clone()?;
        if iteration == self.iteration {
            return None;
        }
        self.model = Some(best);
        Some(iteration)
    }

    /// Measures the model as it is now on the held-out pairs ([`eval::evaluate`]).
    pub fn evaluate(
        &self,
        searches: &[(String, crate::SearchOptions)],
        settings: &eval::EvalSettings,
    ) -> Result<eval::Metrics> {
        let bot = eval::evaluator(self.bundle(WeightDtype::F32)?);
        eval::evaluate(&bot, &self.valid, searches, settings)
    }

    /// Runs until `config.iterations` or until `stop` is set, validating every
    /// `valid_every` iterations and checkpointing into `checkpoint_dir` every
    /// `checkpoint_every` iterations (0: never) and at the end (a stop included).
    pub fn run(
        &mut self,
        checkpoint_dir: &Path,
        checkpoint_every: usize,
        stop: &AtomicBool,
        mut on_progress: impl FnMut(Progress<'_>) + Send,
    ) -> Result<()> {
        // On a thread of the pool Burn's products run on: from outside it, the thread
        // driving the steps would compete for the cores with the pool's threads, which spin
        // a while after each product, and every operation between products would be slow.
        rayon::scope(|_| self.run_steps(checkpoint_dir, checkpoint_every, stop, &mut on_progress))
    }

    fn run_steps(
        &mut self,
        checkpoint_dir: &Path,
        checkpoint_every: usize,
        stop: &AtomicBool,
        on_progress: &mut (impl FnMut(Progress<'_>) + Send),
    ) -> Result<()> {
        while self.iteration < self.config.iterations && !stop.load(Ordering::Relaxed) {
            let loss = self.step();
            if self.iteration.is_multiple_of(self.config.valid_every) {
                self.validate();
            }
            let eval_every = self.config.eval_every;
            if eval_every > 0 && self.iteration.is_multiple_of(eval_every) && !self.valid.is_empty()
            {
                let metrics = self.evaluate(&eval::offered_searches(false), &Default::default())?;
                self.history.eval.push((self.iteration, metrics));
            }
            if self.iteration.is_multiple_of(checkpoint_every) {
                self.save_checkpoint(checkpoint_dir)?;
            }
            on_progress(Progress {
                iteration: self.iteration,
                loss,
                history: &self.history,
            });
            if self.stopped_improving() {
                break;
            }
        }
        self.save_checkpoint(checkpoint_dir)
    }

    /// The trained model as a bundle on the inference backend, stored as `dtype`.
    pub fn bundle(&self, dtype: WeightDtype) -> Result<Bundle> {
        let config = ModelConfig {
            dtype,
            ..self.config.model.clone()
        };
        let device = crate::backend::device();
        let model = self.model().valid().to_device(&device);
        Ok(Bundle {
            config,
            voc: self.voc.clone(),
            model,
        })
    }

    pub fn train_pairs(&self) -> &[Pair] {
        &self.train
    }

    pub fn valid_pairs(&self) -> &[Pair] {
        &self.valid
    }
}

/// Training's tensors are Flex tensors; this is one's own.
fn flex<const D: usize>(tensor: Tensor<D>) -> burn::backend::flex::FlexTensor {
    tensor
        .try_into_primitive::<burn::backend::Flex>()
        .expect("training runs on the flex backend")
}

/// A Flex tensor's f32 values in order, borrowed when its memory holds them so.
fn flex_values(tensor: &burn::backend::flex::FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match tensor.as_slice::<f32>() {
        Some(values) => values.into(),
        None => tensor.to_contiguous().storage::<f32>().to_vec().into(),
    }
}

/// Reads every parameter once, which makes Burn initialise the lazy ones.
struct Materialize;

impl burn::module::ModuleVisitor for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
        let _ = param.val();
    }
}

/// The tutorial's `train` loss: for each target step, `-log p(target)` averaged over the
/// batch entries whose target is not padding (`maskNLLLoss`), summed over steps. Returns that
/// sum (to differentiate) and the mean per-token NLL (to report).
pub fn batch_loss(model: &Seq2Seq, batch: &Batch, teacher_forcing: bool) -> (Tensor<1>, f64) {
    let nll = word_nll(model, batch, teacher_forcing); // [words, 1]
    // Each step's mean over its words (`maskNLLLoss`), summed over steps.
    let loss = (nll.clone() * batch.word_weights.clone()).sum();
    let tokens: usize = batch.mask_counts.iter().sum();
    let mean = nll.detach().sum().into_scalar::<f64>() / tokens.max(1) as f64;
    (loss, mean)
}

/// `-log p(word)` of every target word of the batch (not its padding), in the order of
/// `batch.words`: [words, 1].
///
/// With teacher forcing the decoder's inputs are known before it runs, so every step goes
/// through attention and `concat` together ([`LuongAttnDecoderRNN::attend_steps`]), and
/// `out` and the loss only for the target's words, not its padding; without, each step
/// feeds its own argmax to the next.
///
/// [`LuongAttnDecoderRNN::attend_steps`]: crate::model::LuongAttnDecoderRNN::attend_steps
pub fn word_nll(model: &Seq2Seq, batch: &Batch, teacher_forcing: bool) -> Tensor<2> {
    let device = batch.input.device();
    let [target_len, width] = batch.target.dims();
    let (encoder_outputs, encoder_hidden) =
        model
            .encoder
            .forward(&model.embedding, batch.input.clone(), &batch.lengths);
    let hidden = encoder_hidden.slice(s![0..model.decoder.gru.num_layers()]);
    let sos = Tensor::<2, Int>::full([1, width], SOS_TOKEN as i64, &device);
    let decoder = &model.decoder;
    // The output layer's inputs or logits where a target word is scored: padding adds
    // nothing to the loss, so with teacher forcing its rows are never projected.
    let logits = if teacher_forcing {
        // The decoder's inputs: SOS, then the target but its last step. [target_len, batch]
        let inputs = Tensor::cat(
            vec![sos, batch.target.clone().slice(s![0..target_len - 1])],
            0,
        );
        let (attended, _, _) = decoder.attend_steps(
            &model.embedding,
            inputs,
            hidden,
            encoder_outputs,
            Some(&batch.target_lengths),
        );
        let [_, _, h] = attended.dims();
        let attended = attended
            .reshape([target_len * width, h])
            .select(0, batch.words.clone()); // [words, hidden]
        linear(&decoder.out, attended) // [words, num_words]
    } else {
        let (mut input, mut hidden) = (sos, hidden);
        let mut steps = Vec::with_capacity(target_len);
        for _ in 0..target_len {
            let (logits, h) =
                decoder.forward_logits(&model.embedding, input, hidden, encoder_outputs.clone()); // [batch, num_words]
            hidden = h;
            input = logits.clone().argmax(1).reshape([1, width]);
            steps.push(logits);
        }
        let logits = Tensor::cat(steps, 0); // [target_len * batch, num_words]
        logits.select(0, batch.words.clone())
    };
    if logits.is_autodiff() {
        // Training: one node, without the [words, num_words] intermediates.
        let [words, _] = logits.dims();
        return nll::nll(logits, batch.word_ids.clone().reshape([words])); // [words, 1]
    }
    log_softmax(logits, 1)
        .gather(1, batch.word_ids.clone())
        .neg() // [words, 1]
}
