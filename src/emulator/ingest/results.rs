//! The result files of an ended job (`successfulResults/`, `failedResults/` and
//! `unprocessedrecords/`): what became of each uploaded row, as CSV in the job's delimiter
//! and line ending, every value in double quotes.

use super::{Job, RowResult};
use crate::emulator::jobs::csv_line;
use crate::emulator::org::RecordError;

/// `STATUS_CODE:message:fields`, the fields (space-separated) followed by `--`.
pub(super) fn error_text(error: &RecordError) -> String {
    let mut fields = String::new();
    for field in &error.fields {
        fields.push_str(field);
        fields.push(' ');
    }
    format!("{}:{}:{fields}--", error.status_code, error.message)
}

/// Which of a job's result files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResultSet {
    Successful,
    Failed,
    Unprocessed,
}

impl ResultSet {
    /// The CSV of this set for `job`.
    pub(super) fn render(self, job: &Job) -> String {
        let ending = job.format.line_ending();
        let delimiter = job.format.delimiter;
        let mut csv = String::new();
        let leading: &[&str] = match self {
            ResultSet::Successful => &["sf__Id", "sf__Created"],
            ResultSet::Failed => &["sf__Id", "sf__Error"],
            ResultSet::Unprocessed => &[],
        };
        let Some(table) = &job.table else {
            if !leading.is_empty() {
                csv_line(&mut csv, leading.iter().copied(), delimiter, ending);
            }
            return csv;
        };
        let header = table.header.iter().map(String::as_str);
        csv_line(
            &mut csv,
            leading.iter().copied().chain(header),
            delimiter,
            ending,
        );
        let width = table.header.len();
        for (i, row) in table.rows.iter().enumerate() {
            let result = job.results.get(i).unwrap_or(&RowResult::Unprocessed);
            let (first, second): (String, String) = match (self, result) {
                (ResultSet::Successful, RowResult::Succeeded { id, created }) => {
                    (id.clone(), created.to_string())
                }
                (ResultSet::Failed, RowResult::Failed { id, error }) => {
                    (id.clone(), error_text(error))
                }
                (ResultSet::Unprocessed, RowResult::Unprocessed) => (String::new(), String::new()),
                _ => continue,
            };
            let values = (0..width).map(|c| row.values.get(c).map_or("", String::as_str));
            let lead = [first.as_str(), second.as_str()];
            csv_line(
                &mut csv,
                lead[..leading.len()].iter().copied().chain(values),
                delimiter,
                ending,
            );
        }
        csv
    }
}
