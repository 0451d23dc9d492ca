-- load_mode merge: per file, rows that tie for newest of their key (the same file, and the same
-- dedupe_by value or no dedupe_by): nothing says which one to keep. Returns (file seq, rows, one key).
SELECT {{ seq }}, count(*), min({% for key in keys %}CAST({{ key }} AS VARCHAR(256)){% if not loop.last %} || ', ' || {% endif %}{% endfor %})
FROM (
    SELECT {{ seq }}, {{ keys | join(', ') }}, rnk,
           count(*) OVER (PARTITION BY {{ keys | join(', ') }}, rnk) AS peers
    FROM (
        SELECT {{ seq }}, {{ keys | join(', ') }},
               RANK() OVER (
                   {% include 'load/merge_newest_first.sqlpart' %}
               ) AS rnk
        FROM {{ staging }}
    ) AS ranked
) AS counted
WHERE rnk = 1 AND peers > 1
GROUP BY {{ seq }};
