"""The `publish_to_hub` job: one export version to a Hugging Face dataset repo.

A job with typed run config, not an asset in the main graph, so "Materialize all" never
publishes. A successful upload is recorded as a materialization of the external asset
`hub_dataset` (downstream of `sft_export`), with the repo and commit links. The Hub token is
read from the environment variable named by `[publish] token_env` when the upload starts; it is
not part of the run config, and neither is the endpoint it is sent to.
"""


import dagster as dg
from pydantic import Field

from dagster_project.common.derived import derived_config, validated
from dagster_project.config import PublishSettings
from dagster_project.config import config as project_config
from dagster_project.lib.export.hub import (
    PublishError,
    PublishPlan,
    PublishResult,
    describe,
    plan_publish,
    publish,
    read_token,
)

hub_dataset = dg.AssetSpec(
    "hub_dataset",
    deps=["sft_export"],
    group_name="publish",
    kinds={"huggingface"},
    owners=["team:data"],
    description=("The export on the Hugging Face Hub. Recorded by the `publish_to_hub` job or `distill publish`; "
                 "it is not materialized by the asset graph, so nothing is published by accident."),
)

_PublishTarget = derived_config(
    "_PublishTarget", PublishSettings, project_config().publish, ["repo_id", "private", "commit_message"],
    "Where to publish (defaults: `[publish]` in distill.toml).")


class PublishConfig(_PublishTarget):
    """Which export version to publish, and where (defaults: `[publish]` in distill.toml)."""

    version: str = Field("", description="export version folder; empty: the latest (warehouse/exports/LATEST)")
    dry_run: bool = Field(False, description="only list what would be uploaded, and where")
    allow_simulated: bool = Field(False, description="publish an export whose responses are SIMULATED")


def plan_from(run: PublishConfig) -> tuple[PublishSettings, PublishPlan]:
    """The validated target and the plan for a run's config."""
    cfg = project_config()
    settings = validated(PublishSettings, {**cfg.publish.model_dump(), "repo_id": run.repo_id,
                                           "private": run.private, "commit_message": run.commit_message},
                         "publish_to_hub config")
    plan = plan_publish(cfg.exports_dir, version=run.version or None, repo_id=settings.repo_id,
                        endpoint=settings.endpoint, private=settings.private, commit_message=settings.commit_message)
    return settings, plan


def materialization(plan: PublishPlan, result: PublishResult) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=hub_dataset.key,
        description=f"export {plan.version} published to {plan.url}",
        metadata={
            "repo": dg.MetadataValue.url(plan.url),
            "commit": dg.MetadataValue.url(result.commit_url),
            "commit_oid": result.commit_oid,
            "version": plan.version,
            "files": result.files,
            "bytes": plan.total_bytes,
            "private_if_created": plan.private,
            "simulated": plan.simulated,
        },
    )


@dg.op(description="Upload one export version to the Hub dataset repo (or, with dry_run, say what would be uploaded).")
def publish_export(context: dg.OpExecutionContext, config: PublishConfig):
    try:
        settings, plan = plan_from(config)
        for line in describe(plan, config.allow_simulated):
            context.log.info(line)
        refusal = plan.refusal(config.allow_simulated)
        if refusal:
            raise PublishError(refusal)
        if config.dry_run:
            yield dg.Output(None, metadata={"dry_run": True, "target": dg.MetadataValue.url(plan.url),
                                            "files": dg.MetadataValue.json([f.path for f in plan.files])})
            return
        result = publish(plan, read_token(settings.token_env))
    except PublishError as exc:
        raise dg.Failure(description=str(exc)) from None
    context.log.info(f"published export {plan.version}: {result.commit_url}")
    yield materialization(plan, result)
    yield dg.Output(None, metadata={"commit": dg.MetadataValue.url(result.commit_url)})


@dg.job(description=("Publish one export version to a Hugging Face dataset repo (`[publish]` in distill.toml; the "
                     "token comes from the environment variable named by `token_env`). Refuses a SIMULATED export "
                     "unless allow_simulated is set; dry_run only lists the files."))
def publish_to_hub():
    publish_export()
