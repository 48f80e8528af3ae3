import numpy as np
import pandas as pd
import pytest

import baton


def test_predictors():
    names = baton.predictors()
    assert "knn" in names and len(names) == len(set(names))


def test_fit_unknown_predictor(train):
    with pytest.raises(ValueError, match="no-such-predictor"):
        baton.fit(train, "no-such-predictor")


def test_fit_from_frame():
    df = pd.DataFrame({"query_id": [f"q{i}" for i in range(40) for _ in (0, 1)],
                       "model": ["cheap", "dear"] * 40,
                       "score": [s for i in range(40) for s in (float(i % 2), 1.0)],
                       "cost_usd": [0.001, 0.01] * 40,
                       "text": [f"question number {i}" for i in range(40) for _ in (0, 1)]})
    m = baton.fit(df, "knn", cross_validate=False)
    assert m.experts == ["cheap", "dear"] and m.predictor == "knn"


def test_fit_empty_is_an_error():
    df = pd.DataFrame({"query_id": ["q"], "m": [np.nan]})
    with pytest.raises(RuntimeError, match="no observed outcome"):
        baton.fit(baton.from_frame(df, drop_unobserved=False), "knn")


def test_save_load_predict(model, test_set, tmp_path):
    path = str(tmp_path / "m.baton")
    model.save(path)
    again = baton.load_model(path)
    assert again.experts == model.experts and again.predictor == model.predictor
    prompts = test_set.texts[:50]
    domains = test_set.query_domains[:50]
    a = model.predict(prompts, domains)
    b = again.predict(prompts, domains)
    assert list(a.columns) == model.experts and a.shape == (50, len(model.experts))
    pd.testing.assert_frame_equal(a, b)  # bit for bit
    assert ((a.to_numpy() >= 0) & (a.to_numpy() <= 1)).all()
    scores, costs = model.predict(prompts, domains, costs=True)
    assert costs.shape == scores.shape


def test_model_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        baton.load_model(str(tmp_path / "missing.baton"))
    bad = tmp_path / "bad.baton"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError):
        baton.load_model(str(bad))


def test_route(model, test_set):
    prompts = test_set.texts[:200]
    domains = test_set.query_domains[:200]
    cheapest = model.predict(prompts, domains, costs=True)[1].min(axis=1).sum()
    budget = 3 * cheapest
    r = model.route(prompts, budget, domains)
    assert list(r.columns) == ["prompt", "expert", "predicted_score", "predicted_cost"]
    assert list(r["prompt"]) == list(range(200))
    assert set(r["expert"]) <= set(model.experts)
    assert r["predicted_cost"].sum() <= budget * (1 + 1e-6)
    assert r.attrs["predicted_cost"] == pytest.approx(r["predicted_cost"].sum(), rel=1e-4)
    # A larger budget never predicts a lower total score.
    assert model.route(prompts, 100 * budget, domains).attrs["predicted_score"] >= r.attrs["predicted_score"] - 1e-6
    only = model.route(prompts, budget, domains, experts=[model.experts[0]])
    assert set(only["expert"]) == {model.experts[0]}


def test_route_errors(model):
    with pytest.raises(ValueError, match="budget"):
        model.route(["x"], -1)
    with pytest.raises(FileNotFoundError, match="does not know expert 'nobody'"):
        model.route(["x"], 1, experts=["nobody"])
    with pytest.raises(ValueError, match="domains"):
        model.route(["x", "y"], 1, domains=["math"])
    with pytest.raises(ValueError):
        model.route("one string", 1)
    with pytest.raises(RuntimeError, match="no queries"):
        model.route([], 1)
