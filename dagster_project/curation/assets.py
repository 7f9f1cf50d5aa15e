"""Curation in Python: near-identical responses."""


import dagster as dg

from dagster_project.common.derived import derived_config
from dagster_project.common.metadata import source_version, table_result
from dagster_project.config import CurationSettings, config
from dagster_project.lib.dedup.near_dup import find_near_duplicates
from dagster_project.lib.warehouse import describe_table, replace_table
from dagster_project.resources import WarehouseResource

ResponseDupConfig = derived_config(
    "ResponseDupConfig", CurationSettings, config().curation, ["response_dup_threshold", "near_dup_ngram"],
    "Near-identical responses (defaults: `[curation]` in distill.toml).")


@dg.asset(
    deps=["scores"],
    group_name="curation",
    code_version=source_version("dagster_project.lib.dedup.near_dup", "dagster_project.lib.dedup.shingles"),
    kinds={"duckdb", "python"},
    owners=["team:data"],
    description=("Near-identical responses (MinHash over the answers of scored completions), each pointing at "
                 "the kept one - the higher score wins. Threshold: `[curation] response_dup_threshold`."),
)
def response_near_duplicates(context: dg.AssetExecutionContext, config: ResponseDupConfig,
                             warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.get_connection(purpose="response_near_duplicates read") as con:
        rows = con.sql("""
            SELECT s.completion_id, c.content FROM scores AS s JOIN r1_completions AS c USING (completion_id)
            WHERE s.score IS NOT NULL ORDER BY s.score DESC, s.completion_id
        """).to_arrow_table()
    pairs = find_near_duplicates(rows.column("completion_id").to_pylist(), rows.column("content").to_pylist(),
                                 threshold=config.response_dup_threshold, ngram=config.near_dup_ngram)
    with warehouse.get_connection(purpose="response_near_duplicates write") as con:
        replace_table(con, "response_near_duplicates", pairs)
        info = describe_table(con, "response_near_duplicates")
    context.log.info(f"{pairs.num_rows} near-identical responses among {rows.num_rows} scored completions")
    return table_result("response_near_duplicates", info, responses_compared=rows.num_rows,
                        settings=dg.MetadataValue.json(config.model_dump()))


