"""The engine as a choice: timed per machine, recorded in the package, used by serve if safe."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
import pytest

from scaledl.config.optimize import OptimizeConfig
from scaledl.config.serve import ServeSettings
from scaledl.errors import PackageError
from scaledl.export.engines import ENGINES, ONNXRUNTIME, OPENVINO, engine_session, max_difference
from scaledl.export.runtime import create_session
from scaledl.package import open_package, write_package
from scaledl.preprocess import apply_preprocessing
from scaledl.serve.model import load_version

pytest.importorskip("openvino")


def _rows(package: Path) -> np.ndarray:
    from sklearn.datasets import load_digits

    raw = load_digits().images[:64].astype(np.uint8)[:, None]
    return apply_preprocessing(raw, open_package(package).preprocessing)


def test_openvino_runs_the_same_graph_as_onnx_runtime_from_many_threads(
    digits_package: Path,
) -> None:
    graph = open_package(digits_package).onnx_path
    reference = create_session(graph, threads=1)
    session = engine_session(OPENVINO, graph.read_bytes(), reference, threads=1)
    x = _rows(digits_package)
    name = reference.get_inputs()[0].name
    expected = reference.run(None, {name: x})
    assert max_difference(session.run(None, {name: x}), expected) < 1e-4
    assert session.get_inputs()[0].name == name
    results: list[float] = []

    def worker(start: int) -> None:
        for i in range(start, 64, 8):
            got = session.run(None, {name: x[i : i + 1]})
            results.append(max_difference(got, [expected[0][i : i + 1]]))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 32 and max(results) < 1e-4
    with pytest.raises(ValueError, match="valid engines"):
        engine_session("tensorrt", graph, reference)


def _with_engine(package: Path, dest: Path, engine: str, engines: dict | None = None) -> Path:
    pkg = open_package(package)
    manifest = pkg.manifest.model_dump(mode="json", exclude_none=True)
    manifest["runtime"] = {"engine": engine, **({"engines": engines} if engines else {})}
    files = {rel: pkg.path / rel for rel in pkg.manifest.files}
    return write_package(dest, manifest, files)


def test_serve_uses_the_recorded_engine_and_falls_back_to_onnx_runtime(
    digits_package: Path, tmp_path: Path
) -> None:
    settings = ServeSettings(source=digits_package, no_auth=True)
    plain = load_version("digits", "1", digits_package, settings)
    assert plain.engine == ONNXRUNTIME  # an old package (no engine recorded): ONNX Runtime
    preferring = _with_engine(digits_package, tmp_path / "ov", OPENVINO)
    served = load_version("digits", "2", preferring, settings)
    assert served.engine == OPENVINO
    x = _rows(digits_package)
    name = served.signature.inputs[0].name
    got, want = served.session.run(None, {name: x}), plain.session.run(None, {name: x})
    assert np.array_equal(got[0].argmax(1), want[0].argmax(1))
    unknown = _with_engine(digits_package, tmp_path / "other", "tensorrt")
    assert load_version("digits", "3", unknown, settings).engine == ONNXRUNTIME


@pytest.mark.slow
def test_optimize_times_the_engines_and_the_package_records_the_winner(
    digits_package: Path, tmp_path: Path
) -> None:
    from scaledl.optimize.context import build_context
    from scaledl.optimize.engine_choice import choose_engine
    from scaledl.optimize.finalize import finalize
    from scaledl.optimize.packaging import write_candidate_package
    from scaledl.optimize.registry import methods
    from scaledl.optimize.search import Search, constraints_for

    config = OptimizeConfig(methods=["int8-static"], final_rounds=3, measure_seconds=0.2)
    search = Search(build_context(digits_package, config))
    parent = search.baseline()
    cons = constraints_for(parent, search.ctx)
    int8 = methods()["int8-static"].space(calibrations=["minmax"]).configs(search.ctx)[:1]
    (child,) = search.graph_variants(parent, int8)
    result = finalize(search, parent, cons)
    record = choose_engine(child, parent, search.ctx, cons, result.tie_tolerance)
    assert record["engine"] in ENGINES and set(record["p25_ms"]) == {ONNXRUNTIME, OPENVINO}
    # The same int8 graph is not bit-equal across engines: their integer kernels depend on the
    # instruction set (without VNNI, ONNX Runtime's u8s8 path can saturate), so logits may
    # differ by more than a unit. What must hold is that OpenVINO ran it: finite outputs and
    # predictions as accurate as ONNX Runtime's, within a few of the 179 rows.
    openvino = record[OPENVINO]
    assert math.isfinite(openvino["max_abs_diff"]) and openvino["drop"]["rows"] > 0
    assert abs(openvino["drop"]["point"]) <= 0.03
    child.engine = record
    written = open_package(write_candidate_package(result, child, tmp_path / "pkg"))
    runtime = written.manifest.runtime
    assert runtime is not None and runtime.engine == record["engine"]
    assert runtime.engines is not None and runtime.engines["p25_ms"] == record["p25_ms"]
    served = load_version("digits", "1", written.path, ServeSettings(source=written.path))
    assert served.engine == record["engine"]


@pytest.mark.parametrize("engine", ["../../bin/sh", "OpenVINO; rm", "x" * 33, ""])
def test_a_malformed_engine_name_refuses_the_package_naming_the_field(
    digits_package: Path, tmp_path: Path, engine: str
) -> None:
    pkg = open_package(digits_package)
    manifest = pkg.manifest.model_dump(mode="json", exclude_none=True)
    manifest["runtime"] = {"engine": engine}
    raw = tmp_path / "pkg"
    raw.mkdir()
    for rel in pkg.manifest.files:
        (raw / rel).write_bytes((pkg.path / rel).read_bytes())
    (raw / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match=r"runtime\.engine"):
        open_package(raw, verify=False)


def test_an_engine_that_keeps_every_answer_keeps_the_graphs_bound(digits_package: Path) -> None:
    """The same graph under another engine: every validation answer unchanged keeps the
    (cross-fitted) graph's bound; one changed answer is judged afresh against the parent, where
    179 rows cannot promise less than 1.28 pt."""
    import numpy as np

    from scaledl.optimize.candidate import Candidate
    from scaledl.optimize.context import build_context
    from scaledl.optimize.engine_choice import _engine_drop
    from scaledl.optimize.paired import DropEstimate, row_scores

    ctx = build_context(digits_package, OptimizeConfig())
    y = ctx.splits.val.y
    outputs = np.eye(10, dtype=np.float32)[y]  # right on every row
    parent = Candidate(id="c00", transforms=[], onnx=b"")
    parent.val_rows = row_scores(outputs, y, ctx.task)
    chosen = Candidate(id="c01", transforms=["prune:0.4"], onnx=b"")
    chosen.drop = DropEstimate(0.004, 0.001, 0.009, 0.9, 1438)  # cross-fitted
    assert _engine_drop(outputs.copy(), outputs, chosen, parent, ctx) is chosen.drop
    changed = outputs.copy()
    changed[0] = np.roll(changed[0], 1)  # one answer differs from ONNX Runtime's
    fresh = _engine_drop(changed, outputs, chosen, parent, ctx)
    assert fresh.rows == len(y) and fresh.upper > 0.01
