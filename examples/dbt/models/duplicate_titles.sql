-- Titles that say the same thing as another one (cosine distance <= 0.05), each next to the
-- title kept for its group
select d.group_id, a.id, a.title, r.title as kept_title
from embed_dedup('{{ ref("articles") }}', 0.05) as d
join {{ ref('articles') }} as a on a.id = d.key
join {{ ref('articles') }} as r on r.id = d.representative
where not d.keep
