"""The HTTP ceiling: a bare FastAPI endpoint served exactly as `tenvoice serve` serves the API.

`tenvoice serve` runs `uvicorn.run(factory=True, workers=N, log_level="info",
access_log=False)` with uvicorn's defaults for the rest (loop and http "auto": uvloop and
httptools); so does this, so the gap between its requests/s and a workload's is what the
application costs, not the server.

    python -m bench.ceiling --port 8001 --workers 2
"""

import argparse

import uvicorn
from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # Keep in step with tenvoice.cli._serve.
    uvicorn.run(
        "bench.ceiling:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
    )


if __name__ == "__main__":
    main()
