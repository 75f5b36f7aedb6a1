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
SELECT column1 AS source_file, 0 AS source_input, CAST(column2 AS BIGINT) AS source_line, CAST(column3 AS INT) AS field_count,
       column4 AS raw_record, CAST(NULL AS VARCHAR) AS read_error, column5 AS creation_time, column6 AS id, column7 AS url,
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

/// [`RAW_ROWS`] with `sql/preprocess.sql` loaded over them.
async fn cleaning_session() -> SessionContext {
    let ctx = session_with(RAW_ROWS).await;
    engine::run_statements(&ctx, engine::PREPROCESS_SQL)
        .await
        .unwrap();
    ctx
}

#[tokio::test]
async fn preprocess_sql_judges_every_record_once() {
    let ctx = cleaning_session().await;
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

/// `script` and `lang` are two fields of one `campaign_tags` call: the
/// plan runs the language detector once per row, not once per field.
#[tokio::test]
async fn preprocess_sql_tags_each_row_once() {
    let ctx = cleaning_session().await;
    let plan = ctx
        .table(engine::CLEANED_VIEW)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    assert_eq!(shown.matches("campaign_tags(").count(), 1, "{shown}");
    let rows = collect(&ctx, "SELECT * FROM cleaned_campaigns ORDER BY source_line").await;
    let latin = Some("Latin".to_string());
    assert_eq!(
        strings(&rows, "script"),
        [
            latin.clone(),
            None,
            latin.clone(),
            latin.clone(),
            latin,
            None
        ]
    );
    // Facebook's description is its own English: the title alone is too
    // short to tell.
    assert_eq!(strings(&rows, "lang")[0], None);
}

/// `month_of` (the `month` column) is `to_char(t, '%Y-%m')` for every
/// timestamp: before the epoch, in year 1, past year 9999 and before year
/// 0 too, and NULL for NULL.
#[tokio::test]
async fn month_of_is_the_year_and_month_of_to_char() {
    let ctx = session_with("SELECT 1").await;
    let micros = [
        "0",
        "-1",
        "1675209599000000",
        "-62135596800000000",
        "253402300799999999",
        "253402300800000000",
        "-100000000000000000",
        "NULL",
    ];
    let values: Vec<String> = micros.iter().map(|m| format!("({m})")).collect();
    let sql = format!(
        "SELECT month_of(t) AS ours, to_char(t, '%Y-%m') AS theirs FROM \
         (SELECT to_timestamp_micros(CAST(column1 AS BIGINT)) AS t FROM (VALUES {}))",
        values.join(", ")
    );
    let rows = collect(&ctx, &sql).await;
    let ours = strings(&rows, "ours");
    assert_eq!(ours, strings(&rows, "theirs"));
    assert_eq!(ours.len(), micros.len());
    assert_eq!(ours[1].as_deref(), Some("1969-12"));
    assert_eq!(ours[2].as_deref(), Some("2023-01"));
    assert_eq!(ours[7], None);
    // Other types are coerced or refused when planned, never a panic.
    let nothing = collect(&ctx, "SELECT month_of(NULL) AS m").await;
    assert_eq!(strings(&nothing, "m"), [None]);
    let text = ctx.sql("SELECT month_of('soon') AS m").await;
    let refused = match text {
        Ok(frame) => frame.collect().await.is_err(),
        Err(_) => true,
    };
    assert!(refused, "a text is not a timestamp");
}

/// `nonblank(x)` (the `raw_url` column) is `nullif(trim(x), '')`: spaces off
/// the edges only, NULL for nothing left; for text stored as `Utf8` and as
/// `Utf8View`.
#[tokio::test]
async fn nonblank_is_nullif_of_trim() {
    let ctx = session_with("SELECT 1").await;
    for text_type in ["Utf8", "Utf8View"] {
        let sql = format!(
            "SELECT nonblank(x) AS ours, nullif(trim(x), '') AS theirs FROM \
             (SELECT arrow_cast(column1, '{text_type}') AS x FROM (VALUES \
             ('https://a.io/'), (' https://a.io/ '), (''), ('   '), (NULL), (' \tb\t '), ('c')))"
        );
        let rows = collect(&ctx, &sql).await;
        let ours = strings(&rows, "ours");
        assert_eq!(ours, strings(&rows, "theirs"), "{text_type}");
        assert_eq!(ours[1].as_deref(), Some("https://a.io/"));
        assert_eq!(ours[5].as_deref(), Some("\tb\t"));
        assert_eq!(&ours[2..5], &[None, None, None]);
    }
}
