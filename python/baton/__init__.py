"""baton for notebooks: datasets from pandas, fit, route and bench on baton's C++ core.

    import baton, pandas as pd
    ds = baton.from_frame(df)                        # long or wide DataFrame
    model = baton.fit(ds, "knn")                     # baton.predictors() lists the names
    model.save("model.baton")                        # the `baton fit` model file
    routes = model.route(prompts, budget=1.0)        # DataFrame: prompt, expert, predicted_score, predicted_cost
    report = baton.bench(train, test)                # the figures of `baton bench --json`, as a dict

Errors from the core keep their message: ValueError for invalid arguments, FileNotFoundError for something not
found, RuntimeError otherwise.
"""
import json

import numpy as np
import pandas as pd

from ._baton import Dataset, Model, load_db, load_dir, load_model, predictors, split
from . import _baton

__all__ = ["Dataset", "Model", "bench", "fit", "from_frame", "load_db", "load_dir", "load_model", "predictors",
           "split"]

_COST_SUFFIX = "|total_cost"
_QUERY_COLUMNS = ("query_id", "text", "domain", "source", "dataset")


def _strings(values, n, what):
    if values is None:
        return []
    out = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]
    if len(out) != n:
        raise ValueError(f"{n} prompts but {len(out)} {what}")
    return out


def _query_table(ids, df, queries):
    """Text, domain and source per query id, from the frame's own columns or from `queries`."""
    text = {c: {} for c in ("text", "domain", "source")}
    for frame in (df, queries):
        if frame is None:
            continue
        if "query_id" not in frame.columns:
            raise ValueError("the queries DataFrame needs a query_id column")
        for c in text:
            if c in frame.columns:
                for q, v in zip(frame["query_id"].astype(str), frame[c]):
                    if isinstance(v, str):
                        text[c].setdefault(q, v)
    return [[text[c].get(q, "") for q in ids] for c in ("text", "domain", "source")]


def from_frame(df, queries=None, *, dataset="frame", format=None, drop_unobserved=True, query_col="query_id",
               text_col="text", domain_col="domain"):
    """A Dataset from a pandas DataFrame.

    Long form (format="long", or when the frame has a `model` column): one row per (query, model) outcome, columns
    query_id, model, score and optionally cost_usd, text, domain, source. Wide form (RouterBench's layout): one row
    per query, a query_id column (else the index), one score column per model and optional `<model>|total_cost`
    cost columns; text/domain/source columns are query fields, other columns with a '|' are ignored.
    `queries` is an optional DataFrame with query_id and text/domain/source columns. A NaN score is "not observed"
    (never a failure); a NaN cost is unknown. Scores must lie in [0, 1], costs be non-negative. query_col, text_col
    and domain_col name other columns for those fields (RouterBench: "sample_id", "prompt", "eval_name").
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError("from_frame needs a pandas DataFrame")
    renames = {query_col: "query_id", text_col: "text", domain_col: "domain"}
    df = df.rename(columns={k: v for k, v in renames.items() if k != v})
    if queries is not None:
        queries = queries.rename(columns={k: v for k, v in renames.items() if k != v})
    if format is None:
        format = "long" if "model" in df.columns else "wide"
    if format == "long":
        missing = [c for c in ("query_id", "model", "score") if c not in df.columns]
        if missing:
            raise ValueError(f"a long DataFrame needs columns query_id, model, score; missing: {', '.join(missing)}")
        qid = df["query_id"].astype(str)
        model = df["model"].astype(str)
        dup = pd.DataFrame({"q": qid, "m": model}).duplicated()
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise ValueError(f"row {i}: query '{qid.iloc[i]}' has a second outcome for model '{model.iloc[i]}'")
        ids = list(dict.fromkeys(qid))
        experts = list(dict.fromkeys(model))
        qi = pd.Index(ids).get_indexer(qid)
        ei = pd.Index(experts).get_indexer(model)
        score = np.full((len(ids), len(experts)), np.nan)
        cost = np.full_like(score, np.nan)
        score[qi, ei] = pd.to_numeric(df["score"], errors="raise").to_numpy(dtype=float)
        if "cost_usd" in df.columns:
            cost[qi, ei] = pd.to_numeric(df["cost_usd"], errors="raise").to_numpy(dtype=float)
    elif format == "wide":
        ids = (df["query_id"] if "query_id" in df.columns else df.index.to_series()).astype(str).tolist()
        experts = [str(c) for c in df.columns if c not in _QUERY_COLUMNS and "|" not in str(c)]
        if not experts:
            raise ValueError("a wide DataFrame needs one score column per model (no model column found)")
        bad = [c for c in experts if not pd.api.types.is_numeric_dtype(df[c])]
        if bad:
            raise ValueError(f"score columns must be numeric: {', '.join(bad)}")
        score = df[experts].to_numpy(dtype=float)
        cost = np.full_like(score, np.nan)
        for j, e in enumerate(experts):
            if e + _COST_SUFFIX in df.columns:
                cost[:, j] = pd.to_numeric(df[e + _COST_SUFFIX], errors="raise").to_numpy(dtype=float)
    else:
        raise ValueError(f"format must be 'long' or 'wide', not {format!r}")
    texts, domains, sources = _query_table(ids, df, queries)
    return _baton._from_columns(dataset, ids, texts, domains, sources, experts, score, cost, drop_unobserved)


def _dataset(data):
    return from_frame(data) if isinstance(data, pd.DataFrame) else data


def fit(data, predictor=None, *, seed=0, cross_validate=True):
    """Trains `predictor` (default: the first of predictors()) and a cost model on a Dataset or DataFrame."""
    return _baton._fit(_dataset(data), predictor or predictors()[0], seed, cross_validate)


def _frame(df):
    """A Dataset's outcomes as a long DataFrame (observed cells only)."""
    s, c = df.score_matrix, df.cost_matrix
    q, e = np.nonzero(~np.isnan(s))
    ids, experts = np.asarray(df.query_ids, dtype=object), np.asarray(df.experts, dtype=object)
    return pd.DataFrame({"query_id": ids[q], "model": experts[e], "score": s[q, e], "cost_usd": c[q, e]})


def _queries(df):
    return pd.DataFrame({"query_id": df.query_ids, "text": df.texts, "domain": df.query_domains})


Dataset.to_frame = _frame
Dataset.queries = property(_queries)


def _prompts(prompts, domains, subdomains):
    if isinstance(prompts, str):
        raise ValueError("prompts must be a list of strings, not one string")
    texts = [str(p) for p in prompts]
    return texts, _strings(domains, len(texts), "domains"), _strings(subdomains, len(texts), "subdomains")


def _predict(self, prompts, domains=None, *, subdomains=None, costs=False):
    """Predicted score per expert (a DataFrame, one row per prompt, one column per expert); with costs=True a pair
    (scores, costs). `prompts` may also be a Dataset (its queries, texts and domains)."""
    if isinstance(prompts, Dataset):
        score, cost = self._predict_dataset(prompts)
    else:
        score, cost = self._predict(*_prompts(prompts, domains, subdomains))
    scores = pd.DataFrame(score, columns=self.experts)
    return (scores, pd.DataFrame(cost, columns=self.experts)) if costs else scores


def _route(self, prompts, budget, domains=None, *, subdomains=None, experts=None):
    """Routes every prompt to an expert so that the summed predicted cost stays within `budget` (USD, in total) and
    the summed predicted score is as high as it can be (`baton route`'s batch assignment). `experts` restricts the
    candidates. `prompts` may also be a Dataset: then, as `baton route` does, the default candidates are the experts
    with a recorded outcome there. Returns a DataFrame: prompt (index into prompts), expert, predicted_score,
    predicted_cost; .attrs holds lambda and the summed predicted_score and predicted_cost."""
    experts = list(experts or [])
    if isinstance(prompts, Dataset):
        out = self._route_dataset(prompts, float(budget), experts)
    else:
        out = self._route(*_prompts(prompts, domains, subdomains), float(budget), experts)
    idx, score, cost, lam, total_score, total_cost = out
    names = np.asarray(self.experts + [None], dtype=object)
    frame = pd.DataFrame({"prompt": np.arange(len(idx)), "expert": names[idx], "predicted_score": score,
                          "predicted_cost": cost})
    frame.attrs.update(**{"lambda": lam, "predicted_score": total_score, "predicted_cost": total_cost,
                          "budget": float(budget)})
    return frame


Model.predict = _predict
Model.route = _route


def bench(train, test=None, *, test_fraction=0.5, seed=0, experts=None, routers=None, default_candidates=None,
          cv_folds=3, lambdas=40, breakpoint_lambdas=1500, cross_validate=True):
    """Runs `baton bench`: every router trained on `train`, swept on `test` (or, without `test`, on a seeded random
    split of `train` like `baton bench DIR`), against single experts, random, oracle and cascade. Returns the figures
    of `baton bench --json` as a dict (None for a missing value)."""
    train = _dataset(train)
    if test is None:
        train, test = split(train, test_fraction, seed)
    else:
        test = _dataset(test)
    text = _baton._bench(train, test, list(experts or []), list(routers or []), list(default_candidates or []),
                         cv_folds, lambdas, breakpoint_lambdas, seed, cross_validate)
    return json.loads(text)
