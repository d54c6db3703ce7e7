import csv
import json
from pathlib import Path

import numpy as np
import pytest
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from edgenas import Supernet, get_space, list_spaces
from edgenas.cli import main
from edgenas.cost import cost_model, stats
from edgenas.errors import EdgeNASError
from edgenas.latency import LatencyTable, LocalBackend
from edgenas.latency.profile import profile
from edgenas.search import (
    AccuracyPredictor,
    ArchCrossover,
    ArchMutation,
    ArchProblem,
    ArchSampling,
    SearchError,
    SearchRun,
    load_search_config,
    make_objective,
    pick,
    sample_archs,
)
from edgenas.search.predictor import arch_features

SP = get_space("tiny")
FAST = {"warmup": 1, "rounds": 1, "runs": 3}


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "tiny.json"
    profile("tiny", [16, 24], LocalBackend(), out, protocol=FAST, calibrate=2, progress=False)
    return out


@pytest.fixture(scope="module")
def predictor_path(tmp_path_factory):
    """A predictor fitted on a synthetic accuracy (bigger nets better, plus noise): fast and known."""
    X = sample_archs(SP, 120, seed=0)
    macs = np.log(stats_batch(X))
    y = 0.5 + 0.4 * (macs - macs.min()) / np.ptp(macs) + np.random.default_rng(0).normal(0, 0.01, len(X))
    out = tmp_path_factory.mktemp("p") / "pred.json"
    AccuracyPredictor.fit_with_holdout(SP, X, y, 0.2, seed=0).save(out)
    return out


def stats_batch(X):
    from edgenas.cost import cost_model

    return cost_model(SP).batch(X)[1].astype(float)


def config(table_path, predictor_path, **kw):
    base = dict(space="tiny", objectives=["top1", "latency", "macs"], table=str(table_path), predictor=str(predictor_path),
                pop_size=12, generations=4, seed=3)
    base.update(kw)
    return load_search_config(None, base)


@pytest.mark.parametrize("stratified", [True, False])
@pytest.mark.parametrize("name", ["tiny", "tiny-mixed", "cifar-mbv3-width"])
def test_operators_always_yield_valid_canonical_archs(name, stratified):
    sp = get_space(name)
    allowed = [sp.resolutions[0], sp.resolutions[-1]]
    problem = ArchProblem(sp, [make_objective("macs", sp)], [], allowed_resolutions=allowed)
    rng = np.random.default_rng(0)
    X = ArchSampling(stratified)._do(problem, 64, random_state=rng)
    kids = ArchCrossover()._do(problem, np.stack([X[:32], X[32:]]), random_state=rng).reshape(-1, sp.n_genes)
    mutants = ArchMutation(rate=0.3)._do(problem, X, random_state=rng)
    for V in (X, kids, mutants):
        assert np.array_equal(sp.canonical_vectors(V), V)
        for v in V:
            arch = sp.validate(sp.decode(v))
            assert arch.r in allowed


def test_predictor_reports_rank_quality_and_round_trips(predictor_path, tmp_path):
    pred = AccuracyPredictor.load(predictor_path, "tiny")
    rep = pred.report
    assert rep["model"] in rep["cv_kendall_tau"] and rep["holdout"]["kendall_tau"] > 0.7
    X = sample_archs(SP, 20, seed=9)
    again = AccuracyPredictor.load(predictor_path)
    assert np.array_equal(pred.top1_vectors(X), again.top1_vectors(X))
    with pytest.raises(SearchError, match="fitted for space 'tiny', not for space 'cifar-mbv3'"):
        AccuracyPredictor.load(predictor_path, "cifar-mbv3")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SearchError, match="corrupt"):
        AccuracyPredictor.load(tmp_path / "bad.json")


@pytest.mark.parametrize("model", ["ridge", "gbm", "rf", "mlp"])
def test_every_candidate_ranks_labels_that_spread_a_point(model):
    """A supernet's subnets differ by about a point of top-1: every candidate must rank such labels (an MLP
    fitted on raw top-1 predicted nearly a constant: its weight penalty outweighed errors of ~1e-5)."""
    from scipy.stats import kendalltau

    X = sample_archs(SP, 160, seed=3)
    F = arch_features(SP, X)
    y = 0.88 + 0.003 * F @ np.random.default_rng(4).normal(size=F.shape[1])
    pred = AccuracyPredictor(SP, model).fit(X[:120], y[:120])
    assert kendalltau(pred.top1_vectors(X[120:]), y[120:]).statistic > 0.6


def test_label_reliability_tracks_how_well_labels_rank_the_truth():
    """The ceiling estimated from the images' two halves matches the Kendall tau between measured and true
    accuracy: low with few images and close subnets, near 1 with many images."""
    from scipy.stats import kendalltau

    from edgenas.search.predictor import label_reliability

    rng = np.random.default_rng(0)
    for images, spread in ((500, 0.05), (5000, 0.05), (100_000, 0.05)):
        est, actual = [], []
        for _ in range(10):
            truth = 0.85 + spread * (rng.random(60) - 0.5)
            hits = rng.random((60, images)) < truth[:, None]
            rep = label_reliability(hits)
            assert rep["images"] == images and -1 <= rep["split_half_kendall_tau"] <= 1
            est.append(rep["tau_ceiling"])
            actual.append(kendalltau(hits.mean(1), truth).statistic)
        assert abs(np.mean(est) - np.mean(actual)) < 0.1, (images, est, actual)
        if images == 500:
            assert np.mean(est) < 0.6
        if images == 100_000:
            assert np.mean(est) > 0.9
    same = label_reliability(np.ones((10, 100), dtype=bool))
    assert same["tau_ceiling"] is None and same["split_half_pearson"] is None


def read_front(run):
    return json.loads((run / "front.json").read_text())


def test_nsga2_run_outputs_and_consistency(tmp_path, table_path, predictor_path):
    run = tmp_path / "run"
    summary = SearchRun(config(table_path, predictor_path), run, progress=False).run()
    for f in ("config.yaml", "archive.csv", "front.json", "hypervolume.csv", "pareto.png", "pareto.html", "summary.json"):
        assert (run / f).is_file(), f
    front = read_front(run)
    assert front and all(set(m) == {"arch", "top1", "latency", "macs"} for m in front)
    table = LatencyTable.load(table_path, "tiny")
    pred = AccuracyPredictor.load(predictor_path, "tiny")
    for m in front:  # same numbers as `edgenas stats` / `edgenas latency` for the same arch
        arch = SP.arch(m["arch"])
        assert m["macs"] == stats(SP, arch).macs
        assert m["latency_ms" if "latency_ms" in m else "latency"] == pytest.approx(table.predict(arch), rel=1e-12)
        assert m["top1"] == pytest.approx(pred.top1_vectors(SP.encode(arch)[None])[0], rel=1e-12)
    F = np.array([[-m["top1"], m["latency"], m["macs"]] for m in front])
    assert len(NonDominatedSorting().do(F, only_non_dominated_front=True)) == len(front)  # nobody dominated
    with open(run / "archive.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["algorithm"] for r in rows} == {"nsga2", "random-baseline"}
    assert sum(r["algorithm"] == "nsga2" for r in rows) == summary["evaluations"] <= 12 * 4
    assert summary["baseline_hypervolume"] is not None and 0 < summary["hypervolume"] <= 1
    assert "<html" in (run / "pareto.html").read_text()[:500].lower()


def test_seeded_runs_reproduce(tmp_path, table_path, predictor_path):
    a = SearchRun(config(table_path, predictor_path, baseline=False), tmp_path / "a", progress=False).run()
    b = SearchRun(config(table_path, predictor_path, baseline=False), tmp_path / "b", progress=False).run()
    SearchRun(config(table_path, predictor_path, baseline=False, seed=4), tmp_path / "c", progress=False).run()
    assert read_front(tmp_path / "a") == read_front(tmp_path / "b")
    assert a["hypervolume"] == b["hypervolume"]
    assert (tmp_path / "a" / "archive.csv").read_text() != (tmp_path / "c" / "archive.csv").read_text()


def test_constraints_are_respected(tmp_path, table_path, predictor_path):
    macs = stats(SP, SP.max_arch(24)).macs
    limit = 0.4 * macs
    SearchRun(config(table_path, predictor_path, max_macs=limit, baseline=False), tmp_path / "r", progress=False).run()
    front = read_front(tmp_path / "r")
    assert front and all(m["macs"] <= limit for m in front)
    with pytest.raises(SearchError, match="unsatisfiable: the smallest subnet"):
        SearchRun(config(table_path, predictor_path, max_latency="0.00001ms"), tmp_path / "u", progress=False)
    small = stats(SP, SP.min_arch(16)).macs
    with pytest.raises(SearchError, match="no evaluated arch satisfies all of .* together"):  # each alone is satisfiable
        SearchRun(config(table_path, predictor_path, max_macs=small * 1.01, min_top1=0.89, baseline=False), tmp_path / "c",
                  progress=False).run()
    with pytest.raises(SearchError, match="min-top1 1.5 is unsatisfiable"):
        SearchRun(config(table_path, predictor_path, min_top1=1.5), tmp_path / "u2", progress=False)


def test_interrupted_search_resumes_to_the_same_result(tmp_path, table_path, predictor_path, monkeypatch):
    full = tmp_path / "full"
    SearchRun(config(table_path, predictor_path, baseline=False), full, progress=False).run()
    cut = tmp_path / "cut"
    real = SearchRun._generation_done
    calls = {"n": 0}

    def dies(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(SearchRun, "_generation_done", dies)
    with pytest.raises(KeyboardInterrupt):
        SearchRun(config(table_path, predictor_path, baseline=False), cut, progress=False).run()
    monkeypatch.setattr(SearchRun, "_generation_done", real)
    n_before = len((cut / "archive.csv").read_text().splitlines())
    assert n_before > 1
    with pytest.raises(SearchError, match="unfinished search; pass --resume"):
        SearchRun(config(table_path, predictor_path, baseline=False), cut, progress=False)

    evaluated = []
    pred = AccuracyPredictor.load(predictor_path)
    orig = pred.top1_vectors

    def counting(X):
        evaluated.extend(map(bytes, np.asarray(X)))
        return orig(X)

    pred.top1_vectors = counting
    SearchRun(config(table_path, predictor_path, baseline=False), cut, resume=True, progress=False, accuracy=pred).run()
    assert read_front(cut) == read_front(full)
    assert (cut / "archive.csv").read_text() == (full / "archive.csv").read_text()
    assert len(evaluated) == len((full / "archive.csv").read_text().splitlines()) - n_before  # nothing evaluated twice


@pytest.mark.parametrize("algorithm", ["random", "reinforce", "nsga3", "agemoea"])
def test_other_algorithms(tmp_path, table_path, predictor_path, algorithm):
    import importlib.util

    if algorithm == "agemoea" and importlib.util.find_spec("numba") is None:
        with pytest.raises(SearchError, match="agemoea needs numba"):
            SearchRun(config(table_path, predictor_path, algorithm=algorithm, baseline=False), tmp_path / "a", progress=False).run()
        return
    s = SearchRun(config(table_path, predictor_path, algorithm=algorithm, baseline=False), tmp_path / algorithm, progress=False).run()
    assert s["evaluations"] > 0 and s["front_size"] > 0


@pytest.mark.parametrize("algorithm, pop, static", [("nsga2", 4, False), ("surrogate", 10, False), ("nsga2", 4, True)])
def test_supernet_accuracy_objective(tmp_path, algorithm, pop, static):
    ckpt = tmp_path / "sn.pt"
    Supernet("tiny", seed=0).save(ckpt, data={"spec": "digits", "val_spec": None, "val_fraction": 0.1, "val_per_class": None,
                                              "split": "random", "seed": 0, "mean": [0.5] * 3, "std": [0.3] * 3})
    cfg = load_search_config(None, dict(space="tiny", objectives=["top1", "params"], checkpoint=str(ckpt), data="digits",
                                        pop_size=pop, generations=2, calib_images=64, baseline=False, algorithm=algorithm,
                                        static_shapes=static))
    run = SearchRun(cfg, tmp_path / "sn", progress=False)
    s = run.run()
    assert s["evaluations"] <= 2 * pop and all(0 <= m["top1"] <= 1 for m in read_front(tmp_path / "sn"))
    assert run.accuracy.evaluator.static_shapes is static
    if algorithm == "surrogate" or static:  # every front member was scored by the supernet (not the predictor), as extracted
        from edgenas.data import checkpoint_data
        from edgenas.evaluate import Evaluator
        from edgenas.supernet import read_checkpoint

        ev = Evaluator(checkpoint_data(read_checkpoint(ckpt).get("data")), calib_images=64)
        net = Supernet.load(ckpt)
        m = read_front(tmp_path / "sn")[0]
        assert abs(m["top1"] - ev.top1(net, SP.arch(m["arch"]))) <= (1 / ev.n if static else 0)  # static: float rounding, a near tie
    with pytest.raises(SearchError, match="pop-size >= 10"):
        load_search_config(None, dict(space="tiny", objectives=["top1", "params"], checkpoint=str(ckpt), algorithm="surrogate", pop_size=4))


def test_pick(tmp_path, table_path, predictor_path, capsys):
    run = tmp_path / "run"
    SearchRun(config(table_path, predictor_path), run, progress=False).run()
    front = read_front(run)
    lat = sorted(m["latency"] for m in front)
    budget = lat[len(lat) // 2]
    chosen = pick(run, max_latency=f"{budget}ms")
    assert chosen["latency"] <= budget
    assert chosen["top1"] == max(m["top1"] for m in front if m["latency"] <= budget)
    assert pick(run, "knee")["arch"] in [m["arch"] for m in front]
    with pytest.raises(SearchError, match="no front member has latency <="):
        pick(run, max_latency="0.000001ms")
    with pytest.raises(SearchError, match="has no front.json"):
        pick(tmp_path)
    assert main(["pick", str(run), "--max-latency", f"{budget}ms", "--out", str(tmp_path / "a.json"), "--json"]) == 0
    arch_text = (tmp_path / "a.json").read_text()
    assert json.loads(capsys.readouterr().out)["arch"] == json.loads(arch_text)
    assert len(arch_text.splitlines()) == 2 + len(json.loads(arch_text))  # a line a key, for a person to read and edit
    assert main(["stats", "--space", "tiny", "--arch", f"@{tmp_path / 'a.json'}"]) == 0


def test_cli_search_and_bad_input(tmp_path, table_path, predictor_path, capsys):
    out = tmp_path / "cli"
    code = main(["search", "--space", "tiny", "--objectives", "top1,latency", "--table", str(table_path), "--predictor",
                 str(predictor_path), "--pop-size", "8", "--generations", "2", "--out", str(out), "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["front_size"] > 0

    def bad(*argv):
        assert main(["search", "--space", "tiny", "--out", str(tmp_path / "x"), *argv]) == 2
        return capsys.readouterr().err

    assert "unknown objective 'flops'" in bad("--objectives", "top1,flops", "--predictor", str(predictor_path))
    assert "unknown algorithm 'pso'" in bad("--algorithm", "pso", "--objectives", "macs,params")
    assert "needs --table" in bad("--objectives", "macs,latency")
    assert "needs --checkpoint with --data" in bad("--objectives", "top1,macs")
    assert main(["search", "--space", "cifar-mbv3", "--objectives", "macs,latency", "--table", str(table_path), "--out", str(tmp_path / "y")]) == 2
    assert "measured for space 'tiny', not for space 'cifar-mbv3'" in capsys.readouterr().err
    assert main(["search", "--space", "cifar-mbv3", "--objectives", "top1,macs", "--predictor", str(predictor_path), "--out", str(tmp_path / "z")]) == 2
    assert "fitted for space 'tiny'" in capsys.readouterr().err
    assert "cannot read macs limit" in bad("--objectives", "macs,params", "--max-macs", "lots")


@pytest.mark.parametrize("kill_at", [2, 6])  # in the main run; in the random baseline
def test_resume_reproduces_every_artifact(tmp_path, table_path, predictor_path, monkeypatch, kill_at):
    cfg = lambda: config(table_path, predictor_path, generations=4)  # noqa: E731
    SearchRun(cfg(), tmp_path / "full", progress=False).run()
    from edgenas.search.archive import Archive

    real, calls = Archive.flush, {"n": 0}

    def dies(self):
        calls["n"] += 1
        if calls["n"] == kill_at:
            with open(self.path, "a") as f:
                f.write("nsga2,999,0.5")  # a row cut short by the kill
            raise KeyboardInterrupt
        real(self)

    monkeypatch.setattr(Archive, "flush", dies)
    with pytest.raises(KeyboardInterrupt):
        SearchRun(cfg(), tmp_path / "cut", progress=False).run()
    monkeypatch.undo()
    SearchRun(cfg(), tmp_path / "cut", resume=True, progress=False).run()
    for name in ("archive.csv", "hypervolume.csv", "front.json"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "full" / name).read_text(), name


def test_one_writer_per_run_directory(tmp_path, table_path, predictor_path):
    from edgenas.io import exclusive

    (tmp_path / "run").mkdir()
    with exclusive(tmp_path / "run", "search run"):
        with pytest.raises(EdgeNASError, match="another edgenas process is writing search run"):
            SearchRun(config(table_path, predictor_path), tmp_path / "run", progress=False).run()
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_random_budget_is_capped_at_the_space_size():
    n = SP.n_archs([16])
    assert n == 8000
    X = sample_archs(SP, n, seed=0, resolutions=[16])
    assert len({x.tobytes() for x in X}) == n
    with pytest.raises(SearchError, match="holds only 8,000 distinct archs"):
        sample_archs(SP, n + 1, seed=0, resolutions=[16])


@pytest.mark.parametrize("stratified", [False, True])
def test_a_draw_is_the_start_of_any_larger_draw(stratified):
    """What lets `edgenas predictor --samples N` reuse the labels of an earlier, smaller sample."""
    sp = get_space("cifar-mbv3")
    big = sample_archs(sp, 9000, seed=4, stratified=stratified)  # more than two rounds of draws
    for n in (10, 4096, 5000):
        assert np.array_equal(sample_archs(sp, n, seed=4, stratified=stratified), big[:n])
    assert np.array_equal(sample_archs(SP, 7000, seed=1, resolutions=[16])[:300], sample_archs(SP, 300, seed=1, resolutions=[16]))


def test_stratified_sampling_spreads_sizes_from_the_smallest_arch_to_the_largest():
    sp = get_space("cifar-mbv3")
    costs = cost_model(sp)
    smallest, largest = costs.stats(sp.min_arch()).macs, costs.stats(sp.max_arch()).macs
    uniform = costs.batch(sample_archs(sp, 400, seed=0))[1]
    X = sample_archs(sp, 400, seed=0, stratified=True)
    spread = costs.batch(X)[1]
    assert uniform.min() > 1.1 * smallest and uniform.max() < 0.9 * largest  # uniform genes: mid-sized archs only
    assert spread.min() < 1.1 * smallest and spread.max() > 0.9 * largest
    assert len({x.tobytes() for x in X}) == 400 and np.array_equal(X, sample_archs(sp, 400, seed=0, stratified=True))


def test_first_generation_spans_the_front_from_the_smallest_arch_to_the_largest():
    sp = get_space("ofa-mbv3")
    costs = cost_model(sp)
    problem = ArchProblem(sp, [make_objective("macs", sp)], [], allowed_resolutions=[160, 224], precisions=["fp32", "int8"])
    smallest, largest = costs.stats(sp.min_arch(160)).macs, costs.stats(sp.max_arch(224)).macs
    first = {}
    for stratified in (True, False):
        X = ArchSampling(stratified)._do(problem, 100, random_state=np.random.default_rng(3))
        macs = costs.batch(X[:, : sp.n_genes])[1]
        assert set(X[:, sp.n_genes - 1]) == {sp.resolutions.index(160), sp.resolutions.index(224)}  # the allowed ones, both
        assert set(X[:, -1]) == {0, 1}  # fp32 and int8 both drawn
        first[stratified] = macs
    assert first[True].min() < 1.15 * smallest and first[True].max() > 0.85 * largest
    assert first[False].min() > 1.5 * smallest and first[False].max() < 0.7 * largest  # uniform genes: mid-sized only
    again = ArchSampling()._do(problem, 100, random_state=np.random.default_rng(3))
    assert np.array_equal(again, ArchSampling()._do(problem, 100, random_state=np.random.default_rng(3)))


def test_sampling_setting_is_recorded_checked_and_old_runs_resume_as_they_were_drawn(tmp_path, table_path, predictor_path):
    assert config(table_path, predictor_path).sampling == "stratified"
    SearchRun(config(table_path, predictor_path, sampling="uniform", baseline=False), tmp_path / "u", progress=False).run()
    saved = tmp_path / "u" / "config.yaml"
    assert load_search_config(saved, {}, saved_run=True).sampling == "uniform"
    old = tmp_path / "old.yaml"  # a run saved before the setting existed drew uniform genes
    old.write_text("".join(line for line in saved.read_text().splitlines(keepends=True) if not line.startswith("sampling:")))
    assert load_search_config(old, {}, saved_run=True).sampling == "uniform"
    with pytest.raises(SearchError, match="unknown sampling 'sobol'; choose from stratified, uniform"):
        config(table_path, predictor_path, sampling="sobol")


def test_default_budget_follows_what_an_evaluation_costs(table_path, predictor_path):
    """A predictor or costs alone: 100 x 50 (NSGA-II is ahead of random search there, and it takes seconds); the
    supernet scoring every arch: 40 x 25.  A value given is kept, and the resolved budget is what a run records."""
    def budget(**kw):
        cfg = load_search_config(None, {"space": "tiny", "table": str(table_path), **kw})
        return cfg.pop_size, cfg.generations

    assert budget(objectives=["top1", "latency"], predictor=str(predictor_path)) == (100, 50)
    assert budget(objectives=["macs", "latency"]) == (100, 50)
    assert budget(objectives=["top1", "latency"], checkpoint="sn.pt", data="digits") == (40, 25)
    assert budget(objectives=["top1", "latency"], checkpoint="sn.pt", data="digits", algorithm="surrogate") == (40, 25)
    assert budget(objectives=["top1", "latency"], predictor=str(predictor_path), pop_size=8) == (8, 50)
    with pytest.raises(EdgeNASError, match="'generations' = 0 is out of range"):
        budget(objectives=["macs", "latency"], generations=0)


def test_a_search_without_a_space_takes_the_one_its_files_record(table_path, predictor_path, tmp_path):
    # the predictor's, else the checkpoint's, else the table's; the other files are then checked against it
    assert load_search_config(None, {"predictor": str(predictor_path), "table": str(table_path)}).space == "tiny"
    assert load_search_config(None, {"table": str(table_path), "objectives": ["latency", "macs"]}).space == "tiny"
    ckpt = Supernet("tiny-mixed").save(tmp_path / "mixed.pt")
    assert load_search_config(None, {"checkpoint": str(ckpt), "data": "digits", "objectives": ["top1", "macs"]}).space == "tiny-mixed"
    with pytest.raises(EdgeNASError, match="not for space 'tiny-mixed'"):
        SearchRun(load_search_config(None, {"checkpoint": str(ckpt), "table": str(table_path), "data": "digits"}), tmp_path / "r",
                  progress=False).run()
    with pytest.raises(EdgeNASError, match="no space given"):
        load_search_config(None, {"objectives": ["macs", "params"]})


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parent.parent / "search").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads(recipe):
    cfg = load_search_config(recipe, {})
    assert cfg.space in list_spaces() and cfg.objectives
    if cfg.table and Path(cfg.table).exists():  # shipped tables: made for the recipe's space
        LatencyTable.load(cfg.table, cfg.space)


def test_latency_random_arch_draws_among_the_table_resolutions(table_path, capsys):
    for seed in range(5):
        assert main(["latency", "--table", str(table_path), "--space", "tiny", "--arch", f"random:{seed}", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["resolution"] in (16, 24)
    assert main(["latency", "--table", str(table_path), "--space", "tiny", "--arch", '{"ks":[3,3,3,3,3,3],"e":[2,2,2,2,2,2],'
                 '"d":[1,1,1],"r":20}']) == 2
    assert "measured: 16, 24" in capsys.readouterr().err
    assert main(["latency", "--table", str(table_path), "--arch", "max", "--json"]) == 0  # no --space: the table's
    assert json.loads(capsys.readouterr().out)["latency_ms"] == pytest.approx(LatencyTable.load(table_path).predict(get_space("tiny").max_arch()))


@pytest.fixture(scope="module")
def int8_table_path(tmp_path_factory):
    out = tmp_path_factory.mktemp("t8") / "tiny-int8.json"
    profile("tiny", [16, 24], LocalBackend(), out, precision="int8", protocol=FAST, calibrate=2, progress=False)
    return out


def test_precision_is_a_search_variable(tmp_path, table_path, int8_table_path, predictor_path, capsys):
    cfg = config(table_path, predictor_path, precisions=["fp32", "int8"], int8_table=str(int8_table_path), int8_drop=1.5,
                 pop_size=16, generations=4)
    SearchRun(cfg, tmp_path / "run", progress=False).run()
    front = read_front(tmp_path / "run")
    tables = {"fp32": LatencyTable.load(table_path, "tiny"), "int8": LatencyTable.load(int8_table_path, "tiny")}
    pred = AccuracyPredictor.load(predictor_path, "tiny")
    assert {m["precision"] for m in front} <= {"fp32", "int8"} and len(front) > 1
    for m in front:  # each member's latency from its precision's table; int8 top-1 less the drop
        arch = SP.arch(m["arch"])
        assert m["latency"] == pytest.approx(tables[m["precision"]].predict(arch), rel=1e-12)
        drop = 0.015 if m["precision"] == "int8" else 0.0
        assert m["top1"] == pytest.approx(pred.top1_vectors(SP.encode(arch)[None])[0] - drop, rel=1e-9)
    archive = list(csv.DictReader(open(tmp_path / "run" / "archive.csv")))
    assert {r["precision"] for r in archive} == {"fp32", "int8"}
    assert main(["pick", str(tmp_path / "run"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["precision"] in ("fp32", "int8")
    with pytest.raises(SearchError, match="needs --int8-table"):
        config(table_path, predictor_path, precisions=["fp32", "int8"], int8_drop=1.0)
    with pytest.raises(SearchError, match="needs --int8-drop"):
        config(table_path, predictor_path, precisions=["fp32", "int8"], int8_table=str(int8_table_path))
    with pytest.raises(SearchError, match="int8 models need a int8 table"):
        SearchRun(config(table_path, predictor_path, precisions=["fp32", "int8"], int8_table=str(table_path), int8_drop=1.0),
                  tmp_path / "bad", progress=False)
    with pytest.raises(SearchError, match="searches one precision"):
        SearchRun(config(table_path, predictor_path, precisions=["fp32", "int8"], int8_table=str(int8_table_path), int8_drop=1.0,
                         algorithm="reinforce", objectives=["top1", "latency"]), tmp_path / "rl", progress=False).run()


def test_predictor_labels_stop_at_their_time_limit(monkeypatch):
    """A time limit keeps the first archs labelled by then (independent draws: a sample of their own)."""
    from types import SimpleNamespace

    from edgenas.search import predictor as mod

    class Clock:  # each reading one second after the last
        t = 0.0

        @classmethod
        def perf_counter(cls) -> float:
            cls.t += 1.0
            return cls.t

    class Labels:
        n = 3

        def correct(self, net, arch):
            return np.array([True, False, True])

    monkeypatch.setattr(mod, "time", Clock)
    acc = mod.SupernetAccuracy(SimpleNamespace(space=SP), Labels(), progress=False)
    X = sample_archs(SP, 10, seed=0)
    assert acc.correct_matrix(X).shape == (10, 3)
    Clock.t = 0.0
    assert acc.correct_matrix(X, until=4.5).shape == (4, 3)  # read at 1, 2, 3 and 4 s: labelled; at 5: stop
    assert acc.correct_matrix(X, until=0.0).shape == (0, 3)


def test_predictor_sample_count_is_checked_before_any_evaluation(tmp_path):
    from edgenas.search.predictor import fit_predictor

    with pytest.raises(SearchError, match="--samples 15 or more"):  # not after minutes of supernet evaluations
        fit_predictor(get_space("tiny"), tmp_path / "not-read.pt", 10)
