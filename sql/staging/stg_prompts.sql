-- materialized: table
-- group: selection
-- description: Every loaded prompt with normalized text for matching, its category settings and the exact text that will be sent to R1.
with source as (
    select * from raw_prompts
),

categories as (
    select * from seed_category_targets
),

cleaned as (
    select
        *,
        -- what is sent: zero-width characters and the BOM removed (lib/text.py SENT_INVISIBLE, frozen:
        -- the sent text is part of every request hash)
        strip_sent_invisible(question) as question_visible
    from source
),

normalized as (
    select
        *,
        -- for matching only, never sent: every invisible character removed (lib/text.py INVISIBLE),
        -- full-width ASCII folded to half-width, whitespace runs removed, case folded
        lower(regexp_replace(fold_width(strip_invisible(question)), '\s+', '', 'g')) as question_norm
    from cleaned
)

select
    n.prompt_id,
    n.source_key,
    n.repo_name,
    n.subset,
    n.category,
    n.question,
    n.question_norm,
    md5(n.question_norm) as dedup_key,
    n.gold_answer,
    n.gold_format,
    c.append_math_suffix,
    c.scoring,
    case
        when c.append_math_suffix then trim(n.question_visible) || chr(10) || getvariable('math_suffix')
        else trim(n.question_visible)
    end as prompt_text,
    length(n.question) as question_chars,
    n.native_id,
    n.source_file,
    n.source_line,
    n.loaded_at
from normalized as n
left join categories as c using (category)
