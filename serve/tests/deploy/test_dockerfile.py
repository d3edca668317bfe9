"""The image build: base images pinned by version tag and digest, the user the manifests run
as, and a build context (/.dockerignore) that has every file the build reads and no more."""

import pathlib
import re
import subprocess
import tomllib

from conftest import DEPLOY, ROOT, find, load_all

DOCKERFILE = ROOT / "serve" / "Dockerfile"


def test_base_images_are_pinned_by_tag_and_digest():
    froms = re.findall(r"^FROM\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert len(froms) == 2
    for image in froms:
        m = re.fullmatch(r"([\w./-]+):([\w.-]+)@sha256:([0-9a-f]{64})", image)
        assert m, f"{image}: not name:tag@sha256:digest"
        assert re.search(r"\d+\.\d+", m.group(2)), f"{image}: the tag is not a version"


def test_the_image_user_is_the_one_the_manifests_run_as():
    user = re.search(r"^USER\s+(\d+):(\d+)", DOCKERFILE.read_text(), re.M)
    pod = find(load_all(DEPLOY / "scaler.yaml"), "Deployment")["spec"]["template"]["spec"]
    assert (int(user.group(1)), int(user.group(2))) == (
        pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"])


def _pattern(p: str) -> re.Pattern:
    """A .dockerignore pattern (Go's filepath.Match, plus `**` for any number of directories)
    as a regular expression over a slash-separated path relative to the context."""
    p = p.strip("/")
    out, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif p.startswith("**", i):
            out, i = out + ".*", i + 2
        elif p[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif p[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(p[i]), i + 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether docker leaves `path` out of the context: the last pattern that matches the path
    or a directory above it decides; `!` patterns bring a path back."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _pattern(raw[1:] if negate else raw)
        if any(regex.fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_context_leaves_out_build_output_and_history():
    patterns = _dockerignore()
    for path in ["target/debug/leadtime", "target/pyenv/bin/python", ".git/HEAD",
                 "guest-sdk/assemblyscript/node_modules/assemblyscript/package.json",
                 "serve/tests/python/__pycache__/conftest.cpython-311.pyc",
                 "policies/builtin/wasm/predictive.wasm", ".pytest_cache/README.md",
                 "testdata/traces/nyc_taxi.csv"]:
        assert _ignored(path, patterns), path


def test_the_context_has_every_file_the_build_reads():
    patterns = _dockerignore()
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    needed = {"Cargo.toml", "Cargo.lock"}
    for f in tracked:
        # Every workspace member whole (cargo loads them all), and what cli/ embeds from the
        # SDKs (include_str! in cli/src/cmd/new.rs).
        if any(f.startswith(m + "/") for m in members) or f.startswith("guest-sdk/"):
            needed.add(f)
    assert len(needed) > 100
    left_out = sorted(f for f in needed if _ignored(f, patterns))
    assert left_out == []
    # And nothing tracked is left out but what the build does not read.
    for f in tracked:
        if _ignored(f, patterns):
            assert pathlib.PurePath(f).parts[0] in {"testdata", "fuzz", "docs", ".ci"}, f
