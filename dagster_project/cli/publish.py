"""`distill publish`: upload one export version to a Hugging Face dataset repo."""

from __future__ import annotations

import argparse
import os
import sys

from dagster_project.config import config

EXIT_REFUSED = 2


def cmd_publish(args: argparse.Namespace) -> int:
    """Upload one export version (default: the latest) to the Hub dataset repo in [publish], with
    huggingface_hub: the repo is created private unless --public, the token is read from the
    environment variable named by [publish] token_env. A SIMULATED export is refused unless
    --allow-simulated. --dry-run lists the files and the target and sends nothing."""
    import dagster as dg

    from dagster_project.common.derived import validated
    from dagster_project.config import PublishSettings
    from dagster_project.lib.export.hub import PublishError, describe, plan_publish, publish, read_token
    from dagster_project.publish.hub import materialization

    cfg = config()
    overrides = {k: v for k, v in (("repo_id", args.repo_id), ("private", args.private),
                                   ("commit_message", args.message)) if v is not None}
    settings = validated(PublishSettings, {**cfg.publish.model_dump(), **overrides}, "distill publish")
    try:
        plan = plan_publish(cfg.exports_dir, version=args.version, repo_id=settings.repo_id,
                            endpoint=settings.endpoint, private=settings.private,
                            commit_message=settings.commit_message)
        print(("dry run: " if args.dry_run else "") + "\n".join(describe(plan, args.allow_simulated)))
        refusal = plan.refusal(args.allow_simulated)
        if args.dry_run:
            token_set = "set" if os.environ.get(settings.token_env, "").strip() else "NOT set"
            print(f"token: environment variable {settings.token_env} is {token_set}; nothing was sent")
        if refusal:
            raise PublishError(refusal)
        if args.dry_run:
            return 0
        result = publish(plan, read_token(settings.token_env))
    except PublishError as exc:
        print(f"distill: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"published: {result.commit_url}")
    with dg.DagsterInstance.get() as instance:  # shows as a materialization of hub_dataset in the UI
        instance.report_runless_asset_event(materialization(plan, result))
    return 0


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", help="export version folder (default: the latest, warehouse/exports/LATEST)")
    p.add_argument("--repo-id", help="Hub dataset repo user-or-org/name (default: [publish] repo_id)")
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="private", action="store_const", const=True, default=None,
                            help="create the repo private (default: [publish] private, true)")
    visibility.add_argument("--public", dest="private", action="store_const", const=False,
                            help="create the repo public")
    p.add_argument("--message", help="commit message ({version} is replaced; default: [publish] commit_message)")
    p.add_argument("--dry-run", action="store_true", help="list the files and the target repo; send nothing")
    p.add_argument("--allow-simulated", action="store_true",
                   help="publish an export whose responses come from the simulator")


COMMAND = (cmd_publish, "upload one export version to a Hugging Face dataset repo", configure)