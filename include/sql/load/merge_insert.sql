-- load_mode merge: the batch's row of each key goes in (with dedupe_by: unless the target kept a
-- newer row of that key).
INSERT INTO {{ target }} ({{ columns }})
SELECT {{ columns }}
FROM {{ winners }}
{%- if dedupe_by %}
WHERE NOT EXISTS (
    SELECT 1 FROM {{ target }} AS kept
    WHERE {% for key in keys %}kept.{{ key }} = {{ winners }}.{{ key }}{% if not loop.last %} AND {% endif %}{% endfor %}
)
{%- endif %};
