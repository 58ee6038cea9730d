-- depends_on: {{ ref('articles') }}
-- One row: how many titles the named index `articles_index` holds. The first run builds it
-- and saves it (path :=); a run with --vars '{reuse_index: true}' opens the saved file, which
-- answers for `articles` as long as the table has the same rows (else it refuses as stale).
{% if var('reuse_index', false) %}
select embed_load_index('articles_index', '{{ var("index_path") }}') as titles_indexed
{% else %}
select embed_create_index('articles_index', '{{ ref("articles") }}',
                          path := '{{ var("index_path") }}') as titles_indexed
{% endif %}
