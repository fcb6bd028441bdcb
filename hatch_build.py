"""Build hook: compile the Rust workspace in release mode and ship its binaries in the wheel.

An installed lmsd finds them in ``lmsd/_bin`` and never needs cargo. ``LMSD_SKIP_CARGO=1``
skips the compile when ``lmsd/_bin`` is already filled (scripts/bootstrap builds once and
reuses). In a checkout the compile goes through ``scripts/cargo-cached`` (the target dir in the
user's cache, shared by clones) unless ``CARGO_TARGET_DIR`` names one.

The portal's browser dependencies are installed from ``lmsd/portal/web/package-lock.json`` with
``npm ci`` and copied into ``lmsd/portal/static/vendor`` (gitignored, shipped as a wheel
artifact), so an installed lmsd never needs node either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BINARIES = ("lmsd-gateway", "lmsd-projector", "lmsd-transcoder")
WEB_FILES = ("hls.min.js", "hls.worker.js")


def build_web(root: Path) -> None:
    """``npm ci`` when package-lock.json changed (same stamp as scripts/bootstrap), then copy."""
    web = root / "lmsd" / "portal" / "web"
    vendor = root / "lmsd" / "portal" / "static" / "vendor"
    npm = shutil.which("npm")
    if npm is None:
        if all((vendor / name).exists() for name in WEB_FILES):
            return  # built before (an sdist's wheel on a machine without node)
        raise RuntimeError("npm (Node.js 18 or newer) is needed to build lmsd's portal assets")
    stamp = web / "node_modules" / ".lmsd-lock"
    want = hashlib.sha256((web / "package-lock.json").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != want:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=web, check=True)
        stamp.write_text(want + "\n")
    subprocess.run([npm, "run", "--silent", "build"], cwd=web, check=True)


class CargoBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "cargo"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        bin_dir = root / "lmsd" / "_bin"
        # The protobuf contracts' Python code is generated, never committed.
        subprocess.run([sys.executable, str(root / "scripts" / "gen_contracts.py")], check=True)
        build_web(root)
        bin_dir.mkdir(exist_ok=True)
        have_all = all((bin_dir / name).exists() for name in BINARIES)
        if not (os.environ.get("LMSD_SKIP_CARGO") == "1" and have_all):
            cargo = [shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")]
            cached = root / "scripts" / "cargo-cached"  # a checkout: the target dir in the user's cache
            if cached.exists() and not os.environ.get("CARGO_TARGET_DIR"):
                cargo = [str(cached)]
            subprocess.run([*cargo, "build", "--release", "--locked", "--workspace", "--bins"], cwd=root, check=True)
            meta = subprocess.run(
                [*cargo, "metadata", "--format-version", "1", "--no-deps", "--locked"],
                cwd=root, check=True, capture_output=True, text=True,
            )
            target = Path(json.loads(meta.stdout)["target_directory"])
            for name in BINARIES:
                shutil.copy2(target / "release" / name, bin_dir / name)
        if self.target_name == "wheel" and version != "editable":
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            for name in BINARIES:
                build_data["force_include"][str(bin_dir / name)] = f"lmsd/_bin/{name}"
