import pytest
from curation_testdata import FIXTURES, read_jsonl


@pytest.fixture(scope="session")
def real_rows() -> list[dict]:
    """66 distinct real COIG-CQIA rows (see tests/fixtures/curation/ORIGIN.md)."""
    return read_jsonl(FIXTURES / "coig_cqia_prompts.jsonl")


@pytest.fixture(scope="session")
def kaoyan_rows() -> list[dict]:
    """Real COIG-CQIA exam/kaoyan rows whose questions are also in the LIMO kaoyan eval set."""
    return read_jsonl(FIXTURES / "coig_cqia_kaoyan.jsonl")
