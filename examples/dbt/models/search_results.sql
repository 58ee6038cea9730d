-- depends_on: {{ ref('articles_index') }}
-- The five titles nearest to a text query, through the saved index
select s.rank, s.distance, a.topic, a.title
from embed_search('articles_index', '{{ var("query") }}', k := 5) as s
join {{ ref('articles') }} as a on a.id = s.key
order by s.rank
