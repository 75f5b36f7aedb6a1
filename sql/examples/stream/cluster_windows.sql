-- Messages per cluster per window, as the stream saw them (adlens sql --data data/stream).
-- Each process writes its own rows at every checkpoint, so a window's rows are summed.
SELECT window_start, cluster_id, model_version,
       sum(records) AS records,
       sum(outliers) AS outliers,
       round(sum(distance_sum) / sum(records), 4) AS mean_distance
FROM cluster_windows
GROUP BY window_start, cluster_id, model_version
ORDER BY window_start DESC, records DESC
LIMIT 50;
