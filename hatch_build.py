"""Build hook: compile the Rust workspace in release mode and ship its binaries in the wheel.

An installed lmsd finds them in ``lmsd/_bin`` and never needs cargo. ``LMSD_SKIP_CARGO=1``
skips the compile when ``lmsd/_bin`` is already filled (CI builds once and reuses).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BINARIES = ("lmsd-gateway",)


class CargoBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "cargo"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        bin_dir = root / "lmsd" / "_bin"
        # The protobuf contracts' Python code is generated, never committed.
        subprocess.run([sys.executable, str(root / "scripts" / "gen_contracts.py")], check=True)
        bin_dir.mkdir(exist_ok=True)
        have_all = all((bin_dir / name).exists() for name in BINARIES)
        if not (os.environ.get("LMSD_SKIP_CARGO") == "1" and have_all):
            target = Path(os.environ.get("CARGO_TARGET_DIR", root / "target"))
            cargo = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
            subprocess.run(
                [cargo, "build", "--release", "--locked", "--workspace", "--bins"],
                cwd=root,
                check=True,
                env={**os.environ, "CARGO_TARGET_DIR": str(target)},
            )
            for name in BINARIES:
                shutil.copy2(target / "release" / name, bin_dir / name)
        if self.target_name == "wheel" and version != "editable":
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
            for name in BINARIES:
                build_data["force_include"][str(bin_dir / name)] = f"lmsd/_bin/{name}"
