"""One API worker: ``python -m lmsd.app --data-dir D --port P`` (the runtime starts N)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from lmsd import credentials
from lmsd.app import create_app
from lmsd.errors import LmsdError
from lmsd.settings import load_settings


def main() -> int:
    parser = argparse.ArgumentParser(prog="lmsd-api")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        settings = load_settings(args.data_dir)
        app = create_app(settings, credentials.load(settings.data_dir))
    except LmsdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    uvicorn.run(
        app,
        host="127.0.0.1",  # loopback by nature: a worker is reached only through the gateway on this host
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
