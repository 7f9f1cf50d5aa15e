-- materialized: table
-- group: scoring
-- partitioned_by: source_key
-- description: Completions the judge must score, and with which judge - `correctness` (10/0 against the reference) for Math/Exam rows Math-Verify could not decide, `quality` (0-10) for STEM/General rows and for Math/Exam rows without a reference, plus a seeded audit sample of verifier-decided rows so verifier/judge disagreement is measurable. The answer and reasoning stay in `r1_completions` (join on completion_id): copying them here would rewrite a gigabyte of text per run.
with completions as (
    select completion_id, source_key, prompt_id from r1_completions
    where status = 'ok'
),

prompts as (
    select prompt_id, category, repo_name, question, gold_answer, scoring
    from prompt_selection
),

verified as (
    select completion_id, status as verify_status, gold_normalized
    from verifications
),

routed as (
    select
        c.completion_id,
        c.source_key,
        c.prompt_id,
        p.category,
        p.repo_name,
        p.question,
        coalesce(v.gold_normalized, p.gold_answer) as reference_answer,
        v.verify_status,
        case
            when p.scoring = 'judge_quality' then 'quality'
            when p.gold_answer is null then 'quality'
            when v.verify_status in ('unextractable', 'timeout', 'error', 'no_gold') then 'correctness'
            when v.verify_status in ('correct', 'incorrect')
                and ('0x' || left(md5(c.completion_id || ':audit'), 8))::bigint / 4294967296.0
                    < getvariable('judge_audit_fraction')
                then 'correctness'
        end as judge_kind,
        v.verify_status in ('correct', 'incorrect') as is_audit
    from completions as c
    join prompts as p using (prompt_id)
    left join verified as v using (completion_id)
)

select * from routed
where judge_kind is not null
