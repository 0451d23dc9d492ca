-- Every file a run claimed that still names it (whatever its status), in load order: what its
-- failure handler marks and what a cleared task of the run resumes.
SELECT file_id
FROM {{ register }}
WHERE file_type = %(file_type)s
  AND run_id = %(run_id)s
ORDER BY last_modified, registered_at, file_id;
