"""Throwaway virtualenvs for the benchmarks' peers (BentoML, MLflow, Evidently, FLAML).

Each peer gets its own venv under ``~/.cache/shipyard-bench/<peer>`` (or
``$SHIPYARD_BENCH_CACHE/<peer>``), made on first use with ``python -m venv`` and ``pip
install`` of the peer plus the SAME versions of some distributions as the running (Shipyard)
environment (:data:`PEER_PINS`). The serving peers pin scikit-learn, LightGBM, pandas, numpy
and joblib, so the benchmark's pickled pipeline loads there unchanged; Evidently pins numpy,
scipy and pyarrow, so both drift tools compute with the same numerical stack (pandas cannot be
pinned: Evidently 0.7 does not import under pandas 3, hence its ``pandas<3``). A stamp file
records what was asked for; a venv whose stamp differs (new peer range, new pins) is rebuilt.
When the peer cannot be installed beside all the exact versions, the install is retried with
the peer's fallback pins (for the serving peers, only what the pickle needs: scikit-learn,
LightGBM, joblib) and the versions actually installed are reported.

Run on its own to build (or check) the venvs: ``python benchmarks/_peers.py bentoml mlflow``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

__all__ = ["PEER_PINS", "PEER_REQUIREMENTS", "PeerEnv", "cache_dir", "peer_env"]

PEER_REQUIREMENTS: dict[str, list[str]] = {
    "bentoml": ["bentoml>=1.4,<1.5"],
    "mlflow": ["mlflow>=3,<4"],
    # evidently 0.7 imports pandas.core.dtypes.common.infer_dtype_from_object, gone in pandas 3
    "evidently": ["evidently>=0.7,<0.8", "pandas<3"],
    # FLAML's AutoML with its learners (LightGBM, XGBoost, scikit-learn's forests)
    "flaml": ["flaml[automl]>=2.3,<3"],
}
# the pickle needs these at the same versions; pandas and numpy too when the peer allows it
PICKLE_PINS = ("scikit-learn", "lightgbm", "joblib")
EXTRA_PINS = ("pandas", "numpy")
# peer -> (distributions pinned to this environment's versions, the fallback pins when the
# peer does not install beside all of them); a peer not listed gets _SERVING_PINS
_SERVING_PINS = ((*PICKLE_PINS, *EXTRA_PINS), PICKLE_PINS)
PEER_PINS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "evidently": (("numpy", "scipy", "pyarrow"), ()),
    # the same LightGBM and scikit-learn as Shipyard's candidates, so a training benchmark
    # compares searches, not library versions; LightGBM alone when FLAML refuses the rest
    "flaml": (("lightgbm", "scikit-learn", "numpy", "pyarrow"), ("lightgbm",)),
}
REPORTED = (
    *("bentoml", "mlflow", "evidently", "flaml", *PICKLE_PINS, *EXTRA_PINS, "scipy", "pyarrow"),
    "xgboost",
    *("uvicorn", "starlette", "fastapi"),
)
STAMP = "shipyard-bench.json"
PIP_TIMEOUT_S = 1800


@dataclass
class PeerEnv:
    """A peer's venv, or why there is none.

    Attributes:
        name: the peer (``bentoml``, ``mlflow``).
        python: the venv's interpreter; ``None`` when the venv could not be built.
        versions: installed distribution -> version (the peer, the pinned stack).
        note: what differs from the exact pins, or why the venv is missing.
    """

    name: str
    python: Path | None
    versions: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def bin(self) -> Path:
        """The venv's ``bin`` folder (console scripts such as ``bentoml``, ``mlflow``)."""
        assert self.python is not None
        return self.python.parent


def cache_dir() -> Path:
    """Where the peers' venvs live."""
    env = os.environ.get("SHIPYARD_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "shipyard-bench"


def local_versions(names: tuple[str, ...] = (*PICKLE_PINS, *EXTRA_PINS)) -> dict[str, str]:
    """Versions of ``names`` in the running environment."""
    return {name: metadata.version(name) for name in names}


def peer_env(name: str, *, log: object = print, rebuild: bool = False) -> PeerEnv:
    """The venv of peer ``name``, built when missing or stale.

    Args:
        name: a key of :data:`PEER_REQUIREMENTS`.
        log: called with one progress line at a time.
        rebuild: build it anew even when the stamp matches.

    Returns:
        The venv; ``python`` is ``None`` (and ``note`` says why) when it cannot be built.
    """
    venv = cache_dir() / name
    python = venv / "bin" / "python"
    exact_names, fallback_names = PEER_PINS.get(name, _SERVING_PINS)
    pins = local_versions(exact_names)
    wanted = {"requirements": PEER_REQUIREMENTS[name], "pins": pins}
    stamp = venv / STAMP
    if not rebuild and python.exists() and stamp.exists():
        recorded = json.loads(stamp.read_text())
        if recorded.get("wanted") == wanted:
            return PeerEnv(name, python, recorded["versions"], recorded.get("note", ""))
    assert callable(log)
    log(f"building the {name} venv in {venv} (first use; pip may take a few minutes) ...")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    made = _run([sys.executable, "-m", "venv", str(venv)])
    if made.returncode != 0:
        return PeerEnv(name, None, note=f"python -m venv failed: {_tail(made.stderr)}")
    exact = [f"{d}=={v}" for d, v in pins.items()]
    done = _pip(python, [*PEER_REQUIREMENTS[name], *exact])
    note = ""
    if done.returncode != 0:
        relaxed = ", ".join(d for d in exact_names if d not in fallback_names)
        kept = ", ".join(fallback_names) or "nothing"
        log(f"{name} does not install beside the exact {relaxed}; pinning only {kept}")
        loose = [f"{d}=={pins[d]}" for d in fallback_names]
        done = _pip(python, [*PEER_REQUIREMENTS[name], *loose])
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            return PeerEnv(name, None, note=f"pip install failed: {_tail(done.stderr)}")
    versions = _versions(python)
    differ = [f"{d} {versions.get(d)} (here {v})" for d, v in pins.items() if versions.get(d) != v]
    if differ:
        note = "differs from the Shipyard venv: " + ", ".join(differ)
    stamp.write_text(json.dumps({"wanted": wanted, "versions": versions, "note": note}, indent=1))
    log(f"{name} venv ready: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    return PeerEnv(name, python, versions, note)


def _pip(python: Path, requirements: list[str]) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    return _run([*cmd, *requirements])


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, 1, "", f"timed out after {PIP_TIMEOUT_S} s")


def _versions(python: Path) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        out[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n        pass\n"
        "print(json.dumps(out))\n"
    )
    done = _run([str(python), "-c", code, *REPORTED])
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def _tail(text: str, n: int = 6) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:]) or "no output"


if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if not a.startswith("--")]
    for peer in names or list(PEER_REQUIREMENTS):
        env = peer_env(peer, rebuild="--rebuild" in sys.argv)
        print(f"{peer}: {env.python or 'NOT BUILT'} {env.versions} {env.note}")
