-- Why records were not kept, with one example line for each reason.
SELECT reject_reason, count(*) AS records, min(source_file || ':' || CAST(source_line AS VARCHAR)) AS first_seen
FROM rejects
GROUP BY reject_reason
ORDER BY records DESC, reject_reason;
