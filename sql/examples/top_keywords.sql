-- The most used advertiser keywords (about a quarter of campaigns have any).
SELECT keyword, count(*) AS campaigns
FROM (SELECT unnest(keywords) AS keyword FROM campaigns)
GROUP BY keyword
ORDER BY campaigns DESC, keyword
LIMIT 20;
