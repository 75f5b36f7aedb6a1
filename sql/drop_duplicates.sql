-- One month's kept records without the losing duplicates found by
-- `duplicates.sql` (registered as `duplicate_rows`).
SELECT c.*
FROM partition_rows c
WHERE NOT EXISTS (
    SELECT 1
    FROM duplicate_rows d
    WHERE d.source_file = c.source_file AND d.source_line = c.source_line
);
