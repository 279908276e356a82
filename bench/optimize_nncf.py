"""NNCF's accuracy-aware post-training quantization, the peer a user reaches for, as they run it.

`nncf.quantize_with_accuracy_control` on the OpenVINO backend: the parent's model.onnx is
converted with `openvino.convert_model`, calibrated on training rows (one row per item, as many
items as ONNX Runtime's static int8 calibrates on), and validated on the validation rows with
`max_drop=0.01`, `drop_type=ABSOLUTE` on accuracy: the budget `scaledl optimize` gets. NNCF
quantizes the whole graph, then returns the layers that cost the most accuracy to fp32 until the
drop on the validation rows is within the budget. The result is saved as OpenVINO IR
(`openvino.save_model` defaults: fp32 constants left unquantized are stored as fp16).

NNCF and OpenVINO live in their own venv (`.cache/bench-optimize/nncf-venv`, no torch: the
OpenVINO path needs none), created here on first use; the quantization runs in a subprocess in
that venv and the arrays travel through an .npz file. Every step that fails is recorded with
its exact error (the last lines of its output) instead of a number.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from common import last_lines, run_logged

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".cache" / "bench-optimize" / "nncf-venv"
NNCF = "nncf==3.4.0"
# The IR is produced by the same OpenVINO release that times it in the bench process, when there.
OPENVINO_FALLBACK = "2026.4.1"
MAX_DROP = 0.01

# Runs inside the NNCF venv. argv: model.onnx, data.npz, out.xml, max_drop, threads.
RUNNER = r"""
import json, sys, time
import numpy as np
import nncf
import openvino as ov

onnx_path, data_path, out_xml = sys.argv[1], sys.argv[2], sys.argv[3]
max_drop, threads = float(sys.argv[4]), int(sys.argv[5])
data = np.load(data_path)
calibration_x = data["calibration_x"]
val = list(zip(data["val_x"][:, None], data["val_y"]))

def validate(compiled, items):
    # NNCF's metric mode: (accuracy, one value per item), higher is better
    out = compiled.output(0)
    hits = [float(compiled(x)[out].argmax(1)[0] == y) for x, y in items]
    return (float(np.mean(hits)) if hits else 0.0), hits

def compile_fp32(model):
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    return ov.Core().compile_model(model, "CPU", config)

start = time.perf_counter()
model = ov.convert_model(onnx_path)
quantized = nncf.quantize_with_accuracy_control(
    model,
    calibration_dataset=nncf.Dataset(list(calibration_x[:, None])),
    validation_dataset=nncf.Dataset(val, lambda item: item[0]),
    validation_fn=validate,
    max_drop=max_drop,
    drop_type=nncf.DropType.ABSOLUTE,
    subset_size=len(calibration_x),
)
ov.save_model(quantized, out_xml)
seconds = time.perf_counter() - start

saved = ov.Core().read_model(out_xml)
test_compiled = compile_fp32(saved)
logits = np.concatenate([
    test_compiled(data["test_x"][i : i + 512])[test_compiled.output(0)]
    for i in range(0, len(data["test_x"]), 512)
])
kinds = [op.get_type_name() for op in saved.get_ops()]
print("RESULT " + json.dumps({
    "seconds": seconds,
    "val_accuracy_fp32": validate(compile_fp32(model), val)[0],
    "val_accuracy_int8": validate(test_compiled, val)[0],
    "test_accuracy": float((logits.argmax(1) == data["test_y"]).mean()),
    "fake_quantize_ops": kinds.count("FakeQuantize"),
    "convolutions_and_matmuls": kinds.count("Convolution") + kinds.count("MatMul"),
    "versions": {"nncf": nncf.__version__, "openvino": ov.__version__},
}))
"""


def openvino_pin() -> str:
    """`openvino==X`: the release installed beside the bench, so both sides read the same IR."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"openvino=={version('openvino')}"
    except PackageNotFoundError:
        return f"openvino=={OPENVINO_FALLBACK}"


def install(venv: Path = VENV, base_python: str | None = None) -> dict[str, Any]:
    """The venv with NNCF and OpenVINO (once; a marker file records what was installed)."""
    python = venv / "bin" / "python"
    requirements = [NNCF, openvino_pin()]
    marker = venv / ".nncf-installed"
    if marker.is_file() and marker.read_text().splitlines()[:1] == [" ".join(requirements)]:
        return {"installed": True, "venv": str(venv), "requirements": requirements, "cached": True}
    venv.parent.mkdir(parents=True, exist_ok=True)
    # the bare interpreter behind this one: a venv made from inside a venv still works, but
    # this keeps the peer's site-packages free of anything the bench's venv carries
    base = base_python or str(Path(sys.base_prefix) / "bin" / "python3")
    steps = [
        [base, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", *requirements],
        [str(python), "-c", "import nncf, openvino; print(nncf.__version__, openvino.__version__)"],
    ]
    for cmd in steps:
        code, log = run_logged(cmd, 1800, {"PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        if code != 0:
            return {
                "installed": False,
                "requirements": requirements,
                "command": " ".join(cmd[1:]),
                "exit_code": code,
                "error": last_lines(log),
            }
    marker.write_text(" ".join(requirements) + "\n" + log.strip() + "\n")
    return {"installed": True, "venv": str(venv), "requirements": requirements}


def quantize_with_accuracy_control(
    onnx_path: Path,
    calibration_x: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    work: Path,
    threads: int = 1,
    venv: Path = VENV,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """NNCF's result on the parent's graph: the IR's path and bytes, its test accuracy (a split
    the search never saw), seconds spent, or `error` with the last lines of what failed."""
    started = time.perf_counter()
    result: dict[str, Any] = {"peer": NNCF, "max_drop": MAX_DROP, "drop_type": "absolute"}
    result["install"] = install(venv)
    result["install_seconds"] = round(time.perf_counter() - started, 1)
    if not result["install"]["installed"]:
        result["error"] = f"install failed: {result['install']['error']}"
        return result
    work.mkdir(parents=True, exist_ok=True)
    data, script, xml = work / "data.npz", work / "runner.py", work / "nncf-int8.xml"
    np.savez(
        data,
        calibration_x=calibration_x.astype(np.float32),
        val_x=val[0].astype(np.float32),
        val_y=val[1],
        test_x=test[0].astype(np.float32),
        test_y=test[1],
    )
    script.write_text(RUNNER)
    for stale in (xml, xml.with_suffix(".bin")):
        stale.unlink(missing_ok=True)
    cmd = [str(venv / "bin" / "python"), str(script), str(onnx_path), str(data), str(xml)]
    cmd += [str(MAX_DROP), str(threads)]
    # NNCF_CI: no telemetry (this machine reaches no network, and a send would only wait)
    env = {"NNCF_CI": "1", "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    code, log = run_logged(cmd, timeout_s, env)
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    found = [line for line in log.splitlines() if line.startswith("RESULT ")]
    if code != 0 or not found or not xml.is_file():
        result.update(exit_code=code, error=last_lines(log, 20))
        return result
    result.update(json.loads(found[-1][len("RESULT ") :]))
    result["seconds"] = round(result["seconds"], 1)
    result["xml"] = str(xml)
    result["file_bytes"] = xml.stat().st_size + xml.with_suffix(".bin").stat().st_size
    return result


def nncf_notes(result: dict[str, Any], test_accuracy: float, threads: int) -> list[str]:
    """What the benchmark's table says of NNCF's model besides its numbers."""
    notes = [
        f"OpenVINO IR timed as OpenVINO's compiled model called directly (not ONNX Runtime) at "
        f"{threads} thread(s), LATENCY hint, 1 stream, f32 inference precision",
        f"validation accuracy fp32 {result['val_accuracy_fp32']:.4f} → int8 "
        f"{result['val_accuracy_int8']:.4f} (max_drop {result['max_drop']} absolute)",
        f"{result['fake_quantize_ops']} FakeQuantize ops for "
        f"{result['convolutions_and_matmuls']} Convolution/MatMul ops",
        f"quantization {result['seconds']} s (convert_model + NNCF), venv install "
        f"{result['install_seconds']} s",
    ]
    if abs(test_accuracy - result["test_accuracy"]) > 1e-9:
        notes.append(f"test accuracy in the NNCF venv's own run: {result['test_accuracy']:.4f}")
    return notes
