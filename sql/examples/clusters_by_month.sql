-- How each cluster rises and falls over the year: assignments joined to campaigns.
SELECT c.month, a.cluster_id, count(*) AS campaigns
FROM assignments a JOIN campaigns c USING (campaign_id)
GROUP BY c.month, a.cluster_id
ORDER BY c.month, campaigns DESC
LIMIT 40;
