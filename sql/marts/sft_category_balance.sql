-- materialized: table
-- group: curation
-- description: How many rows each category gets. `balance_mode = "ratios"` keeps the target distribution (the seed's by default) scaled to the scarcest category that has rows; `"counts"` takes up to each target. `shortfall` is what a category lacks against its (scaled) target, reported rather than hidden.
with candidates as (
    select category, count(*) as available
    from int_sft_candidates
    where keep
    group by category
),

targets as (
    select category, target_rows from seed_category_targets
),

planned as (
    select
        t.category,
        t.target_rows,
        coalesce(c.available, 0) as available
    from targets as t
    left join candidates as c using (category)
),

factor as (
    select least(1.0, coalesce(min(available / target_rows), 1.0)) as scale
    from planned
    where target_rows > 0 and available > 0
)

select
    p.category,
    p.target_rows,
    p.available,
    f.scale,
    case getvariable('balance_mode')
        when 'counts' then p.target_rows
        else cast(round(p.target_rows * f.scale) as bigint)
    end as wanted_rows,
    least(p.available, wanted_rows) as selected_rows,
    wanted_rows - selected_rows as shortfall
from planned as p
cross join factor as f
