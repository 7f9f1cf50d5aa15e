-- materialized: table
-- description: The balanced SFT rows, with `sft_output` = "<think>\n" + reasoning + "\n</think>\n\n" + answer (the same text as llm.parsing.sft_output). Within a category, higher scores first, then round-robin across repos, ties broken by a seeded md5 draw - deterministic for a given `balance_seed`.
with candidates as (
    select * from int_sft_candidates
    where keep
),

quotas as (
    select category, selected_rows from sft_category_balance
),

ranked as (
    select
        *,
        md5(completion_id || ':' || getvariable('balance_seed')) as draw,
        row_number() over (partition by category, repo_name, score order by md5(completion_id || ':' || getvariable('balance_seed'))) as repo_rank
    from candidates
),

ordered as (
    select
        *,
        row_number() over (partition by category order by score desc, repo_rank, draw) as category_rank
    from ranked
)

select
    o.* exclude (draw, repo_rank),
    '<think>' || chr(10) || o.reasoning || chr(10) || '</think>' || chr(10) || chr(10) || o.content as sft_output
from ordered as o
join quotas as q using (category)
where o.category_rank <= q.selected_rows
