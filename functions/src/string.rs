//! String functions where Tableau's rules differ from DataFusion's built-ins. Positions and
//! lengths count characters, from 1; a NULL argument gives NULL.
//!
//! - `LEFT`/`RIGHT` with a negative length are NULL; lengths with a fraction are truncated.
//! - `MID` starting before the first character starts at it; past the end it is `""`.
//! - `FIND(s, sub[, start])` is 0 when `sub` is absent; an empty `sub` is found at `start`.
//! - `SPLIT(s, delimiter, n)` counts tokens from the right when `n` is negative; a token past
//!   the last is `""`.
//! - `REPLACE` with an empty pattern returns the string unchanged (DataFusion's would insert
//!   the replacement between every character).

use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::ScalarUDF;

use crate::kernel::{Arg, Rows, TableauUdf, done};

/// The string functions.
pub fn udfs() -> Vec<ScalarUDF> {
    use Arg::{Int, Text};
    vec![
        TableauUdf::udf("tableau_left", &[&[Text, Int]], DataType::Utf8, left),
        TableauUdf::udf("tableau_right", &[&[Text, Int]], DataType::Utf8, right),
        TableauUdf::udf("tableau_mid", &[&[Text, Int], &[Text, Int, Int]], DataType::Utf8, mid),
        TableauUdf::udf(
            "tableau_find",
            &[&[Text, Text], &[Text, Text, Int]],
            DataType::Int64,
            find,
        ),
        TableauUdf::udf("tableau_findnth", &[&[Text, Text, Int]], DataType::Int64, findnth),
        TableauUdf::udf("tableau_split", &[&[Text, Text, Int]], DataType::Utf8, split),
        TableauUdf::udf("tableau_replace", &[&[Text, Text, Text]], DataType::Utf8, replace),
        TableauUdf::udf("tableau_proper", &[&[Text]], DataType::Utf8, proper),
    ]
}

/// The first `n` characters of `s`; `None` when `n` is negative.
pub fn left_chars(s: &str, n: i64) -> Option<String> {
    let n = usize::try_from(n).ok()?;
    Some(s.chars().take(n).collect())
}

/// The last `n` characters of `s`; `None` when `n` is negative.
pub fn right_chars(s: &str, n: i64) -> Option<String> {
    let n = usize::try_from(n).ok()?;
    let skip = s.chars().count().saturating_sub(n);
    Some(s.chars().skip(skip).collect())
}

/// `length` characters (all when `None`) from position `start`.
pub fn mid_chars(s: &str, start: i64, length: Option<i64>) -> Option<String> {
    let skip = usize::try_from(start.max(1) - 1).unwrap_or(usize::MAX);
    let rest = s.chars().skip(skip);
    match length {
        None => Some(rest.collect()),
        Some(n) => Some(rest.take(usize::try_from(n).ok()?).collect()),
    }
}

/// Position (from 1) of the first `sub` at or after position `start`, 0 when there is none.
pub fn find_chars(s: &str, sub: &str, start: i64) -> i64 {
    let skip = usize::try_from(start.max(1) - 1).unwrap_or(usize::MAX);
    let Some((byte, _)) = s
        .char_indices()
        .nth(skip)
        .or_else(|| (skip == s.chars().count()).then_some((s.len(), ' ')))
    else {
        return 0;
    };
    match s[byte..].find(sub) {
        Some(at) => (s[..byte + at].chars().count() + 1) as i64,
        None => 0,
    }
}

/// Position (from 1) of the `n`th `sub` in `s` (occurrences may overlap), 0 when there is none.
pub fn findnth_chars(s: &str, sub: &str, n: i64) -> i64 {
    if n < 1 {
        return 0;
    }
    let mut position = 0;
    for _ in 0..n {
        position = find_chars(s, sub, position + 1);
        if position == 0 {
            return 0;
        }
    }
    position
}

/// Token `n` of `s` split on `delimiter`: from the left when `n` > 0, from the right when `n` < 0;
/// `""` past the last token, `None` for token 0.
pub fn split_token(s: &str, delimiter: &str, n: i64) -> Option<String> {
    let tokens: Vec<&str> = if delimiter.is_empty() {
        vec![s]
    } else {
        s.split(delimiter).collect()
    };
    let index = match n {
        0 => return None,
        n if n > 0 => usize::try_from(n - 1).ok(),
        n => tokens.len().checked_sub(usize::try_from(n.unsigned_abs()).ok()?),
    };
    Some(index.and_then(|i| tokens.get(i)).copied().unwrap_or("").to_string())
}

/// Each word capitalised, its other letters in lower case; anything not a letter or digit
/// separates words.
pub fn proper_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut word_start = true;
    for c in s.chars() {
        if word_start {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        word_start = !c.is_alphanumeric();
    }
    out
}

fn left(rows: &Rows) -> Result<ArrayRef> {
    let out: StringArray = (0..rows.len)
        .map(|r| left_chars(rows.text(0, r)?, rows.int(1, r)?))
        .collect();
    done(out)
}

fn right(rows: &Rows) -> Result<ArrayRef> {
    let out: StringArray = (0..rows.len)
        .map(|r| right_chars(rows.text(0, r)?, rows.int(1, r)?))
        .collect();
    done(out)
}

fn mid(rows: &Rows) -> Result<ArrayRef> {
    let out: StringArray = (0..rows.len)
        .map(|r| {
            let length = if rows.has(2) { Some(rows.int(2, r)?) } else { None };
            mid_chars(rows.text(0, r)?, rows.int(1, r)?, length)
        })
        .collect();
    done(out)
}

fn find(rows: &Rows) -> Result<ArrayRef> {
    let out: Int64Array = (0..rows.len)
        .map(|r| {
            let start = if rows.has(2) { rows.int(2, r)? } else { 1 };
            Some(find_chars(rows.text(0, r)?, rows.text(1, r)?, start))
        })
        .collect();
    done(out)
}

fn findnth(rows: &Rows) -> Result<ArrayRef> {
    let out: Int64Array = (0..rows.len)
        .map(|r| Some(findnth_chars(rows.text(0, r)?, rows.text(1, r)?, rows.int(2, r)?)))
        .collect();
    done(out)
}

fn split(rows: &Rows) -> Result<ArrayRef> {
    let out: StringArray = (0..rows.len)
        .map(|r| split_token(rows.text(0, r)?, rows.text(1, r)?, rows.int(2, r)?))
        .collect();
    done(out)
}

fn replace(rows: &Rows) -> Result<ArrayRef> {
    let out: StringArray = (0..rows.len)
        .map(|r| {
            let (s, from, to) = (rows.text(0, r)?, rows.text(1, r)?, rows.text(2, r)?);
            Some(if from.is_empty() {
                s.to_string()
            } else {
                s.replace(from, to)
            })
        })
        .collect();
    done(out)
}

fn proper(rows: &Rows) -> Result<ArrayRef> {
    let out: StringArray = (0..rows.len).map(|r| rows.text(0, r).map(proper_case)).collect();
    done(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_right_count_characters_and_refuse_negative_lengths() {
        assert_eq!(left_chars("TECHNOLOGY", 6).as_deref(), Some("TECHNO"));
        assert_eq!(left_chars("día", 2).as_deref(), Some("dí"));
        assert_eq!(left_chars("abc", 10).as_deref(), Some("abc"));
        assert_eq!(left_chars("abc", 0).as_deref(), Some(""));
        assert_eq!(left_chars("abc", -2), None);
        assert_eq!(right_chars("Data", 2).as_deref(), Some("ta"));
        assert_eq!(right_chars("año", 2).as_deref(), Some("ño"));
        assert_eq!(right_chars("abc", 9).as_deref(), Some("abc"));
        assert_eq!(right_chars("abc", -1), None);
    }

    #[test]
    fn mid_clamps_the_start_and_runs_out_to_empty() {
        assert_eq!(mid_chars("CLAMP ON LAMPS", 6, None).as_deref(), Some(" ON LAMPS"));
        assert_eq!(mid_chars("CD-R MEDIA", 2, Some(4)).as_deref(), Some("D-R "));
        assert_eq!(mid_chars("two", -2, Some(6)).as_deref(), Some("two"));
        assert_eq!(mid_chars("DVD", 6, None).as_deref(), Some(""));
        assert_eq!(mid_chars("nine", 4, Some(9)).as_deref(), Some("e"));
        assert_eq!(mid_chars("nine", 1, Some(-1)), None);
    }

    #[test]
    fn find_counts_from_one_and_returns_zero_when_absent() {
        assert_eq!(find_chars("Calculation", "a", 1), 2);
        assert_eq!(find_chars("Calculation", "a", 3), 7);
        assert_eq!(find_chars("Calculation", "z", 1), 0);
        assert_eq!(find_chars("Calculation", "", 1), 1);
        assert_eq!(find_chars("This is ™ find test.", "™", 1), 9);
        assert_eq!(find_chars("abc", "c", -5), 3);
        assert_eq!(find_chars("abc", "", 4), 4);
        assert_eq!(find_chars("abc", "a", 5), 0);
        assert_eq!(findnth_chars("Calculation", "a", 2), 7);
        assert_eq!(findnth_chars("aaa", "aa", 2), 2);
        assert_eq!(findnth_chars("Calculation", "a", 3), 0);
        assert_eq!(findnth_chars("Calculation", "a", 0), 0);
    }

    #[test]
    fn split_counts_tokens_from_either_end() {
        assert_eq!(split_token("a-b-c", "-", 2).as_deref(), Some("b"));
        assert_eq!(split_token("a-b-c", "-", -1).as_deref(), Some("c"));
        assert_eq!(split_token("a-b-c", "-", -3).as_deref(), Some("a"));
        assert_eq!(split_token("a-b-c", "-", 4).as_deref(), Some(""));
        assert_eq!(split_token("a-b-c", "-", -4).as_deref(), Some(""));
        assert_eq!(split_token("a--c", "-", 2).as_deref(), Some(""));
        assert_eq!(split_token("a-b-c", "-", 0), None);
    }

    #[test]
    fn proper_capitalises_each_word() {
        assert_eq!(
            proper_case("PRODUCT name-and o'neil 2nd"),
            "Product Name-And O'Neil 2nd"
        );
        assert_eq!(proper_case(""), "");
    }
}
