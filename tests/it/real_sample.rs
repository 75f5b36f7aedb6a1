//! The 100 real rows of `campaign-data-2023`: all kept, cleaned as a person would.

use serde_json::{Map, Value, json};

use crate::support::{balanced_counts, preprocess, query, real_sample};

fn cleaned() -> Option<(tempfile::TempDir, Vec<Map<String, Value>>)> {
    let sample = real_sample()?;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("clean");
    preprocess(&sample, &out);
    let counts = balanced_counts(&out);
    assert_eq!(counts["records_in"], 100);
    assert_eq!(counts["rows_out"], 100);
    let rows = query(&out, "SELECT * FROM campaigns ORDER BY campaign_id");
    Some((tmp, rows))
}

fn row(rows: &[Map<String, Value>], id: i64) -> &Map<String, Value> {
    rows.iter()
        .find(|r| r["campaign_id"] == id)
        .unwrap_or_else(|| panic!("campaign {id} kept"))
}

#[test]
fn real_rows_are_cleaned() {
    let Some((_tmp, rows)) = cleaned() else {
        return;
    };
    let fb = row(&rows, 1761259107);
    assert_eq!(
        fb["url"],
        "https://www.facebook.com/profile.php?id=100092435801460"
    );
    assert_eq!(fb["domain"], "facebook.com");
    assert_eq!(fb["title"], "Dreamtraveler FB page");

    let hottopic = row(&rows, 1761258360);
    assert_eq!(hottopic["host"], "www.hottopic.com");
    assert_eq!(hottopic["domain"], "hottopic.com");
    assert!(!hottopic["url"].as_str().unwrap().contains(":443"));

    let video = row(&rows, 1761261845);
    assert_eq!(video["script"], "Devanagari");
    assert_eq!(
        video["keywords"],
        json!([
            "video",
            "sharing",
            "camera phone",
            "video phone",
            "free",
            "upload"
        ])
    );

    assert_eq!(row(&rows, 1761258686)["title"], "Today bet III FB page");
    assert_eq!(
        row(&rows, 1761258728)["title"],
        "Davenport Bridal Dress - Park & Fifth – Park & Fifth Clothing Co"
    );
    assert!(
        row(&rows, 1761256766)
            .get("description")
            .is_none_or(Value::is_null),
        "\"-\" is no description"
    );
    assert_eq!(row(&rows, 1761259731)["domain"], "falkensteiner.com");
    assert_eq!(row(&rows, 1761258458)["domain"], "paintvine.co.nz");
    assert_eq!(row(&rows, 1761259802)["domain"], "generalexcerpts.com");

    let no_tracking = rows.iter().all(|r| {
        let url = r["url"].as_str().unwrap_or_default();
        !url.contains("fbclid")
            && !url.contains("utm_")
            && !url.contains("gclid=")
            && !url.contains("__cft__")
    });
    assert!(no_tracking, "tracking parameters left in real URLs");
    let facebook = rows
        .iter()
        .filter(|r| r["domain"] == "facebook.com")
        .count();
    assert!(
        facebook >= 15,
        "expected the sample's Facebook pages, got {facebook}"
    );
}
