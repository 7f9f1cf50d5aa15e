-- materialized: view
-- group: curation
-- description: The final dataset in the published raw schema (input, content, reasoning_content, repo_name, token lengths, score).
select
    question_text as input,
    content,
    reasoning as reasoning_content,
    repo_name,
    cast(prompt_tokens_len as bigint) as prompt_tokens_len,
    cast(reasoning_tokens_len as bigint) as reasoning_content_tokens_len,
    cast(content_tokens_len as bigint) as content_tokens_len,
    cast(score as bigint) as score
from sft_balanced
order by category, repo_name, completion_id
