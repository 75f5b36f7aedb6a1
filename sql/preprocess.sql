-- The cleaning rules of adlens.
--
-- Shared by `adlens preprocess` (over a raw CSV dump) and `adlens stream` (over
-- each Kafka micro-batch): both register their records as `raw_campaigns`
-- (every field as text, plus lineage; see `record::raw_schema`) and read the
-- `cleaned_campaigns` view below. It yields exactly one row per input record:
-- `reject_reason` is NULL for the records that are kept, and names the first
-- rule a record breaks otherwise.
--
-- The Rust UDFs (`canonical_url`, `url_host`, `registered_domain`,
-- `normalize_text`, `split_keywords`, `campaign_tags`) are
-- documented in `src/clean/`; `nonblank` (`nullif(trim(x), '')` without
-- copying what has no edge spaces) and `month_of` (the `YYYY-MM` of a
-- timestamp) in `src/engine/udfs.rs`.
CREATE OR REPLACE VIEW cleaned_campaigns AS
WITH typed AS (
    SELECT
        source_file,
        source_input,
        source_line,
        field_count,
        raw_record,
        read_error,
        creation_time                                  AS in_creation_time,
        id                                             AS in_id,
        url                                            AS in_url,
        title                                          AS in_title,
        keywords                                       AS in_keywords,
        description                                    AS in_description,
        try_cast(trim(id) AS BIGINT)                   AS campaign_id,
        try_cast(trim(creation_time) AS TIMESTAMP(6))  AS created_at,
        nonblank(url)                                  AS raw_url,
        canonical_url(url)                             AS url,
        normalize_text(title)                          AS title,
        split_keywords(keywords)                       AS keywords,
        -- "-" is the dump's placeholder for "no description".
        nullif(normalize_text(description), '-')       AS description
    FROM raw_campaigns
),
judged AS (
    SELECT
        *,
        CASE
            -- Records the CSV reader could not split (`unbalanced_quote`,
            -- `bad_encoding`, `field_too_large`): their fields are NULL.
            WHEN read_error IS NOT NULL THEN read_error
            WHEN field_count <> 6 THEN 'ragged_row'
            WHEN campaign_id IS NULL OR campaign_id <= 0 THEN 'bad_id'
            -- Timestamps outside the plausible range are typos or epoch zeros.
            WHEN created_at IS NULL
              OR created_at < TIMESTAMP '2000-01-01 00:00:00'
              OR created_at >= TIMESTAMP '2100-01-01 00:00:00' THEN 'bad_timestamp'
            WHEN title IS NULL AND description IS NULL AND cardinality(keywords) = 0 THEN 'empty_text'
        END AS reject_reason
    FROM typed
)
SELECT
    campaign_id,
    created_at,
    raw_url,
    url,
    url_host(url)                                      AS host,
    registered_domain(url_host(url))                   AS domain,
    title,
    keywords,
    description,
    -- The title's script (the description's without a title), and the
    -- language: the title's script where it is certain, else the detector
    -- over title and description (title alone on platforms whose
    -- descriptions are their own boilerplate). One function computes both,
    -- once per row: see `campaign_tags` in `src/clean/lang.rs`.
    campaign_tags(title, description, registered_domain(url_host(url)))['script'] AS script,
    campaign_tags(title, description, registered_domain(url_host(url)))['lang']   AS lang,
    month_of(created_at)                               AS month,
    source_file,
    source_input,
    source_line,
    reject_reason,
    -- The record as read, bounded, for the rejects table only.
    CASE WHEN reject_reason IS NOT NULL THEN
        left(coalesce(raw_record, concat_ws(',', in_creation_time, in_id, in_url, in_title, in_keywords, in_description)), 2000)
    END                                                AS raw_text
FROM judged;
