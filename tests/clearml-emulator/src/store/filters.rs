//! How `get_all` calls select, order and page documents: list-field filters with clearml-server's operators
//! (`database/model/base.py`: `NewListFieldBucketHelper`, `get_list_field_query`), name regexes, paging.

use regex::Regex;
use serde_json::Value;

use crate::error::ApiError;
use crate::requests::ListQuery;

use super::Result;

/// Largest `page_size` `queues.get_all` accepts.
pub(super) const MAX_PAGE_SIZE: u64 = 500;

/// How a group of values is tested against a field (the mongo modifier the server builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Modifier {
    /// `$in`: the field holds any of the values.
    In,
    /// `$nin`: the field holds none of them.
    NotIn,
    /// `$all`: the field holds every one of them.
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    And,
    Or,
}

/// A compiled list-field filter. Plain values select documents holding any of them; `-x` (before any operator) and
/// `__$not x` exclude `x`; after `__$all`/`__$and` values must all be present; `null` also accepts an empty field;
/// the groups combine with the first operator given (AND when none).
#[derive(Debug, Clone, Default)]
pub(super) struct ListFilter {
    groups: Vec<(Modifier, Vec<String>)>,
    /// `true` = AND (the server's default global operator).
    and: bool,
    allow_empty: bool,
}

fn fields_value_error(detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(400, 16, format!("Invalid value for fields ({detail})"))
}

impl ListFilter {
    pub(super) fn compile(field: &str, query: &ListQuery) -> Result<Self> {
        let mut groups: Vec<(Modifier, Vec<String>)> = Vec::new();
        let mut push = |m: Modifier, v: &str| match groups.iter_mut().find(|(g, _)| *g == m) {
            Some((_, vals)) => vals.push(v.to_owned()),
            None => groups.push((m, vec![v.to_owned()])),
        };
        let mut context = Op::Or;
        let mut global: Option<Op> = None;
        let mut legacy = true;
        let mut negate_next = false;
        let mut allow_empty = false;
        for value in &query.0 {
            let Some(v) = value.as_deref() else {
                negate_next = false;
                global.get_or_insert(Op::And);
                allow_empty = true;
                continue;
            };
            if v == "__$nop" {
                negate_next = false;
                global.get_or_insert(Op::And);
                context = Op::Or;
                legacy = true;
                continue;
            }
            if let Some(op) = v.strip_prefix("__$") {
                if negate_next {
                    return Err(fields_value_error(format!(
                        "Value is expected after: field={field}, operator=__$not"
                    )));
                }
                let operator = match op {
                    "not" => {
                        negate_next = true;
                        continue;
                    }
                    "all" | "and" => Op::And,
                    "any" | "or" => Op::Or,
                    _ => {
                        return Err(fields_value_error(format!(
                            "Unsupported operator: field={field}, operator={v}"
                        )));
                    }
                };
                context = operator;
                legacy = false;
                global.get_or_insert(operator);
                continue;
            }
            global.get_or_insert(Op::And);
            let (include, v) = match v.strip_prefix('-') {
                Some(rest) if legacy && !negate_next => {
                    if rest.is_empty() {
                        return Err(fields_value_error(format!(
                            "Missing value after the exclude prefix -: field={field}"
                        )));
                    }
                    (false, rest)
                }
                _ => (!negate_next, v),
            };
            negate_next = false;
            let modifier = match (context, include) {
                (Op::And, true) => Modifier::All,
                (Op::Or, true) => Modifier::In,
                (_, false) => Modifier::NotIn,
            };
            push(modifier, v);
        }
        if negate_next {
            return Err(fields_value_error(format!(
                "Value is expected after: field={field}, operator=__$not"
            )));
        }
        Ok(ListFilter {
            groups,
            and: global.unwrap_or(Op::And) == Op::And,
            allow_empty,
        })
    }

    /// Whether a document whose field holds `values` (one for a scalar field, none when unset) passes.
    pub(super) fn matches(&self, values: &[&str]) -> bool {
        let group = |(m, wanted): &(Modifier, Vec<String>)| match m {
            Modifier::In => wanted.iter().any(|w| values.contains(&w.as_str())),
            Modifier::NotIn => !wanted.iter().any(|w| values.contains(&w.as_str())),
            Modifier::All => wanted.iter().all(|w| values.contains(&w.as_str())),
        };
        let empty_ok = self.allow_empty && values.is_empty();
        if self.groups.is_empty() {
            // `[null]` alone: an empty query OR'ed with "field empty" is just "field empty" (mongoengine drops
            // empty Q nodes when combining).
            return !self.allow_empty || empty_ok;
        }
        let hit = if self.and {
            self.groups.iter().all(group)
        } else {
            self.groups.iter().any(group)
        };
        hit || empty_ok
    }
}

pub(super) fn compile_regex(pattern: &str) -> Result<Regex> {
    Regex::new(pattern)
        .map_err(|e| ApiError::new(400, 21, format!("Malformed regular expression ({e})")))
}

/// `max_size`: `queues.get_all` caps `page_size` at 500 (400/12 above); `tasks.get_all` has no cap.
pub(super) fn paginate<T>(
    items: Vec<T>,
    page: Option<u64>,
    page_size: Option<u64>,
    max_size: Option<u64>,
) -> Result<Vec<T>> {
    let Some(size) = page_size else {
        return Ok(items);
    };
    if max_size.is_some_and(|max| size > max) {
        return Err(ApiError::validation(format!(
            "page_size must be at most {MAX_PAGE_SIZE}"
        )));
    }
    let start = page.unwrap_or(0).saturating_mul(size);
    let start = usize::try_from(start).unwrap_or(usize::MAX);
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    Ok(items.into_iter().skip(start).take(size).collect())
}

/// Orders two response documents by one field, as `order_by` does (missing sorts first).
pub(super) fn cmp_json(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(values: &[Option<&str>]) -> ListFilter {
        let q = ListQuery(values.iter().map(|v| v.map(str::to_owned)).collect());
        ListFilter::compile("tags", &q).unwrap()
    }

    // database/model/base.py get_list_field_query: the four ways a client narrows a list field.
    #[test]
    fn base_py_list_field_query_plain_exclusion_not_all_and_null() {
        let any = filter(&[Some("a"), Some("b")]);
        assert!(any.matches(&["b", "x"]) && !any.matches(&["x"]) && !any.matches(&[]));
        let excl = filter(&[Some("a"), Some("-b")]);
        assert!(excl.matches(&["a"]) && !excl.matches(&["a", "b"]));
        let not = filter(&[Some("__$not"), Some("b")]);
        assert!(not.matches(&["a"]) && not.matches(&[]) && !not.matches(&["b"]));
        let all = filter(&[Some("__$all"), Some("a"), Some("b")]);
        assert!(all.matches(&["a", "b", "c"]) && !all.matches(&["a"]));
        // After an operator a leading "-" is part of the value (legacy exclusion is off until __$nop).
        let literal = filter(&[Some("__$or"), Some("-b")]);
        assert!(literal.matches(&["-b"]) && !literal.matches(&["x"]));
        let empty = filter(&[None]);
        assert!(empty.matches(&[]) && !empty.matches(&["a"]));
        let or_empty = filter(&[Some("a"), None]);
        assert!(or_empty.matches(&[]) && or_empty.matches(&["a"]) && !or_empty.matches(&["b"]));
    }

    #[test]
    fn bad_operators_are_fields_value_errors() {
        for bad in [
            vec![Some("__$xor".to_owned())],
            vec![Some("__$not".to_owned())],
            vec![Some("-".to_owned())],
        ] {
            let err = ListFilter::compile("tags", &ListQuery(bad)).unwrap_err();
            assert_eq!((err.code, err.subcode), (400, 16), "{}", err.msg);
        }
    }
}
