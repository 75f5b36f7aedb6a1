//! The cleaning rules as plain Rust functions. SQL reaches them through the
//! scalar UDFs in [`crate::engine`]; nothing else should re-implement them.

pub mod lang;
pub mod text;
mod trigrams;
pub mod url;

/// The titles and descriptions of 3,000 generated records (dirty ones
/// included; records without six fields skipped), for tests that compare two
/// implementations of a rule over realistic text.
#[cfg(test)]
fn generated_titles_and_descriptions(seed: u64) -> Vec<(String, String)> {
    let mut generator = crate::generate::Generator::new(crate::generate::GeneratorConfig {
        rows: 3_000,
        seed,
        dirty_rate: 0.02,
    });
    let mut texts = Vec::new();
    while let Some(record) = generator.next_record() {
        if let [_, _, _, title, _, description] = record.fields.as_slice() {
            texts.push((title.clone(), description.clone()));
        }
    }
    texts
}
