# burnchat: `make test` runs every test, installing what is missing.

WASM_TARGET := wasm32-unknown-unknown

.PHONY: test test-native check-wasm wasm-target fixtures

test: test-native check-wasm

# Native unit and integration tests (PyTorch fixtures, bad input, the CLI).
test-native:
	cargo test --locked

# The library must keep building for the browser: no files, no threads.
check-wasm: wasm-target
	cargo build --locked --lib --target $(WASM_TARGET) --no-default-features

wasm-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# Regenerate tests/fixtures with PyTorch (by hand, never in CI; needs `pip install torch`).
fixtures:
	python3 tests/fixtures/make_fixtures.py
