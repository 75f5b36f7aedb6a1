-- The advertisers (registered domains) with the most campaigns.
SELECT domain, count(*) AS campaigns, count(DISTINCT host) AS hosts
FROM campaigns
WHERE domain IS NOT NULL
GROUP BY domain
ORDER BY campaigns DESC, domain
LIMIT 15;
