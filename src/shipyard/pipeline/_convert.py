"""The run's ONNX conversion, in a helper process started while the search runs.

Converting a boosted model is pure Python (onnxmltools walks every tree node), holding the
interpreter lock for seconds, and importing skl2onnx alone costs 1.6 s. A run with a time
budget therefore starts ``python -m shipyard.pipeline._convert`` when its search starts: the
helper imports the converters on the core the search leaves free, then waits for one job on
its standard input (the refit pipeline, its signature and the rows to check it on, pickled),
converts it while the run computes the pipeline's own predictions for those rows (sent next)
and draws its report, checks the graph against them
(:func:`~shipyard.pipeline._package.convert_and_check`) and answers with the graph and its
check on standard output.

The pickles only ever travel between this process and the helper it started, through their
pipes; they are never stored. When the helper cannot start or fails (its error is logged),
the run converts in its own process, as a run without a time budget (or with one under
``HELPER_MIN_BUDGET``) always does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from types import TracebackType
from typing import IO, Any

import pandas as pd

from shipyard.data import Signature
from shipyard.model import DecisionThreshold
from shipyard.pipeline._package import convert_and_check, sklearn_reference

__all__ = ["HELPER_MIN_BUDGET", "OnnxConverter"]

logger = logging.getLogger(__name__)

HELPER_MIN_BUDGET = 30.0
"""The shortest time budget (seconds) whose run converts in a helper: the helper's start (its
imports take about 5 s of CPU) must be over before the search ends, or the run waits for it."""

_ERROR_TAIL = 2_000  # bytes of a failed helper's error output kept in the log
_EXIT_SECONDS = 10.0  # how long a helper that answered may take to exit


class OnnxConverter:
    """Converts the run's model to ONNX, in a pre-started helper process or in this one.

    Use it as a context manager: leaving it stops a helper that was never used (a run that
    failed or was cancelled before its conversion).
    """

    def __init__(self, helper: bool) -> None:
        """Start the helper process now when ``helper`` (else convert in this process)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._used: subprocess.Popen[bytes] | None = None
        self._errors: IO[bytes] | None = None
        if helper:
            try:
                # its errors go to a file: a pipe nobody reads could fill and block it; -P:
                # the project's directory is not on its path (a local onnx.py shadows nothing)
                self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
                self._proc = subprocess.Popen(
                    [sys.executable, "-P", "-m", "shipyard.pipeline._convert"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=self._errors,
                )
            except OSError as exc:
                logger.warning("no ONNX conversion process (%s): converting in the run", exc)

    @property
    def in_helper(self) -> bool:
        """Whether the conversion will run in the helper process."""
        return self._proc is not None

    def export(
        self,
        model: Any,
        signature: Signature,
        task: str,
        rows: pd.DataFrame,
        threshold: DecisionThreshold | None = None,
    ) -> tuple[bytes | None, dict[str, Any]]:
        """The refit pipeline as an ONNX graph checked on ``rows``, or ``None`` and why (see
        :func:`~shipyard.pipeline._package.convert_and_check`), converted in the helper when
        there is one."""
        job = (model, signature, task, rows, threshold)
        proc, self._proc = self._proc, None
        if proc is not None:
            self._used = proc
            result = self._ask(proc, job)
            if result is not None:
                return result
        return convert_and_check(*job)

    def _ask(
        self, proc: subprocess.Popen[bytes], job: tuple[Any, ...]
    ) -> tuple[bytes | None, dict[str, Any]] | None:
        """The helper's answer to ``job``, or ``None`` (logged) when it failed. The answer
        is read as soon as the helper closes its output, without waiting for it to exit."""
        assert proc.stdin is not None and proc.stdout is not None
        try:
            # the job first, so that the helper converts while this thread computes the
            # pipeline's own predictions, which it checks the graph against
            proc.stdin.write(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))
            proc.stdin.flush()
            reference = sklearn_reference(*job)
            proc.stdin.write(pickle.dumps(reference, protocol=pickle.HIGHEST_PROTOCOL))
            proc.stdin.close()
            out = proc.stdout.read()
        except OSError as exc:  # it died before reading its job (a broken pipe)
            out, problem = b"", str(exc)
        else:
            problem = "no answer"
        if out:
            try:
                graph, info = pickle.loads(out)  # from the helper this process started
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
                problem = f"an answer that does not read ({exc})"
            else:
                return graph, info
        proc.kill()
        code = proc.wait()
        errors = b""
        if self._errors is not None:
            self._errors.seek(0)
            errors = self._errors.read()[-_ERROR_TAIL:]
        logger.warning(
            "the ONNX conversion process failed (%s, exit %s): converting in the run\n%s",
            problem,
            code,
            errors.decode("utf-8", "replace"),
        )
        return None

    def close(self) -> None:
        """Stop the helper if it is still waiting for its job; reap one that answered."""
        waiting, self._proc = self._proc, None
        if waiting is not None:
            waiting.kill()
        for proc in (waiting, self._used):
            if proc is None:
                continue
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):  # a broken pipe's unsent bytes
                        stream.close()
            try:
                proc.wait(timeout=_EXIT_SECONDS)
            except subprocess.TimeoutExpired:  # still tearing down: it is done with us
                proc.kill()
                proc.wait()
        self._used = None
        if self._errors is not None:
            self._errors.close()
            self._errors = None

    def __enter__(self) -> OnnxConverter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _warm_up() -> None:
    """Import what a conversion and its check need, before the job arrives."""
    import onnxruntime  # noqa: F401
    import skl2onnx  # noqa: F401

    from shipyard.train._onnx import register_converters

    register_converters()


def main() -> int:
    """The helper: warm up, read one job from standard input, answer on standard output."""
    # the answer goes to the original standard output; anything a library prints (C code
    # included) goes to standard error instead, so it cannot corrupt the answer
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _warm_up()
    stream = sys.stdin.buffer
    try:  # from the run that started us (see above)
        model, signature, task, rows, threshold = pickle.load(stream)
    except EOFError:  # the run ended without a conversion
        return 0
    sent: list[Any] = []

    def reference() -> Any:
        sent.append(pickle.load(stream))
        return sent[0]

    result = convert_and_check(model, signature, task, rows, threshold, reference=reference)
    if not sent:  # not converted: read what the run sends anyway, so that it never blocks
        reference()
    answer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    answer.close()
    return 0


if __name__ == "__main__":
    code = main()
    # the answer is sent and closed: skip the interpreter's teardown (onnxruntime,
    # scikit-learn, the boosters: about half a second), which the run waits for when it
    # reaps its helper at its end
    sys.stderr.flush()
    os._exit(code)
