# burnchat: `make test` runs every test, installing what is missing.

WASM_TARGET := wasm32-unknown-unknown

.PHONY: test test-native check-wasm wasm-target fixtures train

test: test-native check-wasm

# Native unit and integration tests (PyTorch fixtures, bad input, the CLI, the trainer).
test-native:
	cargo test --locked --features train

# The library must keep compiling for the browser: no files, no threads. (`check` finds
# every compile error without spending CI time on code generation.)
check-wasm: wasm-target
	cargo check --locked --lib --target $(WASM_TARGET) --no-default-features

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# Regenerate tests/fixtures with PyTorch (by hand, never in CI; needs `pip install torch`).
fixtures:
	python3 tests/fixtures/make_fixtures.py

# The bundled default model: fetch the Chit-Chat corpus from PyPI and train with the exact
# settings that produced weights/ (see README, "The bundled model").
CORPUS := corpus/chitchat_dataset/dataset.json
TRAIN_FLAGS := --hidden-size 256 --encoder-n-layers 2 --decoder-n-layers 2 --attn-model dot \
	--min-count 7 --max-length 10 --seed 0 --iterations $(or $(ITERATIONS),6000) --dtype f16

$(CORPUS):
	mkdir -p corpus
	python3 -m pip download --no-deps --dest corpus chitchat-dataset==0.9.0
	cd corpus && python3 -m zipfile -e chitchat_dataset-0.9.0-py3-none-any.whl .

train: $(CORPUS)
	cargo run --features train -- train $(CORPUS) $(TRAIN_FLAGS) \
		--out weights --checkpoint checkpoint --report report
