-- Scripts and languages of the campaigns: the non-English share is kept, not lost.
SELECT coalesce(script, '(none)') AS script, coalesce(lang, '(unsure)') AS lang, count(*) AS campaigns
FROM campaigns
GROUP BY script, lang
ORDER BY campaigns DESC, script, lang
LIMIT 20;
