//! The one vocabulary of reasons a record is not kept, shared by the rejects
//! table of `preprocess` and the dead letters of `stream`. Each reason's
//! meaning is documented in `data/README.md`; the cleaning SQL names the
//! rule-based ones by the same strings (a test checks that every reason the
//! SQL can produce is one of these).

use serde::{Deserialize, Serialize};

/// Why a record was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// A quoted field ran past the end of its line and the record came out
    /// with the wrong number of fields: the line is rejected, the next line
    /// is read as a record of its own.
    UnbalancedQuote,
    /// Bytes that are not UTF-8.
    BadEncoding,
    /// A field over 1 MiB, or a line over 8 MiB.
    FieldTooLarge,
    /// Not the six fields.
    RaggedRow,
    /// `id` missing, not a whole number, or not positive.
    BadId,
    /// `creation_time` unreadable or outside 2000-2099.
    BadTimestamp,
    /// No title, keywords or description.
    EmptyText,
    /// A cleaning rule failed on the record's values (a bug in adlens, kept
    /// as data instead of ending the run).
    RuleFailed,
    /// Stream only: the message is not a JSON object.
    BadJson,
    /// Stream only: the JSON object lacks one of the six fields.
    MissingFields,
    /// Stream only: the message is over `--max-message-bytes`.
    TooLarge,
    /// Stream only (`--format csv`): not exactly one CSV record.
    BadCsv,
}

impl RejectReason {
    /// Every reason, in the order the README lists them.
    pub const ALL: [RejectReason; 12] = [
        Self::UnbalancedQuote,
        Self::BadEncoding,
        Self::FieldTooLarge,
        Self::RaggedRow,
        Self::BadId,
        Self::BadTimestamp,
        Self::EmptyText,
        Self::RuleFailed,
        Self::BadJson,
        Self::MissingFields,
        Self::TooLarge,
        Self::BadCsv,
    ];

    /// The name stored in tables and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnbalancedQuote => "unbalanced_quote",
            Self::BadEncoding => "bad_encoding",
            Self::FieldTooLarge => "field_too_large",
            Self::RaggedRow => "ragged_row",
            Self::BadId => "bad_id",
            Self::BadTimestamp => "bad_timestamp",
            Self::EmptyText => "empty_text",
            Self::RuleFailed => "rule_failed",
            Self::BadJson => "bad_json",
            Self::MissingFields => "missing_fields",
            Self::TooLarge => "too_large",
            Self::BadCsv => "bad_csv",
        }
    }

    /// The reason named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for reason in RejectReason::ALL {
            assert_eq!(RejectReason::parse(reason.as_str()), Some(reason));
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                serde_json::Value::String(reason.as_str().into())
            );
        }
    }

    #[test]
    fn every_reason_the_cleaning_sql_gives_is_in_the_vocabulary() {
        let sql = crate::engine::PREPROCESS_SQL;
        for quoted in sql.split("THEN '").skip(1) {
            let name = quoted.split('\'').next().unwrap_or_default();
            assert!(
                RejectReason::parse(name).is_some(),
                "`{name}` is not a RejectReason"
            );
        }
    }
}
