# The two commands of the README, and what they need. Nothing here relies on anything installed
# by hand: `setup` adds the wasm32 target and the lint tools.

.PHONY: demo test setup lint

setup:
	rustup target add wasm32-unknown-unknown
	rustup component add rustfmt clippy

# The main job on the embedded default policy.
demo: setup
	cargo run --release -p leadtime-cli -- decide --request examples/request.json

# Every check CI runs.
test: setup lint
	cargo test --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
