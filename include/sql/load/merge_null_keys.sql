-- load_mode merge: per file of the batch, staged rows with no value in a merge key column (such a
-- row matches no row, so merging it would add a row per load).
SELECT {{ seq }}, count(*)
FROM {{ staging }}
WHERE {% for key in keys %}{{ key }} IS NULL{% if not loop.last %} OR {% endif %}{% endfor %}
GROUP BY {{ seq }};
