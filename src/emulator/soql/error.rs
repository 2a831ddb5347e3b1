//! Building [`SoqlError`]s with the CRM's codes and message shapes: the query excerpt, a caret
//! under the offending token and `ERROR at Row:r:Column:c`, then the reason.

use super::SoqlError;

pub(crate) const MALFORMED_QUERY: &str = "MALFORMED_QUERY";
pub(crate) const INVALID_FIELD: &str = "INVALID_FIELD";
pub(crate) const INVALID_TYPE: &str = "INVALID_TYPE";
pub(crate) const INVALID_QUERY_FILTER_OPERATOR: &str = "INVALID_QUERY_FILTER_OPERATOR";
pub(crate) const NUMBER_OUTSIDE_VALID_RANGE: &str = "NUMBER_OUTSIDE_VALID_RANGE";

/// Characters of the line shown before the offending token.
const EXCERPT_BEFORE: usize = 35;
/// Characters of the line shown in all.
const EXCERPT_WIDTH: usize = 49;

/// An error located at byte offset `at` of `query`:
/// `\n<excerpt>\n<caret>\nERROR at Row:r:Column:c\n<why>`.
pub(crate) fn located(query: &str, at: usize, code: &'static str, why: &str) -> SoqlError {
    let at = at.min(query.len());
    let line_start = query[..at].rfind('\n').map_or(0, |i| i + 1);
    let line_end = query[at..].find('\n').map_or(query.len(), |i| at + i);
    let row = query[..line_start].matches('\n').count() + 1;
    let line = &query[line_start..line_end];
    let column0 = query[line_start..at].chars().count();
    let start = column0.saturating_sub(EXCERPT_BEFORE);
    let excerpt: String = line.chars().skip(start).take(EXCERPT_WIDTH).collect();
    let caret = format!("{}^", " ".repeat(column0 - start));
    SoqlError {
        error_code: code,
        message: format!(
            "\n{excerpt}\n{caret}\nERROR at Row:{row}:Column:{}\n{why}",
            column0 + 1
        ),
    }
}

/// An error with only a reason, as the CRM reports a query that does not start with SELECT.
pub(crate) fn bare(code: &'static str, why: String) -> SoqlError {
    SoqlError {
        error_code: code,
        message: why,
    }
}

pub(crate) fn no_such_column(field: &str, object: &str) -> String {
    format!(
        "No such column '{field}' on entity '{object}'. If you are attempting to use a custom \
         field, be sure to append the '__c' after the custom field name. Please reference your \
         WSDL or the describe call for the appropriate names."
    )
}

pub(crate) fn unknown_relationship(relationship: &str) -> String {
    format!(
        "Didn't understand relationship '{relationship}' in field path. If you are attempting \
         to use a custom relationship, be sure to append the '__r' after the custom relationship \
         name. Please reference your WSDL or the describe call for the appropriate names."
    )
}

pub(crate) fn unknown_object(object: &str) -> String {
    format!(
        "sObject type '{object}' is not supported. If you are attempting to use a custom \
         object, be sure to append the '__c' after the entity name. Please reference your WSDL \
         or the describe call for the appropriate names."
    )
}

pub(crate) fn wrong_literal(field: &str, type_name: &str, quoted: bool) -> String {
    let should = if quoted {
        "should be enclosed in quotes"
    } else {
        "should not be enclosed in quotes"
    };
    format!(
        "value of filter criterion for field '{field}' must be of type {type_name} and {should}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_a_window_around_a_far_token() {
        let query = "SELECT Id, CreatedById, CreatedDate, LastModifiedById, LastModifiedDate, From Account WHERE Name = 'x'";
        let at = query.find("From").unwrap();
        let e = located(query, at, MALFORMED_QUERY, "unexpected token: 'From'");
        assert_eq!(
            e.message,
            "\nastModifiedById, LastModifiedDate, From Account W\n                                   ^\nERROR at Row:1:Column:74\nunexpected token: 'From'"
        );
    }

    #[test]
    fn rows_count_lines() {
        let e = located("SELECT Id\nFROM Nope", 15, INVALID_TYPE, "why");
        assert_eq!(
            e.message,
            "\nFROM Nope\n     ^\nERROR at Row:2:Column:6\nwhy"
        );
    }
}
