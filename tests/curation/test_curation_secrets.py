import pyarrow as pa
import pytest
from curation_testdata import EVAL_SETS, FIXTURES, read_jsonl

from dagster_project.lib.export.writer import find_secrets, scan_table, secret_patterns

PLANTED = [
    "调用时用 sk-abcdefghijklmnopqrstuvwxyz123456 这个密钥",
    "key: sk-proj-AbC_dEf-1234567890123456789",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk",
    'config = {"api_key": "A1b2C3d4E5f6G7h8I9"}',
    "OPENAI api_key=xyzXYZ0123456789abcd",
    "aws AKIAIOSFODNN7EXAMPLE region",
    "export HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA",
    "密钥：0123456789abcdef0123456789abcdef",
    "token = dGhpcyBpcyBhIHNlY3JldCBibG9iIHdpdGggMTIzNDU2Nzg5MA==",
    "AIzaSyA1234567890abcdefghijklmnopqrstuv",
    "slack xoxb-1234567890 频道",  # the shortest shapes the patterns accept
    "api_key: A1b2C3d4E5f6",
]

NOT_SECRETS = [
    "设 $f(x)=\\frac{\\sqrt{5}}{5}(X+Y)$，求 $\\lim_{x \\to 0} \\frac{\\sin x}{x}$。",
    "task-management is a skill; risk-averse investors ask questions",
    "这把钥匙（key）很重要，token 经济学是一个概念。",
    "sha256 校验和见 manifest 文件",
]


@pytest.mark.parametrize("text", PLANTED)
def test_planted_secrets_are_found(text):
    assert find_secrets(text)


@pytest.mark.parametrize("text", PLANTED + NOT_SECRETS)
def test_the_one_pass_prefilter_never_hides_a_match(text):
    every_pattern = sorted(m.span() for p in secret_patterns().values() for m in p.finditer(text))
    assert bool(find_secrets(text)) == bool(every_pattern)


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_look_alikes_are_not_secrets(text):
    assert find_secrets(text) == []


def test_no_hits_on_real_chinese_rows():
    texts = []
    for name in ("coig_cqia_prompts.jsonl", "coig_cqia_kaoyan.jsonl"):
        for row in read_jsonl(FIXTURES / name):
            texts += [row["instruction"], row["input"], row["output"]]
    for path in sorted(EVAL_SETS.glob("*.jsonl")):
        texts += [row["question"] for row in read_jsonl(path)]
    assert len(texts) > 800
    assert [t for t in texts if find_secrets(t)] == []


def test_scan_table_redacts():
    table = pa.table({"content": ["正常文本", PLANTED[0]], "n": [1, 2]})
    hits = scan_table(table)
    assert [(h["row"], h["column"], h["kind"]) for h in hits] == [(1, "content", "openai_key")]
    assert "abcdefghijklmnop" not in hits[0]["redacted"]
    assert set(secret_patterns()) >= {"openai_key", "aws_access_key", "huggingface_token", "bearer_token"}
