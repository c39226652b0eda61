"""Loading .tflite models: LiteRT (``ai-edge-litert``), falling back to the older ``tflite_runtime`` on Pi images
that still ship it. XNNPACK is the default CPU delegate of both, so ``num_threads`` sets how many cores it uses."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from edgepilot.pilot.core.errors import ModelError
from edgepilot.vision.quiet import native_stderr_silenced

log = logging.getLogger(__name__)

def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelError("no TFLite runtime: pip install ai-edge-litert (or tflite-runtime on an old Pi)") from None
    return Interpreter


def load_interpreter(path: str | Path, threads: int = 1) -> Any:
    """An allocated interpreter for ``path`` running on ``threads`` cores; :class:`ModelError` if unusable."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file {path} not found")
    interpreter_class = _interpreter_class()
    try:
        with native_stderr_silenced():
            interpreter = interpreter_class(model_path=str(path), num_threads=max(1, int(threads)))
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path.name} is not a usable .tflite model: {exc}") from exc
    log.debug("loaded %s on %d thread(s)", path.name, threads)
    return interpreter
