-- Campaigns that land on Facebook pages, once their login redirects are unwrapped.
SELECT url, count(*) AS campaigns
FROM campaigns
WHERE domain = 'facebook.com'
GROUP BY url
ORDER BY campaigns DESC, url
LIMIT 10;
