
import pyarrow as pa
import pytest
from curation_testdata import EVAL_SETS, FIXTURES, read_jsonl

from dagster_project.lib.export.writer import find_secrets, scan_table, secret_patterns
from dagster_project.lib.secrets import holds_value, redact_text, secret_hits
from dagster_project.lib.text import fold, to_fullwidth
from tests.conftest import PUBLIC_DATA
from tests.real_texts import bundled_paths
from tests.real_texts import texts as real_texts

# (text, kind): every common shape, the six a hostile test found missed first (JWT, Stripe live
# key, a postgres URL with a password, a Chinese password label, an sk- key split by U+200B, a
# full-width sk- key).
PLANTED = [
    ("token 是 eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV", "jwt"),
    ("用这个付款：sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", "stripe_key"),
    ("连接 postgres://admin:S3cretPw@db.internal:5432/prod 报错", "connection_url"),
    ("数据库密码：Pg#2024!safe，请勿外传", "password_assignment"),
    ("key sk-abcdefghij\u200bklmnopqrstuvwxyz12 别外传", "openai_key"),
    ("ｓｋ－ａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ１２", "openai_key"),
    ("调用时用 sk-abcdefghijklmnopqrstuvwxyz123456 这个密钥", "openai_key"),
    ("key: sk-proj-AbC_dEf-1234567890123456789", "openai_key"),
    ("ANTHROPIC_API_KEY=sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv", "openai_key"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk", "bearer_token"),
    ('config = {"api_key": "A1b2C3d4E5f6G7h8I9"}', "api_key_assignment"),
    ("OPENAI api_key=xyzXYZ0123456789abcd", "api_key_assignment"),
    ("api_key: A1b2C3d4E5f6", "api_key_assignment"),
    ("aws AKIAIOSFODNN7EXAMPLE region", "aws_access_key"),
    ("export HF_TOKEN=hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "huggingface_token"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "github_token"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "github_token"),
    ("glpat-abcdefghij1234567890", "gitlab_token"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA", "private_key_block"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----", "private_key_block"),
    ("密钥：0123456789abcdef0123456789abcdef", "blob_near_key_word"),
    ("token = dGhpcyBpcyBhIHNlY3JldCBibG9iIHdpdGggMTIzNDU2Nzg5MA==", "blob_near_key_word"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "google_api_key"),
    ("ya29.a0AfH6SMBabcdefghijklmnopqrstuvwxyz0123", "google_api_key"),
    ("slack xoxb-1234567890 频道", "slack_token"),  # the shortest shapes the patterns accept
    ("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "slack_token"),
    ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "stripe_key"),
    ("mysql://root:hunter22@127.0.0.1/app", "connection_url"),
    ("redis://:p4ssw0rd@cache:6379", "connection_url"),
    ("口令是 Abc12345", "password_assignment"),
    ("password=hunter22", "password_assignment"),
    ("npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm_token"),
]

NOT_SECRETS = [
    "设 $f(x)=\\frac{\\sqrt{5}}{5}(X+Y)$，求 $\\lim_{x \\to 0} \\frac{\\sin x}{x}$。",
    "task-management is a skill; risk-averse investors ask questions",
    "这把钥匙（key）很重要，token 经济学是一个概念。",
    "sha256 校验和见 manifest 文件",
    "密码学是研究密码的学科，口令和密钥要妥善保管。",
    "请设置一个密码：至少8位，包含字母和数字",
    "保险箱的密码是一个三位数，个位是3，十位是5，百位比十位大2，密码是多少？",
    "password: ********",
    "密码：${DB_PASSWORD}",
    "访问 https://example.com/path?a=1&b=2 查看，或 http://example.com:8080/a@b",
    "postgres://user:password@localhost/db 是连接串的格式",
    "mongodb://<user>:<password>@cluster0.mongodb.net",
    "其中 AKIA 是前缀，Bearer token 是一种认证方式",
    "$\\mathrm{sk}-\\alpha_{12345678901234567890}$",
    "已知 $a_1=1, a_{n+1}=2a_n+1$，求通项公式 $a_n=2^n-1$。",
]


def _variants(text: str) -> list[str]:
    """The text as a hostile user may write it: full-width, split by zero-width characters, both."""
    split = "\u200b".join(text[i:i + 5] for i in range(0, len(text), 5))
    return [text, to_fullwidth(text), split, "\u2060".join(to_fullwidth(text))]


@pytest.mark.parametrize("text,kind", PLANTED)
def test_planted_secrets_are_found_in_every_disguise(text, kind):
    assert [k for k, _ in secret_hits(text)] == [kind]
    for variant in _variants(text):
        assert find_secrets(variant), variant


def test_there_are_more_than_sixteen_shapes():
    assert len({kind for _, kind in PLANTED}) >= 16 and len(PLANTED) >= 30


@pytest.mark.parametrize("text", [t for t, _ in PLANTED] + NOT_SECRETS)
def test_the_trigger_words_never_hide_a_match(text):
    for variant in _variants(text):
        folded = fold(variant)
        every_pattern = sorted(m.span() for p in secret_patterns().values() for m in p.finditer(folded))
        assert bool(find_secrets(variant)) == bool(every_pattern)


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


def test_no_hits_on_the_bundled_samples_and_every_fixture():
    paths = bundled_paths()
    texts = real_texts(paths)
    assert len(paths) > 20 and len(texts) > 5000
    assert [t[:80] for t in texts if find_secrets(t)] == []


@pytest.mark.skipif(PUBLIC_DATA is None, reason="DISTILL_PUBLIC_DATA (the public source files) is not set")
def test_no_hits_on_the_public_source_files():
    """All of it, read in place (xVerify's licence forbids copying it into the project)."""
    paths = sorted(p for p in PUBLIC_DATA.rglob("*") if p.suffix in (".json", ".jsonl", ".parquet"))
    texts = real_texts(paths)
    assert len(texts) > 50_000
    assert [t[:80] for t in texts if find_secrets(t)] == []


def test_redact_text_leaves_no_secret():
    for text, _ in PLANTED:
        for variant in _variants(text):
            out = redact_text(variant)
            assert find_secrets(out) == [] and "redacted" in out
    key = "local-endpoint-7Hq2Lm9Xw4Zt"
    assert holds_value(f"配置 {to_fullwidth(key)}", [key]) and not holds_value("配置", [key, ""])
    assert key not in redact_text(f"配置 {key} 和 sk-abcdefghijklmnopqrstuvwxyz", [key])


def test_scan_table_redacts():
    table = pa.table({"content": ["正常文本", PLANTED[6][0], PLANTED[5][0]], "n": [1, 2, 3]})
    hits = scan_table(table)
    assert [(h["row"], h["column"], h["kind"]) for h in hits] == [(1, "content", "openai_key"), (2, "content", "openai_key")]
    assert "abcdefghijklmnop" not in hits[0]["redacted"]
    assert set(secret_patterns()) >= {"openai_key", "aws_access_key", "huggingface_token", "bearer_token", "jwt"}


def test_find_secrets_keeps_its_interface():
    """`find_secrets(text) -> list[str]`, as the export's no_secrets check calls it."""
    assert find_secrets("sk-abcdefghijklmnopqrstuvwxyz") == ["sk-abcdefghijklmnopqrstuvwxyz"] and find_secrets("") == []
