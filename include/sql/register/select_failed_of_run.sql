-- The files a run claimed and failed, newest failure first: a cleared step of that run resumes them.
SELECT file_id
FROM {{ register }}
WHERE file_type = %(file_type)s
  AND status = 'FAILED'
  AND run_id = %(run_id)s
ORDER BY finished_at DESC, file_id;
