-- materialized: table
-- group: curation
-- description: Every completion with the quality filter's verdict - keep, or the first reason it is dropped (completion not ok, unscored, below the category's min_score, answer not mostly Chinese for a Chinese prompt, identical or near-identical response). The texts stay in `r1_completions` / `prompt_selection`: each is measured in one streaming pass and only the measures are joined, so the model fits a small memory_limit at a million rows.
with scored as (
    select * from scores
),

question_measures as (
    select
        prompt_id,
        length(regexp_replace(question, '[^\x{4E00}-\x{9FFF}]', '', 'g'))
            / greatest(length(question), 1) as question_zh_ratio
    from prompt_selection
),

answer_measures as (
    select
        completion_id,
        prompt_tokens_len,
        reasoning_tokens_len,
        content_tokens_len,
        md5(coalesce(content, '')) as content_md5,
        length(regexp_replace(content, '[^\x{4E00}-\x{9FFF}]', '', 'g'))
            / greatest(length(regexp_replace(content, '[\s\d\p{P}$\\{}^_=+\-*/<>|]', '', 'g')), 1)
            as answer_zh_ratio
    from r1_completions
),

targets as (
    select category, min_score from seed_category_targets
),

near as (
    select * from response_near_duplicates
),

measured as (
    select
        s.*,
        a.prompt_tokens_len,
        a.reasoning_tokens_len,
        a.content_tokens_len,
        t.min_score,
        q.question_zh_ratio,
        a.answer_zh_ratio,
        row_number() over (
            partition by a.content_md5
            order by s.score desc nulls last, s.completion_id
        ) as content_rank,
        n.kept_id as near_duplicate_of
    from scored as s
    join answer_measures as a using (completion_id)
    join question_measures as q using (prompt_id)
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
