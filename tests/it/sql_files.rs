//! Each file of `sql/` on its own, through the library's session, on rows
//! written inline so every rule's effect is visible here.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;

use adlens::engine::{self, EngineConfig};

async fn session_with(setup: &str) -> SessionContext {
    let ctx = engine::session(&EngineConfig {
        partitions: 2,
        ..EngineConfig::default()
    })
    .unwrap();
    engine::run_statements(&ctx, setup).await.unwrap();
    ctx
}

async fn collect(ctx: &SessionContext, sql: &str) -> Vec<RecordBatch> {
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

fn strings(batches: &[RecordBatch], column: &str) -> Vec<Option<String>> {
    batches
        .iter()
        .flat_map(|b| {
            let array = arrow::compute::cast(
                b.column_by_name(column).unwrap(),
                &arrow::datatypes::DataType::Utf8,
            )
            .unwrap();
            let array = array.as_string::<i32>().clone();
            (0..array.len())
                .map(move |i| array.is_valid(i).then(|| array.value(i).to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn ints(batches: &[RecordBatch], column: &str) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

const RAW_ROWS: &str = "
CREATE TABLE raw_campaigns AS
SELECT column1 AS source_file, CAST(column2 AS BIGINT) AS source_line, CAST(column3 AS INT) AS field_count,
       column4 AS raw_record, column5 AS creation_time, column6 AS id, column7 AS url,
       column8 AS title, column9 AS keywords, column10 AS description
FROM (VALUES
  ('f.csv', 2, 6, NULL, '2023-05-17 20:21:51.822000', '1761259107',
   'https://www.facebook.com/login/?next=https%3A%2F%2Fwww.facebook.com%2F&_fb_noscript=1', 'Dita FB page', '', 'See posts, photos and more on Facebook.'),
  ('f.csv', 3, 5, 'a,b,c,d,e', NULL, NULL, NULL, NULL, NULL, NULL),
  ('f.csv', 4, 6, NULL, '2023-05-17', ' 12 ', 'https://x.example.com/', 'T', '', '-'),
  ('f.csv', 5, 6, NULL, 'yesterday', '13', 'https://x.example.com/', 'T', '', 'd'),
  ('f.csv', 6, 6, NULL, '2023-05-17 20:00:00', '0', 'https://x.example.com/', 'T', '', 'd'),
  ('f.csv', 7, 6, NULL, '2023-05-17 20:00:00', '15', '', '  ', ' , ', '-')
);";

#[tokio::test]
async fn preprocess_sql_judges_every_record_once() {
    let ctx = session_with(RAW_ROWS).await;
    engine::run_statements(&ctx, engine::PREPROCESS_SQL)
        .await
        .unwrap();
    let rows = collect(&ctx, "SELECT * FROM cleaned_campaigns ORDER BY source_line").await;
    assert_eq!(ints(&rows, "source_line"), [2, 3, 4, 5, 6, 7]);
    assert_eq!(
        strings(&rows, "reject_reason"),
        [
            None,
            Some("ragged_row".into()),
            None,
            Some("bad_timestamp".into()),
            Some("bad_id".into()),
            Some("empty_text".into())
        ]
    );
    assert_eq!(
        strings(&rows, "url")[0].as_deref(),
        Some("https://www.facebook.com/")
    );
    assert_eq!(strings(&rows, "domain")[0].as_deref(), Some("facebook.com"));
    assert_eq!(strings(&rows, "month")[2].as_deref(), Some("2023-05"));
    assert_eq!(
        strings(&rows, "description")[2],
        None,
        "\"-\" is no description"
    );
    assert_eq!(strings(&rows, "raw_text")[1].as_deref(), Some("a,b,c,d,e"));
    assert_eq!(
        strings(&rows, "raw_text")[0],
        None,
        "kept rows carry no raw text"
    );
}

const CAMPAIGNS: &str = "
CREATE TABLE campaigns AS
SELECT CAST(column1 AS BIGINT) AS campaign_id, CAST(column2 AS TIMESTAMP(6)) AS created_at,
       column3 AS source_file, CAST(column4 AS BIGINT) AS source_line, column5 AS month
FROM (VALUES
  (1, '2023-01-05 10:00:00', 'a.csv', 2, '2023-01'),
  (1, '2023-02-05 10:00:00', 'a.csv', 9, '2023-02'),
  (2, '2023-01-06 10:00:00', 'a.csv', 3, '2023-01'),
  (2, '2023-01-06 10:00:00', 'a.csv', 4, '2023-01'),
  (2, '2023-01-06 10:00:00', 'b.csv', 1, '2023-01'),
  (3, '2023-01-07 10:00:00', 'a.csv', 5, '2023-01')
);";

#[tokio::test]
async fn duplicates_sql_keeps_the_newest_then_the_first() {
    let ctx = session_with(CAMPAIGNS).await;
    let losers = collect(
        &ctx,
        &format!(
            "SELECT * FROM ({}) ORDER BY source_file, source_line",
            engine::DUPLICATES_SQL.trim_end_matches([';', '\n'])
        ),
    )
    .await;
    let keys: Vec<(String, i64)> = strings(&losers, "source_file")
        .into_iter()
        .map(Option::unwrap)
        .zip(ints(&losers, "source_line"))
        .collect();
    assert_eq!(
        keys,
        [
            ("a.csv".to_string(), 2),
            ("a.csv".to_string(), 4),
            ("b.csv".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn drop_duplicates_sql_removes_exactly_the_losers() {
    let setup = "
        CREATE TABLE partition_rows AS SELECT * FROM (VALUES ('a.csv', 2, 'x'), ('a.csv', 3, 'y'), ('b.csv', 2, 'z')) AS t(source_file, source_line, title);
        CREATE TABLE duplicate_rows AS SELECT * FROM (VALUES ('a.csv', 2), ('b.csv', 7)) AS t(source_file, source_line);";
    let ctx = session_with(setup).await;
    let kept = collect(
        &ctx,
        engine::DROP_DUPLICATES_SQL.trim_end_matches([';', '\n']),
    )
    .await;
    let mut titles: Vec<_> = strings(&kept, "title")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    titles.sort();
    assert_eq!(titles, ["y", "z"]);
}
