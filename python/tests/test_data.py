import math

import numpy as np
import pandas as pd
import pytest

import baton


def long_frame():
    return pd.DataFrame({
        "query_id": ["q1", "q1", "q2", "q2", "q3"],
        "model": ["a", "b", "a", "b", "a"],
        "score": [1.0, 0.0, 0.5, 1.0, 0.0],
        "cost_usd": [0.01, 0.001, 0.02, np.nan, 0.01],
        "text": ["what is 2+2", "what is 2+2", "name a colour", "name a colour", "hi"],
        "domain": ["math", "math", "misc", "misc", "misc"],
    })


def test_long_frame():
    ds = baton.from_frame(long_frame())
    assert (ds.num_queries, ds.num_experts) == (3, 2)
    assert ds.experts == ["a", "b"]
    assert ds.query_ids == ["q1", "q2", "q3"]
    assert ds.texts[1] == "name a colour" and ds.query_domains[0] == "math"
    s, c = ds.score_matrix, ds.cost_matrix
    assert s[0, 0] == 1 and s[0, 1] == 0 and s[1, 0] == 0.5
    assert math.isnan(s[2, 1])  # never observed: NaN, not a failure
    assert math.isnan(c[1, 1])  # unknown cost
    assert c[0, 1] == pytest.approx(0.001)
    back = ds.to_frame()
    assert len(back) == 4 + 0 + 1 - 0  # the observed cells
    assert set(back.columns) == {"query_id", "model", "score", "cost_usd"}


def test_wide_frame_like_routerbench():
    df = pd.DataFrame({
        "sample_id": ["x", "y", "z"],
        "prompt": ["p1", "p2", "p3"],
        "eval_name": ["mmlu", "mmlu", "gsm8k"],
        "m1": [1.0, np.nan, 0.0],
        "m2": [0.0, 1.0, 1.0],
        "m1|total_cost": [0.1, np.nan, 0.1],
        "m2|total_cost": [0.2, 0.2, 0.2],
        "m2|model_response": ["a", "b", "c"],
    })
    ds = baton.from_frame(df, query_col="sample_id", text_col="prompt", domain_col="eval_name")
    assert ds.experts == ["m1", "m2"] and ds.query_ids == ["x", "y", "z"]
    assert ds.domains == ["mmlu", "gsm8k"]
    assert math.isnan(ds.score_matrix[1, 0])
    assert ds.cost_matrix[2, 1] == pytest.approx(0.2)


def test_queries_frame_and_unobserved_rows():
    df = pd.DataFrame({"query_id": ["a", "b"], "m1": [1.0, np.nan], "m2": [np.nan, np.nan]})
    queries = pd.DataFrame({"query_id": ["a", "b"], "text": ["t1", "t2"], "domain": ["d", "e"]})
    ds = baton.from_frame(df, queries)
    assert ds.query_ids == ["a"] and ds.texts == ["t1"]  # b has no observed outcome: dropped
    assert baton.from_frame(df, queries, drop_unobserved=False).num_queries == 2


def test_same_as_import(train):
    # The long frame of a loaded dataset gives back the same matrices.
    again = baton.from_frame(train.to_frame(), train.queries)
    assert again.experts == train.experts and again.query_ids == train.query_ids
    np.testing.assert_array_equal(again.score_matrix, train.score_matrix)
    np.testing.assert_allclose(again.cost_matrix, train.cost_matrix, rtol=1e-6)


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"query_id": ["q"], "model": ["a"]}), "missing: score"),
    (pd.DataFrame({"query_id": ["q"], "model": ["a"], "score": [1.5]}), "outside [0, 1]"),
    (pd.DataFrame({"query_id": ["q"], "model": ["a"], "score": [1.0], "cost_usd": [-1.0]}), "non-negative"),
    (pd.DataFrame({"query_id": ["q", "q"], "model": ["a", "a"], "score": [1.0, 0.0]}), "second outcome"),
    (pd.DataFrame({"query_id": ["q"], "text": ["t"]}), "one score column per model"),
    (pd.DataFrame({"query_id": ["q"], "m": ["yes"]}), "must be numeric"),
    (pd.DataFrame({"query_id": ["q", "q"], "m": [1.0, 0.0]}), "appears twice"),
])
def test_bad_frames(frame, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        baton.from_frame(frame)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        baton.load_dir(str(tmp_path / "nothing"))
    with pytest.raises(Exception):
        baton.load_db(str(tmp_path / "nothing.db"), ["x"])


def test_load_db(tmp_path, baton_binary):
    import subprocess
    from conftest import DATA
    db = tmp_path / "b.db"
    subprocess.run([baton_binary, "import", "--db", str(db), str(DATA / "routerbench-test")], check=True,
                   capture_output=True)
    ds = baton.load_db(str(db), ["routerbench-test"])
    direct = baton.load_dir(str(DATA / "routerbench-test"))
    assert ds.query_ids == direct.query_ids and ds.experts == direct.experts
    np.testing.assert_array_equal(ds.score_matrix, direct.score_matrix)
    with pytest.raises(FileNotFoundError):
        baton.load_db(str(db), experts=["no-such-model"])


def test_split(train):
    tr, te = baton.split(train, 0.25, 3)
    assert tr.num_queries + te.num_queries == train.num_queries
    assert te.num_queries == int(train.num_queries * 0.25 + 0.5)  # C++ rounds halves up
