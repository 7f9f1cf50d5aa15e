"""What the session pipeline's real `sft_export` run recorded for the Dagster UI."""

import re

import dagster as dg

from dagster_project.lib.llm.journal import Journal


def latest_metadata(run) -> dict:
    with dg.DagsterInstance.from_config(str(run.home)) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("sft_export"))
    return event.asset_materialization.metadata


def test_card_and_plots_are_markdown_with_inline_images(pipeline_run):
    metadata = latest_metadata(pipeline_run)
    card = metadata["dataset_card"]
    assert isinstance(card, dg.MarkdownMetadataValue)
    assert card.value.startswith("# ") and "SIMULATED DATA" in card.value and "](plots/" not in card.value
    assert len(re.findall(r"\]\(data:image/png;base64,", card.value)) == 2
    for key in ("plot_scores_by_category", "plot_token_lengths_by_category"):
        plot = metadata[key]
        assert isinstance(plot, dg.MarkdownMetadataValue) and "data:image/png;base64," in plot.value
        assert re.search(r"\n\n\*[^*\n]+\*", plot.value)  # its one-line caption
    assert "license: other" in card.value.split("## YAML header")[1]
    assert metadata["dagster/row_count"].value == metadata["rows_by_form"].value["sft"] > 0


def test_tokens_and_cost_cover_every_partition_of_the_journal(pipeline_run):
    metadata = latest_metadata(pipeline_run)
    journal = Journal(pipeline_run.root / "warehouse" / "journal")
    expected_tokens, expected_cost, partitions = 0, 0.0, set()
    for stage in ("r1", "judge"):
        table = journal.read_sql(stage, None, "SELECT partition, usage_prompt_tokens, usage_completion_tokens, cost "
                                              "FROM j").to_pylist()
        expected_tokens += sum((r["usage_prompt_tokens"] or 0) + (r["usage_completion_tokens"] or 0) for r in table)
        expected_cost += sum(r["cost"] or 0 for r in table)
        partitions |= {(stage, r["partition"]) for r in table}
    assert len({p for s, p in partitions if s == "r1"}) == 7  # every source partition
    assert metadata["llm_tokens"].value == expected_tokens > 0
    assert abs(metadata["llm_cost"].value - expected_cost) < 1e-3
    assert metadata["llm_cost_currency"].value == "CNY"
    table = metadata["llm_spend_by_partition"].value
    assert all(f"| {stage} | {partition} |" in table for stage, partition in partitions)
    # Rounded figures: no float in the metadata carries more than four decimals.
    for key, value in metadata.items():
        if isinstance(value, dg.FloatMetadataValue):
            assert round(value.value, 4) == value.value, key
