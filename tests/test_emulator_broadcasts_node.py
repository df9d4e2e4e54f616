"""Every broadcast method of the official Node SDK (``resend`` from the npm registry, pinned)
against the emulator over HTTP (tests/node/broadcasts.cjs). Skipped, saying why, when node or
npm is missing or npm cannot install the package here; installed once into pytest's cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

NODE_RESEND = "6.38.0"  # the version whose broadcast methods the scenario covers
SCRIPT = Path(__file__).parent / "node" / "broadcasts.cjs"


@pytest.fixture(scope="session")
def node_resend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node or npm is not on PATH: the Node SDK's broadcast methods were not run")
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    name = f"node-resend-{NODE_RESEND}"
    where = Path(cache.mkdir(name)) if cache is not None else tmp_path_factory.mktemp(name)
    modules = where / "node_modules"
    if not (modules / "resend" / "package.json").exists():
        # installed beside, then moved in whole: two sessions at once never see half a tree
        tmp = Path(tempfile.mkdtemp(dir=where))
        try:
            r = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(tmp)]
                + [f"resend@{NODE_RESEND}"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if r.returncode != 0:
                tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
                pytest.skip(f"npm could not install resend@{NODE_RESEND} here: {' / '.join(tail)}")
            try:
                os.replace(tmp / "node_modules", modules)
            except OSError:  # another session moved its copy in first
                pass
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm install resend@{NODE_RESEND} took over 300 s")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return node, modules


def test_node_sdk_every_broadcast_method(node_resend, emulator_server):
    node, modules = node_resend
    env = {**os.environ, "RESEND_BASE_URL": emulator_server.url, "RESEND_API_KEY": "re_test"}
    r = subprocess.run(
        [node, str(SCRIPT), str(modules)], capture_output=True, text=True, env=env, timeout=120
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    called = {name.split(" ")[0].split(".")[1] for name in out["called"] if name.startswith("broadcasts.")}
    assert set(out["methods"]) <= called, f"not called: {set(out['methods']) - called}"
    assert {"create", "get", "list", "update", "remove", "send", "cancel"} <= called
    routes = emulator_server.stats()["by_route"]
    assert routes["POST /broadcasts/{id}/cancel"] == 2 and routes["POST /broadcasts/{id}/send"] == 2
