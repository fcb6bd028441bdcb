"""Generate the Python code of the protobuf contracts (proto/) into lmsd/contracts/.

Run by scripts/bootstrap and by the wheel build hook; the output is not committed. Uses the
protoc bundled in grpcio-tools and mypy-protobuf for typed stubs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "proto"
OUT = ROOT / "lmsd" / "contracts"


def main() -> int:
    from grpc_tools import protoc  # build/test dependency, not a runtime one

    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    generated = OUT / "v1"
    shutil.rmtree(generated, ignore_errors=True)
    generated.mkdir(parents=True)
    include = Path(protoc.__file__).parent / "_proto"
    plugin = shutil.which("protoc-gen-mypy", path=str(Path(sys.executable).parent))
    args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={ROOT}"]
    if plugin:
        args += [f"--plugin=protoc-gen-mypy={plugin}", f"--mypy_out=quiet:{ROOT}"]
    code = protoc.main([*args, *files])
    if code != 0:
        print("error: protoc failed on proto/", file=sys.stderr)
        return 1
    (generated / "__init__.py").write_text('"""Generated from proto/lmsd/contracts/v1 (do not edit)."""\n')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
