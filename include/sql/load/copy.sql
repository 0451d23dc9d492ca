{# COPY of one object or manifest (AWS "COPY parameter reference"), built by redshift_ingest.copy_sql:
   identifiers come quoted; every value is a %(name)s parameter, named in `bound` when the file type sets
   it; `flags` are the options without a value that it sets. -#}
COPY {{ table }}{% if columns %} ({{ columns }}){% endif %}
FROM %(copy_from)s
IAM_ROLE %(iam_role)s
{%- if format in ("parquet", "orc") %}
FORMAT AS {{ format | upper }}
{%- elif format == "json" %}
FORMAT AS JSON %(json_paths)s
{%- else %}
{%- if format == "csv" %}
FORMAT AS CSV
{%- if "quote" in bound %}
QUOTE AS %(quote)s
{%- endif %}
{%- endif %}
{%- if "delimiter" in bound %}
DELIMITER %(delimiter)s
{%- endif %}
{%- if ignore_header %}
IGNOREHEADER {{ ignore_header }}
{%- endif %}
{%- endif %}
{%- if manifest %}
MANIFEST
{%- endif %}
{%- if compression %}
{{ compression | upper }}
{%- endif %}
{%- if "null_as" in bound %}
NULL AS %(null_as)s
{%- endif %}
{%- if "empty_as_null" in flags %}
EMPTYASNULL
{%- endif %}
{%- if "blanks_as_null" in flags %}
BLANKSASNULL
{%- endif %}
{%- if "date_format" in bound %}
DATEFORMAT %(date_format)s
{%- endif %}
{%- if "time_format" in bound %}
TIMEFORMAT %(time_format)s
{%- endif %}
{%- if "accept_inv_chars" in bound %}
ACCEPTINVCHARS AS %(accept_inv_chars)s
{%- endif %}
{%- if "truncate_columns" in flags %}
TRUNCATECOLUMNS
{%- endif %}
{%- if "region" in bound %}
REGION %(region)s
{%- endif %}
MAXERROR {{ max_error }}
