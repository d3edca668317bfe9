# The two commands of the README, and what they need. Nothing here relies on anything installed
# by hand: `setup` adds the wasm32 target, the lint tools, and the C and AssemblyScript compilers.

.PHONY: demo test cargo-test setup setup-rust lint package pytest pytest-python deploy-check

# What building leadtime needs: the wasm32 target (the built-in policies compile to it).
setup-rust:
	rustup target add wasm32-unknown-unknown
	rustup component add rustfmt clippy

# What the whole test suite needs besides.
setup: setup-rust
	@# C policies (guest-sdk/c): clang and wasm-ld; AssemblyScript policies: node, npm, asc.
	@command -v clang >/dev/null && command -v wasm-ld >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq clang lld >/dev/null; }
	@command -v node >/dev/null && command -v npm >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null; }
	@test -x guest-sdk/assemblyscript/node_modules/.bin/asc || \
		(cd guest-sdk/assemblyscript && npm ci --no-audit --no-fund --silent)
	@# The KEDA scaler's tests start a real Prometheus (serve/tests).
	@command -v prometheus >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@# Its hostile-client suite (serve/tests/python): openssl makes the certificates, and a venv
	@# holds grpcio, grpcio-tools and pytest.
	@command -v openssl >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null; }
	@test -x target/pyenv/bin/python || python3 -m venv target/pyenv 2>/dev/null || \
		{ rm -rf target/pyenv; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null && python3 -m venv target/pyenv; }
	target/pyenv/bin/pip install -q --disable-pip-version-check -r serve/tests/python/requirements.txt \
		-r serve/tests/deploy/requirements.txt -r python/requirements-dev.txt
	@# The deployment checks (serve/tests/deploy) build serve/deploy with kubectl's kustomize.
	@command -v kubectl >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null; }
	@# ...and check the custom resources with the npm models of KEDA's and prometheus-operator's
	@# CRDs (serve/tests/deploy/crds/README.md).
	@test -d serve/tests/deploy/crds/node_modules || \
		(cd serve/tests/deploy/crds && npm ci --no-audit --no-fund --silent)

# The main job: backtest the embedded predictive policy against the HPA on a bundled trace (NYC
# taxi demand, 5-minute pod ready time, peak at 20 pods, 2 days of history first); prints the
# table, the QoS sweep and the comparison at equal cost, and writes the report. It builds the
# `leadtime` binary without the scaler (`serve`), in the dev profile, whose dependencies are
# optimised and shared with `make test`'s build (docs/performance.md, "Build and test times").
# A first build gains nothing from incremental caches, and a demo needs no line tables: ~25% less
# for our own crates, the end of the build's critical path (dependencies are built the same).
demo: setup-rust
	@mkdir -p target
	CARGO_INCREMENTAL=0 CARGO_PROFILE_DEV_DEBUG=false cargo run -p leadtime-cli --no-default-features -- backtest --policy predictive --policy hpa \
		--trace testdata/traces/nyc_taxi.csv --ready-time 5m --peak-pods 20 --warmup 2d --sweep \
		--report target/demo-report.html

# Every check CI runs, stage by stage, with a per-stage summary of wall times at the end
# (scripts/stage.sh) and the slowest tests. The installs (network) and clippy (CPU) overlap.
test: setup-rust
	@scripts/stage.sh --reset
	@scripts/stage.sh setup $(MAKE) --no-print-directory setup > target/setup.log 2>&1 & setup=$$!; \
		scripts/stage.sh lint $(MAKE) --no-print-directory lint; lint=$$?; \
		wait $$setup; setup=$$?; cat target/setup.log; [ $$lint -eq 0 ] && [ $$setup -eq 0 ]
	@scripts/stage.sh cargo-test $(MAKE) --no-print-directory cargo-test
	@scripts/stage.sh pytest $(MAKE) --no-print-directory pytest
	@scripts/stage.sh pytest-python $(MAKE) --no-print-directory pytest-python
	@scripts/stage.sh deploy-check $(MAKE) --no-print-directory deploy-check
	@scripts/stage.sh package $(MAKE) --no-print-directory package
	@scripts/stage.sh --summary
	@scripts/slowest-tests.py 15

# The Rust tests: cargo-nextest (on the machine; installed when missing) runs every test binary's
# tests side by side, then the doctests, which nextest does not run.
cargo-test:
	@command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
	cargo nextest run --workspace --no-fail-fast
	cargo test --workspace --doc

# The scaler against hostile gRPC clients in Python (grpcio), the real binary and a real
# Prometheus; needs `make setup` and the binary that `cargo test --workspace` builds.
pytest:
	target/pyenv/bin/python -m pytest -q serve/tests/python --junitxml=target/junit-serve.xml

# The Python package (python/, docs/python.md): `pip install ./python` into target/pyenv, built by
# maturin in the workspace's target dir with the dev profile, so it reuses the wasmtime that
# `cargo test --workspace` built; then its tests, which compare with that build's CLI binary.
# Needs `make setup` (maturin, pandas, Dask... from python/requirements-dev.txt).
pytest-python:
	PATH="$(CURDIR)/target/pyenv/bin:$$PATH" MATURIN_PEP517_ARGS="--profile dev" target/pyenv/bin/pip install -q --disable-pip-version-check \
		--no-build-isolation --no-deps --force-reinstall ./python
	target/pyenv/bin/python -m pytest -q python/tests --junitxml=target/junit-python.xml

# The manifests, alerts, dashboard and Dockerfile of serve/ (kubernetes-validate, the CRDs'
# schemas as npm models, Pod Security "restricted", kustomize, promtool); needs `make setup`, no
# build.
deploy-check:
	target/pyenv/bin/python -m pytest -q -rs serve/tests/deploy --junitxml=target/junit-deploy.xml

# The library crates packaged as crates.io would receive them, each built from its package alone.
package:
	scripts/package.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
