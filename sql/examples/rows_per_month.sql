-- Kept campaigns per month, with how many distinct advertisers ran them.
SELECT month, count(*) AS campaigns, count(DISTINCT domain) AS domains
FROM campaigns
GROUP BY month
ORDER BY month;
