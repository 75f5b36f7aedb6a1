-- Why records went to the dead-letter topic, with one example payload each.
SELECT reason, count(*) AS records, min(CAST(kafka_partition AS VARCHAR) || ':' || CAST(kafka_offset AS VARCHAR)) AS first_seen,
       left(min(payload), 120) AS example
FROM dead_letters
GROUP BY reason
ORDER BY records DESC, reason;
