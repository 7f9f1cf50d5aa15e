-- materialized: view
-- group: curation
-- description: The final dataset as chat messages (user question, assistant turn with the think block), for chat-template trainers.
select
    [
        {'role': 'user', 'content': question_text},
        {'role': 'assistant', 'content': sft_output}
    ] as messages,
    repo_name,
    category,
    cast(score as bigint) as score
from sft_balanced
order by category, repo_name, completion_id
