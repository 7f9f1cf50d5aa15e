-- materialized: table
-- group: curation
-- description: The balanced SFT rows, with `sft_output` = "<think>\n" + reasoning + "\n</think>\n\n" + answer (the same text as llm.parsing.sft_output). Within a category, higher scores first, then round-robin across repos, ties broken by a seeded md5 draw - deterministic for a given `balance_seed`.
with candidates as (
    select * from int_sft_candidates
    where keep
),

quotas as (
    select category, selected_rows from sft_category_balance
),

-- ranks are computed on narrow rows; the texts join in only for the chosen ones
ranked as (
    select
        completion_id,
        category,
        score,
        md5(completion_id || ':' || getvariable('balance_seed')) as draw,
        row_number() over (partition by category, repo_name, score order by md5(completion_id || ':' || getvariable('balance_seed'))) as repo_rank
    from candidates
),

ordered as (
    select
        completion_id,
        category,
        row_number() over (partition by category order by score desc, repo_rank, draw) as category_rank
    from ranked
),

chosen as (
    select o.completion_id, o.category_rank
    from ordered as o
    join quotas as q using (category)
    where o.category_rank <= q.selected_rows
)

select
    c.*,
    p.question as question_text,
    r.reasoning,
    r.content,
    ch.category_rank,
    '<think>' || chr(10) || r.reasoning || chr(10) || '</think>' || chr(10) || chr(10) || r.content as sft_output
from candidates as c
join chosen as ch using (completion_id)
join r1_completions as r using (completion_id)
join prompt_selection as p on p.prompt_id = r.prompt_id
