import os
import pathlib

import pytest

SOURCE = pathlib.Path(os.environ.get("BATON_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
DATA = SOURCE / "data"


@pytest.fixture(scope="session")
def train():
    import baton
    return baton.load_dir(str(DATA / "routerbench-train"))


@pytest.fixture(scope="session")
def test_set():
    import baton
    return baton.load_dir(str(DATA / "routerbench-test"))


@pytest.fixture(scope="session")
def model(train):
    import baton
    return baton.fit(train, "knn", cross_validate=False)


@pytest.fixture(scope="session")
def baton_binary():
    path = os.environ.get("BATON_BINARY")
    if not path or not os.path.exists(path):
        pytest.skip("BATON_BINARY is not set (ctest sets it)")
    return path
