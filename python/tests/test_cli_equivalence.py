"""The module and the `baton` command line give the same results on the same data."""
import json
import re
import subprocess

import pytest

import baton
from conftest import DATA

BENCH_ARGS = dict(routers=["knn"], cv_folds=1, lambdas=8, breakpoint_lambdas=0, cross_validate=False)


def run(binary, *args):
    return subprocess.run([binary, *map(str, args)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def dbs(tmp_path_factory, baton_binary):
    d = tmp_path_factory.mktemp("cli")
    run(baton_binary, "import", "--db", d / "train.db", DATA / "routerbench-train")
    run(baton_binary, "import", "--db", d / "test.db", DATA / "routerbench-test")
    return d


def test_fit_writes_the_same_model_file(dbs, baton_binary, train):
    run(baton_binary, "fit", "--db", dbs / "train.db", "--out", dbs / "cli.baton", "--predictor", "knn", "--no-cv",
        "--no-holdout")
    baton.fit(train, "knn", cross_validate=False).save(str(dbs / "py.baton"))
    assert (dbs / "py.baton").read_bytes() == (dbs / "cli.baton").read_bytes()


def test_route_makes_the_same_choices(dbs, baton_binary, model, test_set):
    model.save(str(dbs / "route.baton"))
    budget = 0.2
    out = run(baton_binary, "route", "--db", dbs / "test.db", "--model", dbs / "route.baton", "--budget", budget)
    cli = {}
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] in model.experts and len(fields) > 1 and fields[1].isdigit():
            cli[fields[0]] = int(fields[1])
    routes = model.route(test_set, budget)
    py = routes["expert"].value_counts().to_dict()
    assert {e: n for e, n in cli.items() if n} == py
    lam = float(re.search(r"lambda ([0-9.e+-]+)", out).group(1))
    assert routes.attrs["lambda"] == pytest.approx(lam, rel=1e-5)


def test_bench_gives_the_same_figures(baton_binary, tmp_path, train, test_set):
    js = tmp_path / "bench.json"
    subprocess.run([baton_binary, "bench", "--train", str(DATA / "routerbench-train"), "--test",
                    str(DATA / "routerbench-test"), "--routers", "knn", "--cv-folds", "1", "--lambdas", "8",
                    "--breakpoint-lambdas", "0", "--no-inner-cv", "--no-responses", "--json", str(js)],
                   check=True, capture_output=True)  # baton.bench reads no recorded answers (no escalate router)
    cli = json.loads(js.read_text())
    py = baton.bench(train, test_set, **BENCH_ARGS)

    def strip(d):  # wall-clock times differ from run to run; the run's own record (command, date) too
        d = {k: v for k, v in d.items() if k != "provenance"}
        d = dict(d, seconds=None, routers=[dict(r, train_seconds=None) for r in d["routers"]])
        d["cascade"] = dict(d["cascade"], train_seconds=None)
        return d

    assert strip(py) == strip(cli)


def test_bench_split_and_errors(train):
    report = baton.bench(train, test_fraction=0.3, seed=1, **BENCH_ARGS)
    assert report["test_queries"] == int(train.num_queries * 0.3 + 0.5)
    assert {"best_single", "oracle", "random", "routers", "cascade", "aiq_max_cost"} <= set(report)
    assert [r["name"] for r in report["routers"]] == ["knn"]
    with pytest.raises(ValueError, match="no-such-router"):
        baton.bench(train, test_fraction=0.3, routers=["no-such-router"])
