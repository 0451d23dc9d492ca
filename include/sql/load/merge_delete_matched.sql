-- load_mode merge: the target's rows of the batch's keys go (with dedupe_by: only those not newer
-- than the batch's row; a row without a dedupe_by value is the oldest).
DELETE FROM {{ target }}
USING {{ winners }}
WHERE {% for key in keys %}{{ target }}.{{ key }} = {{ winners }}.{{ key }}{% if not loop.last %}
  AND {% endif %}{% endfor %}
{%- if dedupe_by %}
  AND ({{ target }}.{{ dedupe_by }} IS NULL OR {{ target }}.{{ dedupe_by }} <= {{ winners }}.{{ dedupe_by }})
{%- endif %};
