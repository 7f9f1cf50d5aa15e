"""Bad source files, each written from real rows with a record count known by construction.

Every case says how many records its file holds, how many must load, which lines must be
rejected (with the start of the reason), or which one-line file error must be raised instead.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "ingest" / "gsm8k_zh_rows.jsonl"
ROWS: list[dict] = [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()]
MAX_QUESTION_CHARS = 20000
FAKE_KEY = "local-endpoint-7Hq2Lm9Xw4Zt"  # a configured API key value without a known key shape
INVISIBLE_ONLY = ["\u200e", "\u200f", "\u202e", "\u180e", "\u3164", "\u2800", "\ufe0f", "\u200b",
                  "\u200b \u2060\n\ufeff"]


@dataclass
class Case:
    name: str
    fmt: str
    write: Callable[[Path], None]  # writes the file at the given path
    records: int                   # records in the file
    loaded: int = 0
    rejects: list[tuple[int, str]] = field(default_factory=list)  # (line, reason prefix)
    error: str | None = None       # a SourceFileError containing this text
    extra: str = ""                # more [[files]] keys
    native_id: bool = True
    suffix: str = ""

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.suffix or self.fmt}"


def jsonl(rows: list, eol: str = "\n") -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + eol for r in rows).encode()


def csv_bytes(rows: list[dict], eol: str = "\n") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "question", "answer"], lineterminator=eol)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def pretty_array(rows: list, eol: str = "\n") -> bytes:
    return json.dumps(rows, ensure_ascii=False, indent=2).replace("\n", eol).encode()


def writes(data: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(data)


def parquet(table: pa.Table, cut: int | None = None) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        pq.write_table(table, path)
        if cut is not None:
            path.write_bytes(path.read_bytes()[:cut])
    return write


def _csv_with_bad_byte() -> bytes:
    data = csv_bytes(ROWS[:4])
    target = ROWS[2]["question"][:6].encode()
    return data.replace(target, target + b"\xff", 1)


def _array_with_syntax_error() -> bytes:
    text = pretty_array(ROWS[:5]).decode()
    broken = json.dumps(ROWS[1]["question"], ensure_ascii=False)
    return text.replace(broken, broken[:-1], 1).encode()  # record 2 loses its closing quote


def _one_line_array_with_error() -> bytes:
    text = json.dumps(ROWS[:5], ensure_ascii=False)
    return text.replace(f'"id": "{ROWS[2]["id"]}",', f'"id": "{ROWS[2]["id"]}" oops,', 1).encode()


def _array_missing_comma() -> bytes:
    text = pretty_array(ROWS[:4]).decode()
    at = text.index("{", text.index(ROWS[1]["id"]) + 1) if False else text.index('  {\n    "id": "' + ROWS[2]["id"])
    return (text[:at].rstrip().removesuffix(",") + "\n" + text[at:]).encode()


def _truncated_array() -> bytes:
    text = pretty_array(ROWS[:4]).decode()
    return text[:text.index(ROWS[3]["question"][:10])].encode()  # cut inside record 4


def _lines_of(data: bytes, needle: str) -> int:
    return data.decode(errors="replace").split(needle, 1)[0].count("\n") + 1


def _crlf_lines_of(data: bytes, needle: str) -> int:
    return data.decode(errors="replace").split(needle, 1)[0].replace("\r\n", "\n").replace("\r", "\n").count("\n") + 1


def _record_line(data: bytes, index: int) -> int:
    return _crlf_lines_of(data, f'"id": "{ROWS[index]["id"]}"') - 1  # the `{` line above the id


def _wrong_types() -> list[dict]:
    good = ROWS[0]
    return [
        good,
        {"id": "t1", "question": 12345, "answer": "1"},
        {"id": "t2", "question": True, "answer": "1"},
        {"id": "t3", "question": {"text": "对象"}, "answer": "1"},
        {"id": "t4", "question": ["列表"], "answer": "1"},
        {"id": "t5", "question": ROWS[1]["question"], "answer": True},
        {"id": "t6", "question": ROWS[2]["question"], "answer": {"value": 3}},
        {"id": {"nested": 1}, "question": ROWS[3]["question"], "answer": "1"},
        {"id": "t8", "question": ROWS[4]["question"], "answer": 70000},  # a number gold is fine
    ]


def _nan_gold_jsonl() -> bytes:
    return (jsonl(ROWS[:2]) + b'{"id": "n1", "question": "q", "answer": NaN}\n'
            + b'{"id": "n2", "question": "q2", "answer": Infinity}\n')


def _control_jsonl() -> bytes:
    return jsonl([ROWS[0],
                  {"id": "c1", "question": "问题\u0000尾部", "answer": "1"},   # an escaped \u0000
                  {"id": "c2", "question": "问题\u0085", "answer": "1"},       # C1 (NEL)
                  {"id": "c3", "question": "问题\x7f", "answer": "1"},         # DEL
                  {"id": "c4", "question": "制表\t换行\n回车\r都可以", "answer": "1"}])


def _control_csv() -> bytes:
    rows = [ROWS[0], {"id": "c1", "question": "题目\x01", "answer": "1"}, ROWS[1]]
    return csv_bytes(rows)


def _surrogate_jsonl() -> bytes:
    return jsonl(ROWS[:1]) + b'{"id": "s1", "question": "\\ud800 lone", "answer": "1"}\n'


def _parquet_table(rows: list[dict], id_name: str = "id") -> pa.Table:
    return pa.table({id_name: [r["id"] for r in rows], "question": [r["question"] for r in rows],
                     "answer": [r["answer"] for r in rows]})


def _parquet_nan() -> pa.Table:
    return pa.table({"id": ["p1", "p2", "p3"], "question": [r["question"] for r in ROWS[:3]],
                     "answer": [18.0, float("nan"), 3.5]})


def _gbk(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("gbk")


SECRET_ROWS = [ROWS[0],
               {"id": "k1", "question": "我的 key 是 sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv 帮我看看", "answer": "1"},
               {"id": "k2", "question": f"配置里写着 {FAKE_KEY}，对吗？", "answer": "1"},
               {"id": "k3", "question": "连接 postgres://admin:S3cretPw@db.internal:5432/prod 报错", "answer": "1"},
               {"id": "k4", "question": ROWS[1]["question"], "answer": "1", "note": "数据库密码：Pg#2024!safe"}]


def cases() -> list[Case]:
    csv4, arr5, arr4 = csv_bytes(ROWS[:4]), _array_with_syntax_error(), pretty_array(ROWS[:4])
    cr_json = pretty_array(ROWS[:4], "\r")
    missing_comma, one_line = _array_missing_comma(), _one_line_array_with_error()
    invisible = jsonl([ROWS[0]] + [{"id": f"i{i}", "question": q, "answer": "1"} for i, q in enumerate(INVISIBLE_ONLY)]
                      + [ROWS[1]])
    unbalanced = csv4.replace(f'{ROWS[1]["id"]},'.encode(), f'{ROWS[1]["id"]},"'.encode(), 1)
    multiline = csv_bytes([ROWS[0], {**ROWS[1], "question": "第一行\n第二行\n" + ROWS[1]["question"]}, ROWS[2]])
    return [
        Case("jsonl_clean", "jsonl", writes(jsonl(ROWS)), 6, 6),
        Case("csv_bad_byte", "csv", writes(_csv_with_bad_byte()), 4, 3,
             [(4, "encoding: not valid utf-8: byte 0xff in field `question`")]),
        Case("csv_unbalanced_quote", "csv", writes(unbalanced), 4, 3, [(3, "malformed: CSV")]),
        Case("csv_wrong_field_count", "csv",
             writes(csv4.replace(f'{ROWS[3]["id"]},'.encode(), f'{ROWS[3]["id"]},extra,'.encode(), 1)), 4, 3,
             [(5, "malformed: CSV: 4 fields, the header has 3")]),
        Case("csv_multiline_field", "csv", writes(multiline), 3, 3),
        Case("json_array_syntax_error", "json", writes(arr5), 5, 4,
             [(_record_line(arr5, 1), "malformed: JSON")]),
        Case("json_array_missing_comma", "json", writes(missing_comma), 4, 3,
             [(_record_line(missing_comma, 2), "malformed: JSON: missing ','")]),
        Case("json_array_truncated", "json", writes(_truncated_array()), 4, 3,
             [(_record_line(_truncated_array(), 3), "malformed: JSON")]),
        Case("json_one_line_array_error", "json", writes(one_line), 5, 4, [(1, "malformed: JSON")]),
        Case("jsonl_cr_only", "jsonl", writes(jsonl(ROWS[:4], "\r")), 4, 4),
        Case("jsonl_crlf", "jsonl", writes(jsonl(ROWS[:4], "\r\n")), 4, 4),
        Case("csv_cr_only", "csv", writes(csv_bytes(ROWS[:4], "\r")), 4, 4),
        Case("csv_crlf", "csv", writes(csv_bytes(ROWS[:4], "\r\n")), 4, 4),
        Case("json_array_cr_only", "json", writes(cr_json), 4, 4),
        Case("json_array_as_jsonl", "jsonl", writes(arr4), 4, 4),
        Case("json_one_line_array_as_jsonl", "jsonl", writes(json.dumps(ROWS[:4], ensure_ascii=False).encode()), 4, 4),
        Case("json_array_with_error_as_jsonl", "jsonl", writes(arr5), 5, 4,
             [(_record_line(arr5, 1), "malformed: JSON")]),
        Case("jsonl_bom", "jsonl", writes(b"\xef\xbb\xbf" + jsonl(ROWS[:3])), 3, 3),
        Case("json_bom", "json", writes(b"\xef\xbb\xbf" + arr4), 4, 4),
        Case("csv_bom", "csv", writes(b"\xef\xbb\xbf" + csv4), 4, 4),
        Case("parquet_bom_column", "parquet", parquet(_parquet_table(ROWS[:3], "\ufeffid")), 3, 3),
        Case("invisible_only_questions", "jsonl", writes(invisible), 2 + len(INVISIBLE_ONLY), 2,
             [(i + 2, "empty question") for i in range(len(INVISIBLE_ONLY))]),
        Case("over_long_question", "jsonl",
             writes(jsonl([ROWS[0], {"id": "long", "question": "很长的问题。" * 200_000, "answer": "1"}, ROWS[1]])),
             3, 2, [(2, "too long: 1,200,000 characters")]),
        Case("control_characters", "jsonl", writes(_control_jsonl()), 5, 2,
             [(2, "control character: U+0000"), (3, "control character: U+0085"), (4, "control character: U+007F")]),
        Case("control_character_csv", "csv", writes(_control_csv()), 3, 2, [(3, "control character: U+0001")]),
        Case("lone_surrogate", "jsonl", writes(_surrogate_jsonl()), 2, 1, [(2, "invalid text: a lone surrogate")]),
        Case("wrong_types", "jsonl", writes(jsonl(_wrong_types())), 9, 2,
             [(2, "wrong type: `question` is an integer"), (3, "wrong type: `question` is a boolean"),
              (4, "wrong type: `question` is an object"), (5, "wrong type: `question` is a list"),
              (6, "wrong type: gold `answer` is a boolean"), (7, "wrong type: gold `answer` is an object"),
              (8, "wrong type: native id `id` is an object")]),
        Case("nan_gold", "jsonl", writes(_nan_gold_jsonl()), 4, 2,
             [(3, "wrong type: gold `answer` is NaN"), (4, "wrong type: gold `answer` is infinite")]),
        Case("parquet_nan_gold", "parquet", parquet(_parquet_nan()), 3, 2, [(2, "wrong type: gold `answer` is NaN")]),
        Case("secrets", "jsonl", writes(jsonl(SECRET_ROWS)), 5, 1,
             [(2, "secret: openai_key in field `question`"), (3, "secret: a configured API key in field `question`"),
              (4, "secret: connection_url in field `question`"), (5, "secret: password_assignment in field `note`")]),
        Case("duplicate_native_id", "jsonl", writes(jsonl([ROWS[0], ROWS[1], {**ROWS[2], "id": ROWS[0]["id"]}])), 3, 2,
             [(3, "duplicate: native id")]),
        Case("gbk_declared", "jsonl", writes(_gbk(ROWS[:3])), 3, 3, extra='encoding = "gbk"'),
        Case("empty_file", "jsonl", writes(b""), 0, error="no records (an empty file)"),
        Case("empty_file_allowed", "jsonl", writes(b""), 0, 0, extra="allow_empty = true"),
        Case("whitespace_only_file", "jsonl", writes(b"\n \r\n\t\n"), 0, error="no records"),
        Case("csv_header_only", "csv", writes(b"id,question,answer\n"), 0, error="no records"),
        Case("json_empty_array", "json", writes(b"[]\n"), 0, error="no records"),
        Case("csv_header_bad_byte", "csv", writes(csv4.replace(b"question", b"ques\xfftion", 1)), 4,
             error="the CSV header is not valid utf-8: byte 0xff"),
        Case("csv_header_repeats_a_column", "csv", writes(csv4.replace(b"answer", b"question", 1)), 4,
             error="the CSV header repeats column(s) ['question']"),
        Case("missing_file", "jsonl", lambda path: None, 0, error="source file not found"),
        Case("directory", "jsonl", lambda path: path.mkdir(), 0, error="is a directory"),
        Case("truncated_parquet", "parquet", parquet(_parquet_table(ROWS), cut=200), 6,
             error="not a readable Parquet file"),
        Case("non_parquet", "parquet", writes(jsonl(ROWS)), 6, error="not a readable Parquet file"),
        Case("undecodable_file", "jsonl", writes(_gbk(ROWS[:3])), 3,
             error="none of its 3 records could be loaded"),
    ]


def manifest_text(case: Case, data_path: Path) -> str:
    return "\n".join([
        f'key = "{case.name.replace("_", "-")}"', 'repo = "test/rows"', 'license = "mit"',
        "[[files]]", f'path = "{data_path.as_posix()}"', f'format = "{case.fmt}"', 'repo_name = "test/rows"',
        'category = "Math"', 'question = "question"', 'gold = "answer"', 'gold_format = "number"',
        *(['native_id = "id"'] if case.native_id else []), case.extra, "",
    ])
