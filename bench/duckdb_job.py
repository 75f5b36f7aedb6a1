"""The DuckDB peer of `adlens preprocess` for `make bench`.

A simpler job than adlens's (no URL cleaning, language or rejects table), as
a data engineer would write it by hand: read the CSV (ragged rows skipped),
cast id and time, trim the text, take the host with a regex, drop rows
without id, time or title, keep the newest row per id, write one zstd
Parquet file. Usage: duckdb_job.py RAW_CSV OUT_PARQUET
"""

import sys

import duckdb

raw, out = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute(
    f"""
COPY (
    WITH raw AS (
        SELECT * FROM read_csv(?, header = true, all_varchar = true,
                               ignore_errors = true, null_padding = false)
    ),
    typed AS (
        SELECT TRY_CAST(trim(id) AS BIGINT)              AS campaign_id,
               TRY_CAST(trim(creation_time) AS TIMESTAMP) AS created_at,
               trim(url)                                  AS url,
               lower(regexp_extract(url, '^[a-zA-Z]+://([^/?#:]+)', 1)) AS host,
               trim(title)                                AS title,
               trim(keywords)                             AS keywords,
               trim(description)                          AS description
        FROM raw
    )
    SELECT * FROM typed
    WHERE campaign_id IS NOT NULL AND created_at IS NOT NULL
      AND title IS NOT NULL AND title <> ''
    QUALIFY row_number() OVER (PARTITION BY campaign_id ORDER BY created_at DESC) = 1
) TO '{out.replace("'", "''")}' (FORMAT parquet, COMPRESSION zstd)
""",
    [raw],
)
rows = con.execute("SELECT count(*) FROM read_parquet(?)", [out]).fetchone()[0]
print(rows)
