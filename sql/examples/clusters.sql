-- Clusters in words (from the latest `adlens batch`), largest first.
SELECT cluster_id, size, array_to_string(top_terms, ', ') AS top_terms, array_to_string(top_domains, ', ') AS top_domains
FROM clusters
ORDER BY size DESC, cluster_id;
