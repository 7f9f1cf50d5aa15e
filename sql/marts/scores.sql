-- materialized: table
-- group: scoring
-- description: One row per completion with its final score (0-10) and where it came from - math_verify (10 correct / 0 incorrect), judge_correctness (10/0 from the judge when Math-Verify could not decide) or judge_quality (0-10) - plus the sub-scores, and why a row has no score.
with completions as (
    select * from r1_completions
),

prompts as (
    select prompt_id, category, repo_name, scoring
    from prompt_selection
),

verified as (
    select * from verifications
),

judged as (
    select * from judge_scores
),

joined as (
    select
        c.completion_id,
        c.prompt_id,
        c.source_key,
        p.repo_name,
        p.category,
        p.scoring,
        c.status as completion_status,
        v.status as verify_status,
        case v.status when 'correct' then 10 when 'incorrect' then 0 end as verifier_score,
        j.judge_kind,
        j.status as judge_status,
        j.score as judge_score,
        j.harmlessness,
        j.helpfulness,
        j.correctness,
        j.reason as judge_reason
    from completions as c
    join prompts as p using (prompt_id)
    left join verified as v using (completion_id)
    left join judged as j using (completion_id)
)

select
    *,
    case
        when completion_status <> 'ok' then null
        when verifier_score is not null then verifier_score
        when judge_status = 'scored' then judge_score
    end as score,
    case
        when completion_status <> 'ok' then null
        when verifier_score is not null then 'math_verify'
        when judge_status = 'scored' then 'judge_' || judge_kind
    end as score_source,
    case
        when completion_status <> 'ok' then 'completion ' || completion_status
        when verifier_score is not null or judge_status = 'scored' then null
        when judge_status is not null then 'judge ' || judge_status
        when scoring = 'math_verify' and verify_status is null then 'not verified yet'
        else 'not judged yet'
    end as unscored_reason
from joined
