# burnchat. `make serve`: build the page and serve it on http://127.0.0.1:8080.
# `make test`: every test. Both install what is missing.

WASM_TARGET := wasm32-unknown-unknown
PORT ?= 8080
# The compute backend of the browser module (and of `make bench`): ndarray or flex.
BACKEND ?= flex
# The Python for the by-hand targets that run PyTorch (bench-torch, golden, fixtures): one with
# torch and numpy (`pip install torch numpy`, in a virtualenv outside the repository).
PYTHON ?= python3
WASM_FEATURES := --no-default-features --features $(BACKEND)
export CHROMEDRIVER ?= /usr/bin/chromedriver
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq

.PHONY: fuzz test test-native test-native-ndarray test-wasm test-wasm-ndarray test-e2e test-types serve dist pkg toolchain browser golden fixtures train eval apt-update \
	bench bench-browser bench-torch

test: test-native test-native-ndarray test-wasm test-wasm-ndarray test-e2e test-types

# Native unit and integration tests (PyTorch fixtures, bad input, the CLI, the trainer,
# the bundled model's golden replies). `ndarray` is on too, so that both backends compile;
# the tests run on flex, which wins when both are on.
test-native:
	cargo test --locked --features train,ndarray

# The bundled model's golden replies and searches on a native ndarray build (the design's
# backend), flex off: PyTorch's tokens, words and scores, as on flex.
test-native-ndarray:
	cargo test --locked --no-default-features --features native,ndarray --test golden

# The property tests of tests/fuzz.rs at 10,000 cases each (`make test` runs 500); another
# seed: `make fuzz FUZZ_SEED=7`.
FUZZ_CASES ?= 10000
FUZZ_SEED ?= 0
fuzz:
	BURNCHAT_FUZZ_CASES=$(FUZZ_CASES) BURNCHAT_FUZZ_SEED=$(FUZZ_SEED) \
		cargo test --locked --features train,ndarray --test fuzz -- --nocapture

# --- tools, each installed only when missing --------------------------------------------
apt-update:
	@[ -n "$$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ] || apt-get update -qq

toolchain:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)
	@command -v wasm-pack >/dev/null || cargo install --locked wasm-pack

browser: apt-update
	@command -v chromium >/dev/null && [ -x /usr/bin/chromedriver ] || $(APT_INSTALL) chromium chromium-driver

# --- the page --------------------------------------------------------------------------
# wasm-pack builds the module, wasm-opt shrinks it; dist/ gets the page, the module and the
# bundled weights, and the service worker a version from all of them. wasm-opt is binaryen's
# npm package: Debian's binaryen (108) breaks the externref table of wasm-bindgen's output.
WASM_OPT := node tools/node_modules/binaryen/bin/wasm-opt
WASM_OPT_FEATURES := --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
	--enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd

tools/node_modules: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --silent
	touch tools/node_modules

dist: toolchain tools/node_modules
	wasm-pack build --target web --release --out-dir target/pkg . $(WASM_FEATURES)
	rm -rf dist && mkdir -p dist/pkg dist/weights/backward
	cp www/index.html www/style.css www/app.js www/burn-chat.js www/burn-chat.css www/worker.js www/attention.js www/settings.js dist/
	cp target/pkg/burnchat.js dist/pkg/
	$(WASM_OPT) -O3 $(WASM_OPT_FEATURES) target/pkg/burnchat_bg.wasm -o dist/pkg/burnchat_bg.wasm
	cp weights/model.safetensors weights/config.json weights/voc.json dist/weights/
	cp weights/backward/model.safetensors weights/backward/config.json weights/backward/voc.json dist/weights/backward/
	mkdir -p dist/embed && cp examples/embed/index.html examples/embed/site.css dist/embed/
	version=$$(cat dist/*.* dist/pkg/* dist/weights/*.* dist/weights/backward/* | sha256sum | cut -c1-12); \
		sed "s/__VERSION__/$$version/" www/sw.js > dist/sw.js
	@ls -l dist/pkg/burnchat_bg.wasm target/pkg/burnchat_bg.wasm dist/weights/model.safetensors dist/weights/backward/model.safetensors

# The npm package in pkg/: the module (as dist/ has it) and its JS glue, with the TypeScript
# declarations wasm-bindgen writes (src/wasm/types.rs adds the reply's and options' shapes);
# the weights apart. `cd pkg && npm pack` makes the tarball.
pkg: dist
	rm -rf pkg && mkdir pkg
	cp target/pkg/burnchat.js target/pkg/burnchat.d.ts dist/pkg/burnchat_bg.wasm npm/README.md pkg/
	version=$$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1); \
		sed "s/__VERSION__/$$version/" npm/package.json > pkg/package.json

serve: dist
	@echo "burnchat on http://127.0.0.1:$(PORT)"
	python3 -m http.server $(PORT) --bind 127.0.0.1 --directory dist

# --- browser tests ---------------------------------------------------------------------
# The wasm module in headless Chromium, against PyTorch's golden replies.
test-wasm: toolchain browser
	wasm-pack test --release --headless --chrome . $(WASM_FEATURES) --test web

# The package packs, and a TypeScript user of it (examples/typescript) type-checks against
# its declarations: the tarball unpacked as node_modules/burnchat, then `tsc --noEmit`.
TYPES_CHECK := target/types-check
test-types: pkg tools/node_modules
	rm -rf $(TYPES_CHECK) && mkdir -p $(TYPES_CHECK)/node_modules
	cd pkg && npm pack --silent --pack-destination ../$(TYPES_CHECK)
	tar xzf $(TYPES_CHECK)/burnchat-*.tgz -C $(TYPES_CHECK) && mv $(TYPES_CHECK)/package $(TYPES_CHECK)/node_modules/burnchat
	cp examples/typescript/example.ts examples/typescript/tsconfig.json $(TYPES_CHECK)/
	node tools/node_modules/typescript/bin/tsc -p $(TYPES_CHECK)/tsconfig.json

# The same browser tests on a second wasm build, on ndarray (the design's backend): the golden
# replies and searches, bad input and hostile bundles.
test-wasm-ndarray: toolchain browser
	$(MAKE) test-wasm BACKEND=ndarray

# The page end to end with playwright-core driving Debian's Chromium.
test-e2e: dist browser
	cd tests/e2e && npm ci --no-audit --no-fund --silent
	node --test tests/e2e/

# --- benchmarks (by hand, never in CI; BENCHMARKS.md has the figures) -------------------
# Native reply latency and memory of the bundled model, one thread.
bench:
	cargo build --release --no-default-features --features native,$(BACKEND)
	target/release/burnchat bench --threads 1 --soak 10000

# The same in headless Chromium, in the page's Web Worker, plus page load to first reply.
bench-browser: dist browser
	cd tests/e2e && npm ci --no-audit --no-fund --silent
	node tests/e2e/bench.mjs

# Eager PyTorch and TorchScript against burnchat, one table (PYTHON needs torch and numpy).
bench-torch:
	cargo build --release --no-default-features --features native,$(BACKEND)
	$(PYTHON) bench/reply_speed.py --threads 1

# --- maintenance (by hand) -------------------------------------------------------------
# PyTorch's replies with the bundled model, which the golden tests compare against.
golden:
	$(PYTHON) tests/golden/make_golden.py

# Regenerate tests/fixtures with PyTorch (needs `pip install torch`).
fixtures:
	$(PYTHON) tests/fixtures/make_fixtures.py

# The bundled default model and its backward model: fetch the Chit-Chat and ChatterBot
# corpora from PyPI and train with the exact settings that produced weights/ and
# weights/backward/ (see README, "The bundled model", and TRAINING.md: e9, e10 and r2).
# Downloaded data stays in corpus/, out of git.
CORPUS := corpus/chitchat_dataset/dataset.json
CHATTERBOT := corpus/chatterbot_corpus/data/english
TRAIN_CORPORA := $(CORPUS) chatterbot:$(CHATTERBOT)@10
TRAIN_FLAGS := --encoder-n-layers 2 --decoder-n-layers 2 --attn-model dot \
	--min-count 7 --max-length 10 --seed 0 --dropout 0.1 --dtype int8
TRAIN := cargo run --release --features train -- train $(TRAIN_CORPORA) $(TRAIN_FLAGS)

$(CORPUS):
	mkdir -p corpus
	python3 -m pip download --no-deps --dest corpus chitchat-dataset==0.9.0
	cd corpus && python3 -m zipfile -e chitchat_dataset-0.9.0-py3-none-any.whl .

$(CHATTERBOT):
	mkdir -p corpus
	python3 -m pip download --no-deps --dest corpus chatterbot-corpus==1.3.3
	cd corpus && python3 -m zipfile -e chatterbot_corpus-1.3.3-py2.py3-none-any.whl .

# e9: 8,000 iterations at the tutorial's rate; e10: its checkpoint on to 10,000 at a tenth of
# it; r2: the backward model, p(message | reply), at hidden size 128. Each exports the model
# of its lowest validation loss.
train: $(CORPUS) $(CHATTERBOT)
	$(TRAIN) --hidden-size 256 --learning-rate 1e-4 --iterations 8000 \
		--out weights --checkpoint checkpoint --report report
	$(TRAIN) --hidden-size 256 --resume --learning-rate 1e-5 --iterations 10000 \
		--out weights --checkpoint checkpoint --report report
	$(TRAIN) --reverse --hidden-size 128 --learning-rate 1e-4 --iterations 8000 \
		--out weights/backward --checkpoint checkpoint-backward --report report-backward

# The bundled model measured on the Chit-Chat corpus's held-out conversations (TRAINING.md).
eval: $(CORPUS)
	cargo run --release --features train -- eval --weights weights --backward weights/backward $(CORPUS)
