import json
import shlex
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgenas import get_space
from edgenas.cli import main
from edgenas.errors import EdgeNASError
from edgenas.latency import LatencyError, LatencyTable, LocalBackend, RemoteBackend, enumerate_blocks, get_backend, network_keys
from edgenas.latency.profile import block_model, profile
from edgenas.latency.table import EMPTY_KEY
from edgenas.quantize import INT8_GRAPH

FAST = {"warmup": 1, "rounds": 1, "runs": 3, "chunk": 8}
AGENT = Path(__file__).resolve().parent.parent / "deploy" / "agent.py"


class CountingBackend:
    """Local backend that counts what it measures and can fail after some calls."""

    def __init__(self, fail_after: int | None = None):
        self.inner, self.calls, self.measured, self.fail_after = LocalBackend(), 0, [], fail_after

    def info(self):
        return self.inner.info()

    def measure(self, models, protocol):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.measured += list(models)
        return self.inner.measure(models, protocol)


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lat") / "tiny.json"
    profile("tiny", [16, 24], LocalBackend(), out, protocol=FAST, calibrate=3, progress=False)
    return out


def test_blocks_cover_every_network():
    sp = get_space("tiny")
    keys = {b.key for b in enumerate_blocks(sp, sp.resolutions)}
    # 3 resolutions x (stem + first block + head) + slots: stage firsts and repeats x (k, e)
    assert len(keys) == len(set(keys))
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert set(network_keys(sp, sp.sample(rng))) <= keys


def test_table_is_complete_and_round_trips(tiny_table):
    table = LatencyTable.load(tiny_table, "tiny")
    assert not table.missing_keys() and table.meta["complete"]
    meta = table.meta
    for key in ("space_digest", "cpu_model", "ort_version", "provider", "threads", "optimization_level", "opset",
                "precision", "units", "date", "protocol"):
        assert key in meta, key
    assert meta["units"] == "ms" and meta["threads"] == 1 and meta["resolutions"] == [16, 24]
    for stats in table.entries.values():
        assert stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"] and stats["runs"] >= 3
    again = LatencyTable(**{k: v for k, v in json.loads(tiny_table.read_text()).items() if k in ("meta", "entries", "calibration")})
    assert again.to_dict() == table.to_dict()
    assert table.calibration["n_networks"] == 3
    assert [table.entries[f"network:{i}"]["median_ms"] > 0 for i in range(3)] == [True] * 3


def test_vectorised_prediction_equals_scalar_and_block_sum(tiny_table):
    table = LatencyTable.load(tiny_table, "tiny")
    sp = get_space("tiny")
    vecs = sp.sample_vectors(np.random.default_rng(3), 300)
    vecs[:, -1] = np.where(vecs[:, -1] == 1, 0, vecs[:, -1])  # only measured resolutions (16, 24)
    batch = table.predict_batch(vecs)
    raw = table.predict_batch(vecs, calibrated=False)
    o = table.overhead_ms
    for i in range(0, 300, 23):
        arch = sp.decode(vecs[i])
        assert table.predict(arch) == pytest.approx(batch[i], rel=1e-12)
        by_hand = o + sum(max(table.entries[k]["min_ms"] - o, 0) for k in network_keys(sp, arch))
        assert raw[i] == pytest.approx(by_hand, rel=1e-9)
    cal = table.calibration
    from edgenas.cost import cost_model

    data = json.loads(tiny_table.read_text())  # one noisy empty-graph time above every block's: no block counts below zero
    data["entries"][EMPTY_KEY]["min_ms"] = 10 * max(v["min_ms"] for v in data["entries"].values())
    slow = LatencyTable(data["meta"], data["entries"])
    assert np.all(slow.predict_batch(vecs) == data["entries"][EMPTY_KEY]["min_ms"])

    mparams = cost_model(sp).batch(vecs)[0] / 1e6
    assert np.allclose(batch, np.maximum(cal["scale"] * raw + cal["per_mparam"] * mparams + cal["offset_ms"], o))
    below = LatencyTable(table.meta, table.entries, {**cal, "offset_ms": -1e3})  # a fit extrapolated below the empty graph
    assert np.all(below.predict_batch(vecs) == o)


def test_table_holds_the_statistic_its_protocol_names(tiny_table, tmp_path):
    """New tables hold each entry's fastest run; one without a statistic (made before it existed) predicts from medians;
    an unknown statistic is refused when profiling and when loading."""
    table = LatencyTable.load(tiny_table, "tiny")
    assert table.statistic == "min" and table.overhead_ms == table.entries[EMPTY_KEY]["min_ms"]
    for stats in table.entries.values():
        assert stats["min_ms"] <= stats["median_ms"]
    data = json.loads(tiny_table.read_text())
    del data["meta"]["protocol"]["statistic"]
    (tmp_path / "old.json").write_text(json.dumps(data))
    old, sp = LatencyTable.load(tmp_path / "old.json", "tiny"), get_space("tiny")
    arch, o = sp.max_arch(24), data["entries"][EMPTY_KEY]["median_ms"]
    assert old.statistic == "median"
    assert old.predict(arch, calibrated=False) == pytest.approx(o + sum(max(data["entries"][k]["median_ms"] - o, 0) for k in network_keys(sp, arch)))
    assert old.predict(arch, calibrated=False) != pytest.approx(table.predict(arch, calibrated=False), rel=1e-9)

    data["meta"]["protocol"]["statistic"] = "mean"
    (tmp_path / "mean.json").write_text(json.dumps(data))
    with pytest.raises(LatencyError, match="unknown statistic 'mean'"):
        LatencyTable.load(tmp_path / "mean.json")
    with pytest.raises(LatencyError, match="unknown statistic 'mean'"):
        profile("tiny", [16], LocalBackend(), tmp_path / "t.json", protocol={**FAST, "statistic": "mean"}, progress=False)
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("name", ["tiny-mixed", "tiny-width"])
def test_elastic_choices_are_profiled_and_predicted(tmp_path, name):
    """Every (activation, SE) or width of every slot is a block of the table, and a prediction is the sum of the arch's own blocks."""
    sp = get_space(name)
    out = tmp_path / "elastic.json"
    profile(name, [16], LocalBackend(), out, protocol=FAST, calibrate=2, progress=False)
    table = LatencyTable.load(out, name)
    assert not table.missing_keys()
    if name == "tiny-mixed":
        assert {e.split("-se")[0].rsplit("-", 1)[1] for e in table.entries if e.startswith("mbconv:") and "-x-" in e} == {"relu", "h_swish"}
    else:
        assert sum(k.startswith("head:") for k in table.entries) == 2  # one head per last-stage width
    vecs = sp.sample_vectors(np.random.default_rng(1), 40)
    vecs[:, -1] = 0
    if name == "tiny-width":  # the checked archs mix widths, not only the full one
        assert len({tuple(v) for v in sp.stage_width_indices(vecs)}) > 4
    raw, o = table.predict_batch(vecs, calibrated=False), table.overhead_ms
    for i in range(0, 40, 7):
        by_hand = o + sum(max(table.entries[k]["min_ms"] - o, 0) for k in network_keys(sp, sp.decode(vecs[i])))
        assert raw[i] == pytest.approx(by_hand, rel=1e-9)


def test_missing_resolution_and_space_mismatch(tiny_table, tmp_path):
    table = LatencyTable.load(tiny_table, "tiny")
    sp = get_space("tiny")
    with pytest.raises(LatencyError, match=r"resolution 20 is not in this latency table \(measured: 16, 24\)"):
        table.predict(sp.max_arch(20))
    with pytest.raises(LatencyError, match="measured for space 'tiny', not for space 'cifar-mbv3'"):
        LatencyTable.load(tiny_table, "cifar-mbv3")
    with pytest.raises(LatencyError, match="precision fp32, not int8"):
        LatencyTable.load(tiny_table, "tiny", precision="int8")


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda t: t[: len(t) // 2], "corrupt or truncated"),
        (lambda t: json.dumps({"hello": 1}), "not an edgenas latency table"),
        (lambda t: t.replace('"schema_version": 1', '"schema_version": 99'), "schema version 99"),
        (lambda t: json.dumps({**json.loads(t), "entries": {"x": {"median": 1}}}), "malformed entries"),
    ],
)
def test_corrupt_tables_are_refused(tiny_table, tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content(tiny_table.read_text()))
    with pytest.raises(LatencyError, match=message):
        LatencyTable.load(bad)


def test_interrupted_profile_resumes_without_losing_entries(tmp_path):
    out = tmp_path / "t.json"
    with pytest.raises(KeyboardInterrupt):
        profile("tiny", [16], CountingBackend(fail_after=2), out, protocol=FAST, calibrate=0, progress=False)
    partial = LatencyTable.read(out)
    assert not partial.meta["complete"] and len(partial.entries) == 2 * FAST["chunk"]
    with pytest.raises(LatencyError, match="incomplete .* re-run the same `edgenas profile`"):
        LatencyTable.load(out)
    backend = CountingBackend()
    table, _ = profile("tiny", [16], backend, out, protocol=FAST, calibrate=0, progress=False)
    assert table.meta["complete"] and not table.missing_keys()
    assert set(backend.measured).isdisjoint(partial.entries)  # finished entries were not re-measured
    assert {k: table.entries[k] for k in partial.entries} == partial.entries
    with pytest.raises(LatencyError, match="exists with a different threads"):
        profile("tiny", [16], LocalBackend(threads=2), out, protocol=FAST, calibrate=0, progress=False)
    assert not list(tmp_path.glob(".*.tmp"))


def test_remote_agent_through_a_local_runner(tmp_path):
    runner = f"{shlex.quote(sys.executable)} {shlex.quote(str(AGENT))}"
    backend = RemoteBackend(runner)
    info = backend.info()
    assert info["device"] == "remote" and info["provider"] == "CPUExecutionProvider"
    out = tmp_path / "remote.json"
    table, _ = profile("tiny", [16], backend, out, protocol=FAST, calibrate=2, progress=False)
    local = set(enumerate_blocks(get_space("tiny"), [16]))
    assert set(table.entries) == {b.key for b in local} | {EMPTY_KEY, "network:0", "network:1"}
    assert table.calibration["n_networks"] == 2
    assert table.meta["device"]["runner"] == runner
    # the runner reaches the device from the command line, again, to recalibrate the table there
    assert main(["latency", "recalibrate", "--table", str(out), "--runner", runner, "--json"]) == 0
    assert len(LatencyTable.load(out).meta["recalibrations"]) == 1


def test_agent_holds_openvino_to_the_measurement_threads_and_float32(monkeypatch):
    from edgenas import agent

    made = []
    monkeypatch.setattr(agent.ort, "get_available_providers", lambda: ["OpenVINOExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(agent.ort, "InferenceSession", lambda model, so, providers: made.append((so, providers)))
    agent.make_session(b"model", "openvino", threads=2)
    so, providers = made[0]
    assert providers == [("OpenVINOExecutionProvider", {"device_type": "CPU", "num_of_threads": "2", "precision": "FP32"}),
                         "CPUExecutionProvider"]  # OpenVINO sizes its own thread pool: every core unless told
    agent.make_session(b"model", "CPUExecutionProvider", threads=2)
    assert made[1][1] == ["CPUExecutionProvider"] and made[1][0].intra_op_num_threads == 2
    assert agent.handle({"op": "info", "provider": "OpenVINO"})["device"]["provider_options"]["num_of_threads"] == "1"
    with pytest.raises(ValueError, match="provider coreml is not available here; available: OpenVINOExecutionProvider"):
        agent.make_session(b"model", "coreml")
    sys.path.insert(0, str(AGENT.parent))  # deploy/infer.py, standalone, runs a model as the agent timed it
    try:
        import infer
    finally:
        sys.path.pop(0)
    assert infer.session_providers("openvino", 3) == [("OpenVINOExecutionProvider", agent.provider_options("OpenVINOExecutionProvider", 3)),
                                                      "CPUExecutionProvider"]


def test_remote_provider_is_named_as_the_device_names_it(tmp_path):
    fake = tmp_path / "device.py"  # a device with OpenVINO: answers info for the provider it resolved
    fake.write_text("import json, sys\nreq = json.load(sys.stdin)\nprint(json.dumps({'ok': True, 'device': {'cpu_model': 'x', "
                    "'ort_version': '1.24.1', 'provider': 'OpenVINOExecutionProvider' if req['provider'] == 'openvino' else '?'}}))\n")
    assert RemoteBackend(f"{shlex.quote(sys.executable)} {shlex.quote(str(fake))}", "openvino").info()["provider"] == "OpenVINOExecutionProvider"
    here = RemoteBackend(f"{shlex.quote(sys.executable)} {shlex.quote(str(AGENT))}", "openvino")  # this machine has no OpenVINO
    with pytest.raises(LatencyError, match="device agent failed: ValueError: provider openvino is not available here"):
        here.info()


def test_agent_imports_only_numpy_onnxruntime_and_stdlib():
    import ast

    tree = ast.parse(AGENT.read_text())
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert modules - set(sys.stdlib_module_names) - {"__future__"} == {"numpy", "onnxruntime"}


def test_agent_session_profiles_each_kernel_when_asked(tmp_path):
    from edgenas import agent
    from edgenas.latency.profile import network_model

    space = get_space("tiny")
    model = network_model(space, space.min_arch(16))
    sess = agent.make_session(model, profile_prefix=str(tmp_path / "run"))
    sess.run(None, agent.input_feed(sess))
    path = Path(sess.end_profiling())
    assert path.parent == tmp_path and path.name.startswith("run")
    kernels = [e for e in json.loads(path.read_text()) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    assert any("Conv" in e["args"]["op_name"] for e in kernels)
    plain = agent.make_session(model)  # off unless asked: timing runs are never profiled
    plain.run(None, agent.input_feed(plain))
    assert plain.end_profiling() == ""


@pytest.mark.parametrize(
    "runner, message",
    [
        (f"{sys.executable} -c \"print('hello')\"", "returned no agent response"),
        (f"{sys.executable} -c \"import sys; sys.exit(3)\"", r"no agent response \(exit 3\)"),
        ("/nonexistent/ssh board", "cannot start runner command"),
        (f"{sys.executable} -c \"print('{{\\\"ok\\\": false, \\\"error\\\": \\\"boom\\\"}}')\"", "device agent failed: boom"),
    ],
)
def test_bad_runners_give_clear_errors(runner, message):
    with pytest.raises(LatencyError, match=message):
        RemoteBackend(runner).info()


def test_unknown_device_lists_providers():
    with pytest.raises(LatencyError, match="unknown device or execution provider 'tpu'; available here: .*cpu"):
        get_backend("tpu")
    with pytest.raises(LatencyError, match="needs --runner"):
        get_backend("remote")


def test_int8_blocks_are_quantized_and_profiled(tmp_path):
    sp = get_space("tiny")
    block = next(b for b in enumerate_blocks(sp, [16]) if b.key.startswith("mbconv") and "-se0-" not in b.key)
    model = onnx.load_from_string(block_model(block, "int8"))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    table, _ = profile("tiny", [16], LocalBackend(), tmp_path / "int8.json", precision="int8", protocol=FAST, calibrate=0, progress=False)
    assert table.meta["precision"] == "int8" and not table.missing_keys() and table.int8_graph == INT8_GRAPH


def test_int8_table_of_an_older_int8_graph_warns_and_is_not_resumed(tmp_path, capsys):
    table, _ = profile("tiny", [16], LocalBackend(), tmp_path / "int8.json", precision="int8", protocol=FAST, calibrate=0, progress=False)
    LatencyTable.load(tmp_path / "int8.json", "tiny", "int8")
    assert "warning" not in capsys.readouterr().err
    del table.meta["int8_graph"]  # a table profiled before the graph was recorded: h-swish, SE and pooling in float
    table.save(tmp_path / "old.json")
    assert LatencyTable.load(tmp_path / "old.json", "tiny", "int8").int8_graph == 1
    err = capsys.readouterr().err
    assert "int8 graph 1" in err and "profile the table again" in err
    with pytest.raises(LatencyError, match="different int8_graph"):
        profile("tiny", [16], LocalBackend(), tmp_path / "old.json", precision="int8", protocol=FAST, calibrate=0, progress=False)


@pytest.mark.parametrize("space,gap", [("cifar-mbv3", "h-swish, squeeze-excite gates and pooling"), ("cifar-mbv3-lite", "the head's pooling")])
def test_shipped_int8_tables_of_graph_1_say_what_they_mispredict_for_their_space(space, gap, capsys):
    table = LatencyTable.load(Path(__file__).resolve().parent.parent / "latency_tables" / f"amd-epyc_{space}_cpu-t1_int8.json", space, "int8")
    err = capsys.readouterr().err
    assert table.int8_graph == 1 and f"which kept {gap} in float" in err and err.count("warning") == 1


def test_cli_profile_latency_and_validate(tmp_path, capsys):
    out = tmp_path / "cli.json"
    code = main(["profile", "--device", "cpu", "--space", "tiny", "--resolution", "16", "--warmup", "1", "--rounds", "1",
                 "--runs", "3", "--calibrate", "2", "--statistic", "median", "--out", str(out), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and {"path", "entries", "seconds"} <= set(data) and data["entries"] == len(LatencyTable.read(out).entries)
    assert LatencyTable.read(out).statistic == "median"

    arch = get_space("tiny").min_arch(16)
    assert main(["latency", "--table", str(out), "--space", "tiny", "--arch", arch.to_json(), "--json"]) == 0
    ms = json.loads(capsys.readouterr().out)["latency_ms"]
    assert ms == pytest.approx(LatencyTable.load(out).predict(arch))

    assert main(["latency", "validate", "--table", str(out), "--samples", "4", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["overall"]["n"] == 4 and 0 <= rep["overall"]["within_10pct"] <= 1
    assert rep["statistic"] == "median" and rep["median_over_statistic"]["p50"] == 1.0
    assert Path(rep["report"]).is_file() and Path(rep["plot"]).read_bytes()[:4] == b"\x89PNG"

    assert main(["latency", "--table", str(out), "--space", "cifar-mbv3", "--arch", "min"]) == 2
    assert "measured for space 'tiny'" in capsys.readouterr().err
    assert main(["latency", "--table", str(tmp_path / "none.json"), "--space", "tiny", "--arch", "min"]) == 2
    assert "latency table not found" in capsys.readouterr().err


class DriftedBackend:
    """This machine, but every network runs ``factor`` times its time in ``table``: a device whose speed moved."""

    def __init__(self, table: LatencyTable, factor: float, cpu_model: str | None = None, cpu_features: list[str] | None = None):
        self.table, self.factor, self.cpu_model, self.cpu_features = table, factor, cpu_model, cpu_features

    def info(self):
        info = LocalBackend().info()
        return {**info, "cpu_model": self.cpu_model or info["cpu_model"], "cpu_features": self.cpu_features or info["cpu_features"]}

    def measure(self, models, protocol):
        return {k: {f: v * self.factor if f.endswith("_ms") else v for f, v in self.table.entries[k].items()} for k in models}


def test_a_noisy_entry_measured_again_keeps_every_pass_runs(monkeypatch):
    """A retry adds runs: the fastest run of any pass counts, even when that pass was the noisier one."""
    from edgenas import agent
    from edgenas.latency.blocks import empty_graph

    passes = iter([[2.0, 2.4, 2.8, 3.2] * 5, [1.0, 3.0, 5.0, 7.0] * 5, [1.5, 4.0, 6.0, 9.0] * 5])

    def timed(sessions, feeds, protocol):
        return {k: [(ms, ms) for ms in next(passes)] for k in sessions}

    monkeypatch.setattr(agent, "_time_chunk", timed)
    got = agent.measure({"m": empty_graph()}, protocol={"retries": 2, "max_spread": 0.1})["m"]
    assert got["remeasured"] == 2 and got["runs"] == 60
    assert got["min_ms"] == 1.0 and got["median_ms"] == pytest.approx(3.1)


def test_calibration_keeps_the_weight_term_non_negative(tiny_table):
    """Networks whose times fall with their weights (noise on a few networks) fit a line that extrapolates below
    zero; the weight term is then dropped and the rest refitted.  An upward one is fitted as it is."""
    from edgenas.cost import cost_model

    table, sp = LatencyTable.load(tiny_table), get_space("tiny")
    X = sp.sample_vectors(np.random.default_rng(8), 12)
    X[:, -1] = np.where(X[:, -1] == 1, 0, X[:, -1])
    raw, mp = table.predict_batch(X, calibrated=False), cost_model(sp).batch(X)[0] / 1e6
    up = table.fit_calibration(X, 1.1 * raw + 0.3 * mp + 0.01)
    assert (up["scale"], up["per_mparam"], up["offset_ms"]) == pytest.approx((1.1, 0.3, 0.01), rel=1e-6, abs=1e-9)
    down = table.fit_calibration(X, 1.1 * raw - 0.3 * mp + 0.5)
    assert down["per_mparam"] == 0.0 and down["scale"] > 0
    y = 1.1 * raw - 0.3 * mp + 0.5
    ref = np.polyfit(raw, y, 1, w=1 / y)  # the line without the weight term, residuals relative to each network's time
    assert (down["scale"], down["offset_ms"]) == pytest.approx(tuple(ref), rel=1e-6)
    falling = table.fit_calibration(X, 1.0 - 0.1 * raw)  # no upward line at all: a pure ratio
    assert falling["per_mparam"] == 0.0 and falling["offset_ms"] == 0.0 and falling["scale"] > 0


def test_calibration_never_leaves_its_networks_further_off_than_the_sum(tiny_table):
    """The fit minimises each network's error relative to its time: however noisy the networks (here the largest
    1.4x slow), it cannot end further from them, in RMS relative error, than the uncalibrated sum of blocks."""
    from edgenas.cost import cost_model

    table, sp = LatencyTable.load(tiny_table), get_space("tiny")
    for seed in range(4):
        X = sp.sample_vectors(np.random.default_rng(seed), 12)
        X[:, -1] = np.where(X[:, -1] == 1, 0, X[:, -1])
        raw = table.predict_batch(X, calibrated=False)
        assert np.ptp(cost_model(sp).batch(X)[0]) > 0  # the full three-term fit is tried
        y = raw * (1 + 0.05 * np.random.default_rng(seed).standard_normal(12))
        y[np.argmax(raw)] *= 1.4
        table.fit_calibration(X, y)
        fitted_rms, raw_rms = (float(np.sqrt(np.mean((pred / y - 1) ** 2))) for pred in (table.predict_batch(X), raw))
        assert fitted_rms <= raw_rms + 1e-9, seed


def test_recalibration_refits_the_table_to_the_devices_drift(tiny_table):
    from edgenas.latency.recalibrate import recalibrate

    table = LatencyTable.load(tiny_table)
    vecs = get_space("tiny").sample_vectors(np.random.default_rng(5), 200)
    vecs[:, -1] = np.where(vecs[:, -1] == 1, 0, vecs[:, -1])
    before, blocks = table.predict_batch(vecs), {k: v for k, v in table.entries.items() if not k.startswith("network:")}
    old = {k: v for k, v in table.calibration.items() if k != "points"}

    got = recalibrate(table, DriftedBackend(LatencyTable.load(tiny_table), 1.25), progress=False)
    assert got["drift"]["p50"] == pytest.approx(1.25) and got["n_networks"] == 3
    assert got["previous_calibration"] == old and table.meta["recalibrations"] == [{k: got[k] for k in table.meta["recalibrations"][0]}]
    np.testing.assert_allclose(table.predict_batch(vecs), 1.25 * before, rtol=1e-9)  # the whole table follows, not only its networks
    assert {k: v for k, v in table.entries.items() if not k.startswith("network:")} == blocks  # blocks are not re-measured

    with pytest.raises(LatencyError, match="not a move to another device"):
        recalibrate(table, DriftedBackend(table, 1.0, cpu_model="Some Other CPU"), progress=False)
    table.meta["device"]["cpu_features"] = ["avx", "avx2", "fma", "avx512f"]  # the same name, another generation
    with pytest.raises(LatencyError, match="another CPU under the same name.*not a move to another device"):
        recalibrate(table, DriftedBackend(table, 1.0, cpu_features=["avx", "avx2", "fma"]), progress=False)


def test_a_cpu_is_told_apart_by_its_instruction_sets_not_only_its_name(tmp_path):
    from edgenas import agent
    from edgenas.latency.backends import other_cpu

    meta = {"cpu_model": "AMD EPYC", "device": {"cpu_features": ["avx", "avx2", "avx512f"]}}
    assert other_cpu(meta, {"cpu_model": "AMD EPYC", "cpu_features": ["avx512f", "avx2", "avx"]}) is None
    assert "'Intel Xeon'" in other_cpu(meta, {"cpu_model": "Intel Xeon", "cpu_features": ["avx"]})
    assert "avx avx2 avx512f; this one has avx avx2" in other_cpu(meta, {"cpu_model": "AMD EPYC", "cpu_features": ["avx", "avx2"]})
    # tables and agents from before features were recorded, or systems that do not list them: the name decides
    assert other_cpu({"cpu_model": "AMD EPYC", "device": {}}, {"cpu_model": "AMD EPYC", "cpu_features": ["avx2"]}) is None
    assert other_cpu(meta, {"cpu_model": "AMD EPYC"}) is None and other_cpu(meta, {"cpu_model": "AMD EPYC", "cpu_features": []}) is None
    x86, arm = tmp_path / "x86", tmp_path / "arm"
    x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma bmi2 avx512f avx512_vnni\n\n")
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp i8mm\n")
    assert agent.cpu_features(str(x86)) == ["avx", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert agent.cpu_features(str(arm)) == ["asimd", "asimddp", "i8mm"]
    assert agent.cpu_features(str(tmp_path / "none")) == []
    assert agent.device_info()["cpu_features"] == agent.cpu_features()  # recorded in every table profiled from now on


def test_cli_recalibrate_writes_the_table_or_out_and_says_what_is_wrong(tmp_path, tiny_table, capsys):
    src = tmp_path / "t.json"
    src.write_bytes(tiny_table.read_bytes())
    assert main(["latency", "recalibrate", "--table", str(src), "--out", str(tmp_path / "r.json"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert src.read_bytes() == tiny_table.read_bytes()  # --out leaves the table as it was
    assert rep["n_networks"] == 3 and rep["drift"]["p5"] <= rep["drift"]["p50"] <= rep["drift"]["p95"]
    assert main(["latency", "recalibrate", "--table", str(src)]) == 0  # in place, twice: each one recorded
    assert main(["latency", "recalibrate", "--table", str(src)]) == 0
    assert "calibration networks ran" in capsys.readouterr().out
    table = LatencyTable.load(src)
    assert len(table.meta["recalibrations"]) == 2 and table.meta["recalibrations"][1]["previous_calibration"]["n_networks"] == 3

    profile("tiny", [16], LocalBackend(), tmp_path / "bare.json", protocol=FAST, calibrate=0, progress=False)
    assert main(["latency", "recalibrate", "--table", str(tmp_path / "bare.json")]) == 2
    assert "no calibration networks" in capsys.readouterr().err
    remote = json.loads(src.read_text())
    remote["meta"]["device"] = {**remote["meta"]["device"], "device": "remote", "runner": "ssh board agent.py"}
    (tmp_path / "remote.json").write_text(json.dumps(remote))
    assert main(["latency", "recalibrate", "--table", str(tmp_path / "remote.json")]) == 2
    assert "give --runner" in capsys.readouterr().err


def test_one_writer_per_table_and_stale_temporaries_go(tmp_path):
    from edgenas.errors import EdgeNASError
    from edgenas.io import exclusive

    out = tmp_path / "t.json"
    with exclusive(out, "latency table"):
        with pytest.raises(EdgeNASError, match="another edgenas process is writing latency table"):
            profile("tiny", [16], LocalBackend(), out, protocol=FAST, calibrate=0, progress=False)
    (tmp_path / ".t.json.abc123.tmp").write_text("left by a kill")
    (tmp_path / ".other.json.x.tmp").write_text("another output's")
    backend = CountingBackend(fail_after=1)
    with pytest.raises(KeyboardInterrupt):
        profile("tiny", [16], backend, out, protocol=FAST, calibrate=0, progress=False)
    assert not (tmp_path / ".t.json.abc123.tmp").exists() and (tmp_path / ".other.json.x.tmp").exists()
    assert len(LatencyTable.read(out).entries) == FAST["chunk"]  # the first chunk survived the kill


SHIPPED = sorted(p for p in (Path(__file__).resolve().parent.parent / "latency_tables").glob("*.json") if ".validation" not in p.name)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_tables_still_fit_their_spaces(path):
    """A change to a space's definition, encoding or block keys must not orphan a shipped table."""
    table = LatencyTable.load(path)
    sp = table.space  # refuses a table whose space digest no longer matches
    assert not table.missing_keys()
    r = max(table.resolutions)
    lat = table.predict_batch(np.stack([sp.encode(sp.max_arch(r)), sp.encode(sp.min_arch(r))]))
    assert np.all(np.isfinite(lat)) and lat[0] > lat[1] > 0


def _same_model(a: bytes, b: bytes) -> None:
    """The same graph and weights, equal to the float rounding of BN statistics summed on another thread count."""
    from onnx import numpy_helper

    ma, mb = onnx.load_from_string(a), onnx.load_from_string(b)
    assert [n.op_type for n in ma.graph.node] == [n.op_type for n in mb.graph.node]
    wa, wb = ({i.name: numpy_helper.to_array(i) for i in m.graph.initializer} for m in (ma, mb))
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_allclose(wb[k].astype(float), wa[k].astype(float), rtol=1e-3, atol=1e-5, err_msg=k)


def test_helper_processes_build_the_models_this_process_builds(tiny_table, monkeypatch):
    """A long profile builds its models in helper processes (fresh interpreters, fed over pipes); they stop with the builder."""
    from edgenas.latency import build
    from edgenas.latency.profile import TableModels

    table = LatencyTable.load(tiny_table)
    models = TableModels.of(table, [get_space("tiny").max_arch(24)])
    keys = [EMPTY_KEY, *[k for k in table.entries if ":r16" in k][:3], "network:0", "0"]
    here = {k: models(k) for k in keys}
    with build.ModelBuilder(models, workers=2) as builder:  # short work: no helpers
        assert builder(keys[:2], left=3) == {k: here[k] for k in keys[:2]} and not builder.parallel
    monkeypatch.setattr(build, "WORTH_S", 0.0)  # any work left is worth helpers
    with build.ModelBuilder(models, workers=2) as builder:
        assert builder(keys[:1], left=len(keys)) == {keys[0]: here[keys[0]]} and builder.parallel  # timed here, then helpers started
        procs = [h.proc for h in builder._helpers]
        got = builder(keys)
        assert list(got) == keys
        for k in keys:
            _same_model(here[k], got[k])
        with pytest.raises(EdgeNASError, match="helper process failed: KeyError"):
            builder([keys[-1], "no-such-block", *keys[1:4]])
        assert not builder.parallel and builder(keys[:2]) == {k: here[k] for k in keys[:2]}  # stopped; built here after
    assert all(p.poll() == 0 for p in procs)  # closed: each read the end of its tasks and exited


def test_helpers_exit_when_their_parent_is_killed(tmp_path):
    """A profile killed at any point (SIGKILL included) leaves no helper behind: each sees its pipe close."""
    import signal
    import subprocess
    import time

    script = (
        "import os, signal\n"
        "from edgenas.latency import build\n"
        "from edgenas.latency.profile import TableModels\n"
        "from edgenas import get_space\n"
        "build.WORTH_S = 0.0\n"
        "b = build.ModelBuilder(TableModels(get_space('tiny'), (16,), 10, 'fp32', 0, ()), workers=2)\n"
        "b(['__empty__'], left=5)\n"
        "print(*[h.proc.pid for h in b._helpers], flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == -signal.SIGKILL
    pids = [int(p) for p in proc.stdout.split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has exited: its parent is gone, init reaps it
    except FileNotFoundError:
        return False
