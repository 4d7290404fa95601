"""Serve a trained model over HTTP with LitServe: ``python -m bigmodel.serve ckpt_path=FILE port=8000``
(also ``bigmodel-serve``, ``make serve``). Binds ``127.0.0.1`` unless ``host=`` says otherwise.

- ``POST /predict``: a multipart upload in the field ``file``, or JSON ``{"image": <base64>}``,
  ``{"audio": <base64 WAV>}``, ``{"text": "..."}``. The answer is the row ``predict`` writes
  (``path, label, prob, top_k, error``). Client faults get a 4xx ``{"error": ...}`` and the server keeps serving.
- ``GET /health``, and the OpenAPI docs at ``/docs``.
- Requests are batched dynamically (``max_batch_size``, ``batch_timeout`` seconds); ``backend=torch|onnxruntime``.
- SIGTERM (or Ctrl-C) shuts the workers down and exits 143 (130).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import signal
import sys
from typing import Any

import litserve as ls
import torch
from omegaconf import DictConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from bigmodel.inference.backends import predictor
from bigmodel.inference.http import RequestGate, error_response, http_exception_handler
from bigmodel.inference.loader import LoadedModel, load_model, torch_threads
from bigmodel.inference.preprocess import InputError
from bigmodel.inference.rows import class_rows, text_rows
from bigmodel.utils.cli import entry_point
from bigmodel.utils.run import entry_ckpt_path

log = logging.getLogger(__name__)
FIELDS = ("image", "audio", "text", "file")


class _Bad:
    """A request that decoded to an error: kept in its batch slot, answered 400 alone."""

    def __init__(self, message: str) -> None:
        self.message = message


class ModelAPI(ls.LitAPI):
    """The LitServe API of one checkpoint; see the module docstring.

    Args:
        ckpt_path: the resolved checkpoint file.
        backend, model_path, threads, top_k: as in ``configs/serve.yaml``.
        generate: language models' generation settings.
    """

    def __init__(self, ckpt_path: str, backend: str, model_path: str | None, threads: int | None, top_k: int,
                 generate: dict[str, Any] | None = None, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.ckpt_path, self.backend, self.model_path = ckpt_path, backend, model_path
        self.threads, self.top_k, self.generate = threads, top_k, generate or {}

    def setup(self, device: str) -> None:
        torch_threads(self.threads)
        self.loaded: LoadedModel = load_model(self.ckpt_path)
        self.runner, self.adapt = predictor(self.loaded, self.backend, self.model_path, self.threads)
        if self.loaded.kind == "lm":
            self.runner.predict_settings = dict(self.generate)

    def decode_request(self, request):  # unannotated: LitServe then passes the parsed JSON body
        pre = self.loaded.pre
        try:
            given = [k for k in FIELDS if k in request]
            if len(given) != 1:
                raise InputError(f"send exactly one of {', '.join(FIELDS)}; got {sorted(request) or 'none'}")
            key = given[0]
            if key == "text":
                if not isinstance(request["text"], str):
                    raise InputError('"text" must be a string')
                return request.get("filename") or "text", pre.load_text(request["text"])
            if key in ("image", "audio") and key != pre.kind:
                raise InputError(f'got "{key}", but this is {self.loaded.describe()}; send "{pre.kind}"')
            try:
                data = base64.b64decode(str(request[key]), validate=True)
            except (binascii.Error, ValueError) as e:
                raise InputError(f'"{key}" is not valid base64 ({e})') from None
            if not data:
                raise InputError(f'"{key}" is empty')
            return request.get("filename") or "upload", pre.load_bytes(data)
        except InputError as e:
            return _Bad(str(e))

    def batch(self, inputs: list[Any]) -> list[Any]:
        return inputs  # collated in predict, where bad requests are set aside

    def unbatch(self, output: list[Any]) -> list[Any]:
        return output

    def predict(self, x: Any) -> Any:
        items = x if isinstance(x, list) else [x]
        good = [it for it in items if not isinstance(it, _Bad)]
        rows = iter(self._rows(good) if good else [])
        out = [it if isinstance(it, _Bad) else next(rows) for it in items]
        return out if isinstance(x, list) else out[0]

    def _rows(self, good: list[tuple[str, Any]]) -> list[dict[str, Any]]:
        names, samples = [n for n, _ in good], [s for _, s in good]
        batch = self.loaded.pre.collate(samples)
        with torch.no_grad():
            if self.adapt and isinstance(batch, torch.Tensor):
                batch = self.loaded.pre.adapter(batch)
            out = self.runner.predict_step(batch)
        if self.loaded.kind == "lm":
            return text_rows(names, out)
        return class_rows(names, out, self.loaded.class_names, self.top_k)

    def encode_response(self, output: Any) -> Any:
        if isinstance(output, _Bad):
            return error_response(400, output.message)
        return output


def build_server(cfg: DictConfig, ckpt_path: str) -> ls.LitServer:
    api = ModelAPI(
        ckpt_path, str(cfg.backend), cfg.get("model_path"), cfg.get("threads"), int(cfg.top_k),
        dict(cfg.get("generate") or {}), max_batch_size=int(cfg.max_batch_size),
        batch_timeout=float(cfg.batch_timeout), api_path="/predict",
    )  # fmt: skip
    server = ls.LitServer(
        api, accelerator="cpu" if cfg.backend == "onnxruntime" else str(cfg.accelerator), devices=1,
        workers_per_device=int(cfg.workers), timeout=float(cfg.timeout_s),
        middlewares=[(RequestGate, {"path": "/predict", "max_body_bytes": int(cfg.max_body_bytes)})],
        model_metadata={"checkpoint": ckpt_path, "backend": str(cfg.backend)},
        fast_queue=bool(cfg.fast_queue),
    )  # fmt: skip
    server.app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    return server


def serve(cfg: DictConfig) -> int:
    """Run the server until SIGTERM/SIGINT; returns the exit code (143 / 130).

    Raises:
        ConfigError: no/missing checkpoint, an unknown backend, or a missing ONNX model (checked before
            the server starts, so the message comes at once).
    """
    path = entry_ckpt_path(cfg.get("ckpt_path"), cfg.paths.log_dir, cfg.get("experiment_name"), "serve")
    loaded = load_model(path)  # fail here, not in a worker, on a bad checkpoint / backend
    predictor(loaded, str(cfg.backend), cfg.get("model_path"))
    server = build_server(cfg, path)
    main_pid, stopped_by = os.getpid(), {"signal": signal.SIGINT}

    def on_sigterm(signum: int, frame: Any) -> None:
        if os.getpid() != main_pid:  # a forked helper (uvicorn, the queue manager): die as without us
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        # LitServe's Ctrl-C path: it catches KeyboardInterrupt and shuts its workers down without waiting
        # on its queue manager (which the interrupted main thread may have been talking to).
        stopped_by["signal"] = signal.SIGTERM
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    log.info(
        "Serving %s on http://%s:%s/predict (backend=%s)", loaded.describe(), cfg.host, cfg.port, cfg.backend
    )
    try:
        server.run(
            host=str(cfg.host), port=int(cfg.port), num_api_servers=1, generate_client_file=False,
            log_level=str(cfg.log_level),
        )  # fmt: skip
    except KeyboardInterrupt:  # a second signal during LitServe's own shutdown
        pass
    code = 128 + int(stopped_by["signal"])  # 143 for SIGTERM, 130 for SIGINT
    log.info("Server stopped (%s)", signal.Signals(stopped_by["signal"]).name)
    return code


@entry_point("serve")
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    code = serve(cfg)
    # LitServe's graceful shutdown has run by now (workers joined, sockets closed), but its queue
    # plumbing can leave a non-daemon thread that keeps the interpreter alive after SIGTERM; exit
    # explicitly with the conventional code once the logs are flushed.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
