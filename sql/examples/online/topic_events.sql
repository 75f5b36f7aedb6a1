-- Births and deaths of the online topics (`adlens stream --online`), in the
-- order they happened: a topic is born when it first holds --min-topic-size
-- records and dies when no campaign uses it any more (its micro-batches
-- forgotten). `size`: records when born, the most it ever held when it died.
SELECT batch, event, cluster_id, size, label
FROM topic_events
ORDER BY batch, event DESC, cluster_id;
