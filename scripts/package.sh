#!/usr/bin/env bash
# Packages the library crates as crates.io would receive them and builds each package from its own
# contents (`cargo package` verifies): leadtime-wire, leadtime-guest, leadtime-wasm-build,
# leadtime-builtin, leadtime, leadtime-schedule, leadtime-backtest. Publishing is then `cargo publish` in that order.
#
# In the workspace, leadtime-builtin builds the policies from their sources; a package has no
# workspace to build from, so it carries the modules built here (policies/builtin/wasm/, kept out
# of git) and its build script embeds those.
set -euo pipefail
cd "$(dirname "$0")/.."

# The engine is what an embedder pays for: with its default features its dependency tree has
# none of the backtest's or the scaler's crates.
heavy=$(cargo tree -q -p leadtime -e normal --prefix none | grep -oE '^(csv|chrono|humantime|rand[a-z_]*|tokio|tonic|hyper) ' | sort -u || true)
if [ -n "$heavy" ]; then
    echo "leadtime (engine) depends on: $heavy" >&2
    exit 1
fi
out_dir=$(cargo build -q -p leadtime-builtin --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "build-script-executed" and m["package_id"].find("policies/builtin") >= 0:
        print(m["out_dir"])
')
rm -rf policies/builtin/wasm
mkdir -p policies/builtin/wasm
cp "$out_dir"/*.wasm policies/builtin/wasm/
# cargo takes a registry crate's version as immutable, so what an earlier run extracted from its
# local registry (named by the clone's path: `-<hash>`) would be verified against instead of these
# sources. Only our crates, only such local registries.
rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/-*/leadtime-*
crates=(leadtime-wire leadtime-guest leadtime-wasm-build leadtime-builtin leadtime leadtime-schedule leadtime-backtest)
cargo package --allow-dirty --no-verify $(printf -- '-p %s ' "${crates[@]}")

# The verification `cargo package` would do (each package built from its own contents alone), done
# for all of them in one build: a workspace of the unpacked packages, each depending on the others
# as packaged (through [patch.crates-io], as crates.io will serve them), built with this
# workspace's dev profile (.cargo/config.toml) into its target dir, so that wasmtime is compiled
# once (or not at all after `make test`) instead of once per crate (7 minutes of `make test`).
verify=target/package/verify
rm -rf "$verify"
mkdir -p "$verify"
{
    echo '[workspace]'
    echo 'resolver = "2"'
    printf 'members = ['
    for c in "${crates[@]}"; do printf '"%s", ' "$c"; done
    echo ']'
    echo '[patch.crates-io]'
    for c in "${crates[@]}"; do echo "$c = { path = \"$c\" }"; done
} >"$verify/Cargo.toml"
for c in "${crates[@]}"; do
    mkdir -p "$verify/$c"
    tar -xzf target/package/"$c"-[0-9]*.crate -C "$verify/$c" --strip-components=1
done
cp Cargo.lock "$verify/"
# Cargo.lock as the workspace has it, so that the packages build with the versions tested (cargo
# only swaps the workspace's own crates for the unpacked ones).
(cd "$verify" && CARGO_TARGET_DIR="$PWD/../.." cargo build --workspace 2>&1 | { grep -v '^ *Compiling' || true; })
echo "verified: ${crates[*]} build from their packages"
