-- Every registered object version of a bucket (reconcile: what the listing has that the register lacks).
SELECT s3_key, etag, status FROM {{ register }} WHERE bucket = %(bucket)s;
