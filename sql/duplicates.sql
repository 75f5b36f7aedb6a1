-- Kept records that lose to another kept record with the same campaign_id.
--
-- The newest `created_at` wins; among equal timestamps the first record by
-- source file and line wins, so re-runs drop the same records. Only ids that
-- occur more than once are ranked, which keeps this cheap when duplicates are
-- rare (the grouping reads one column and spills to disk past the memory limit).
SELECT month, source_file, source_line
FROM (
    SELECT
        month,
        source_file,
        source_line,
        row_number() OVER (
            PARTITION BY campaign_id
            ORDER BY created_at DESC, source_file, source_line
        ) AS place
    FROM campaigns
    WHERE campaign_id IN (
        SELECT campaign_id FROM campaigns GROUP BY campaign_id HAVING count(*) > 1
    )
)
WHERE place > 1;
