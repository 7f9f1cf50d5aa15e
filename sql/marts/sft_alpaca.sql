-- materialized: view
-- group: curation
-- description: The final dataset in the published SFT schema - output is `sft_output` (the think block, then the answer).
select
    question_text as instruction,
    '' as input,
    sft_output as output,
    repo_name,
    cast(prompt_tokens_len as bigint) as prompt_tokens_len,
    cast(reasoning_tokens_len as bigint) as reasoning_content_tokens_len,
    cast(content_tokens_len as bigint) as content_tokens_len,
    cast(score as bigint) as score
from sft_balanced
order by category, repo_name, completion_id
