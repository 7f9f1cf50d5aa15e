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
        -- invisible characters removed (lib/text.py INVISIBLE: format characters, zero-width
        -- space/joiners, BOM, bidi marks, Hangul fillers, braille blank, variation selectors)
        strip_invisible(question) as question_visible
    from source
),

normalized as (
    select
        *,
        -- full-width ASCII and the ideographic space folded to half-width (lib/text.py),
        -- whitespace runs removed, case folded: used only for matching, never sent
        lower(regexp_replace(fold_width(question_visible), '\s+', '', 'g')) as question_norm
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
