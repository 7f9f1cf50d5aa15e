-- materialized: table
-- group: selection
-- description: Exact-duplicate removal on the normalized text across all sources. One row per loaded prompt; losers name the winner that replaced them. The winner is deterministic - prompts with a gold answer first, then by source key, repo_name, file and line.
with prompts as (
    select * from stg_prompts
),

ranked as (
    select
        *,
        row_number() over (
            partition by dedup_key
            order by (gold_answer is null), source_key, repo_name, source_file, source_line, prompt_id
        ) as dup_rank,
        first_value(prompt_id) over (
            partition by dedup_key
            order by (gold_answer is null), source_key, repo_name, source_file, source_line, prompt_id
        ) as winner_prompt_id
    from prompts
)

select
    * exclude (winner_prompt_id),
    dup_rank = 1 as is_unique,
    case when dup_rank > 1 then winner_prompt_id end as replaced_by
from ranked
