-- materialized: table
-- description: Every completion with the quality filter's verdict - keep, or the first reason it is dropped (completion not ok, unscored, below the category's min_score, answer not mostly Chinese for a Chinese prompt, identical or near-identical response).
with scored as (
    select * from scores
),

completions as (
    select
        c.completion_id,
        p.question as question_text,
        c.reasoning,
        c.content,
        c.prompt_tokens_len,
        c.reasoning_tokens_len,
        c.content_tokens_len
    from r1_completions as c
    join prompt_selection as p using (prompt_id)
),

targets as (
    select category, min_score from seed_category_targets
),

near as (
    select * from response_near_duplicates
),

-- ranked on narrow rows: a window over the full texts would hold them all in memory
content_ranks as (
    select
        s.completion_id,
        row_number() over (
            partition by md5(coalesce(c.content, ''))
            order by s.score desc nulls last, s.completion_id
        ) as content_rank
    from scored as s
    join r1_completions as c using (completion_id)
),

measured as (
    select
        s.*,
        c.question_text,
        c.reasoning,
        c.content,
        c.prompt_tokens_len,
        c.reasoning_tokens_len,
        c.content_tokens_len,
        t.min_score,
        length(regexp_replace(c.question_text, '[^\x{4E00}-\x{9FFF}]', '', 'g'))
            / greatest(length(c.question_text), 1) as question_zh_ratio,
        length(regexp_replace(c.content, '[^\x{4E00}-\x{9FFF}]', '', 'g'))
            / greatest(length(regexp_replace(c.content, '[\s\d\p{P}$\\{}^_=+\-*/<>|]', '', 'g')), 1)
            as answer_zh_ratio,
        r.content_rank,
        n.kept_id as near_duplicate_of
    from scored as s
    join completions as c using (completion_id)
    join content_ranks as r using (completion_id)
    left join targets as t using (category)
    left join near as n on n.duplicate_id = s.completion_id
)

select
    * exclude (content_rank),
    case
        when completion_status <> 'ok' then 'completion ' || completion_status
        when score is null then 'unscored: ' || coalesce(unscored_reason, 'unknown')
        when score < min_score then 'score ' || score || ' below min_score ' || min_score
        when getvariable('min_chinese_ratio') > 0
            and question_zh_ratio >= 0.2
            and answer_zh_ratio < getvariable('min_chinese_ratio') then 'answer not mostly Chinese'
        when content_rank > 1 then 'identical response'
        when near_duplicate_of is not null then 'near-identical response'
    end as drop_reason,
    drop_reason is null as keep
from measured
