-- materialized: table
-- group: selection
-- description: The decision for every loaded prompt - selected (sent to R1), exact_duplicate, near_duplicate, contaminated or over_quota - with what replaced it. Within a category over its prompt_quota the choice is deterministic (seeded md5 order) and round-robins across repos.
with deduped as (
    select * from int_prompts_deduped
),

near as (
    select * from prompt_near_duplicates
),

contaminated as (
    select prompt_id, min(eval_set || ':' || eval_id) as matched_eval_item
    from prompt_contamination
    group by prompt_id
),

targets as (
    select * from seed_category_targets
),

flagged as (
    select
        d.*,
        n.kept_id as near_duplicate_of,
        n.similarity as near_duplicate_similarity,
        c.matched_eval_item
    from deduped as d
    left join near as n on n.duplicate_id = d.prompt_id
    left join contaminated as c on c.prompt_id = d.prompt_id
),

eligible as (
    select
        *,
        md5(prompt_id || ':' || getvariable('selection_seed')) as draw
    from flagged
    where is_unique and near_duplicate_of is null and matched_eval_item is null
),

ranked as (
    select
        e.*,
        row_number() over (partition by category, repo_name order by draw) as repo_rank
    from eligible as e
),

quota_ranked as (
    select
        r.prompt_id,
        row_number() over (partition by r.category order by r.repo_rank, r.draw) as category_rank
    from ranked as r
)

select
    f.prompt_id,
    f.source_key,
    f.repo_name,
    f.category,
    f.question,
    f.prompt_text,
    f.gold_answer,
    f.gold_format,
    f.scoring,
    case
        when not f.is_unique then 'exact_duplicate'
        when f.near_duplicate_of is not null then 'near_duplicate'
        when f.matched_eval_item is not null then 'contaminated'
        when q.category_rank <= t.prompt_quota then 'selected'
        else 'over_quota'
    end as decision,
    coalesce(f.replaced_by, f.near_duplicate_of) as replaced_by,
    f.near_duplicate_similarity,
    f.matched_eval_item,
    q.category_rank
from flagged as f
left join quota_ranked as q using (prompt_id)
left join targets as t using (category)
