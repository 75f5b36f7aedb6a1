-- Drift signal: share of records farther from their centroid than the
-- cluster's training radius, per window and model version. A rising rate means
-- the stream is moving away from what the model was trained on.
SELECT window_start, model_version,
       sum(records) AS records,
       round(CAST(sum(outliers) AS DOUBLE) / sum(records), 4) AS outlier_rate
FROM cluster_windows
GROUP BY window_start, model_version
ORDER BY window_start, model_version;
