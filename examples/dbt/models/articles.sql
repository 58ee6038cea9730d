-- every BBC News title embedded with the database's default model (all-MiniLM-L6-v2)
select id, topic, title, embed(title) as v
from {{ ref('bbc_titles') }}
