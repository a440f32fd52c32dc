//! Request bodies of the modelled endpoints. Unknown fields are ignored (jsonmodels does the same); a missing
//! required field or a wrong type is a 400/12 raised by the dispatcher from the serde error.

use serde::{Deserialize, Deserializer};

mod events;
mod queues;
mod tasks;
mod workers;

pub use events::*;
pub use queues::*;
pub use tasks::*;
pub use workers::*;

/// A list field that also accepts one bare string or `null` (`tasks.get_all {id: "<id>"}` works on the server).
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// A list-field filter of `get_all` as the server reads it (`database/model/base.py` `get_list_field_query`):
/// one value or a list of values, where an entry may be `null` (match an empty field), `-x` (exclude x), or an
/// operator (`__$not`, `__$all`/`__$and`, `__$any`/`__$or`, `__$nop`) applying to what follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery(pub Vec<Option<String>>);

impl ListQuery {
    /// No values given: the field does not filter.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ListQuery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<Option<String>>),
        }
        Ok(match Option::<OneOrMany>::deserialize(d)? {
            // A bare `null` is "not given", as jsonmodels treats it; `[null]` is the "empty field" filter.
            None => ListQuery::default(),
            Some(OneOrMany::One(s)) => ListQuery(vec![Some(s)]),
            Some(OneOrMany::Many(v)) => ListQuery(v),
        })
    }
}

/// `null` and absent both mean "not given" for strings (the SDK sends `null` for unset optional fields).
fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// `auth.login`, from the query string or the body.
#[derive(Debug, Deserialize, Default)]
pub struct Login {
    /// Token lifetime in seconds; absent or not positive gives the configured lifetime, more than 31536000 (a year) is
    /// 400/12.
    #[serde(default)]
    pub expiration_sec: Option<i64>,
}

/// `projects.create`.
#[derive(Debug, Deserialize)]
pub struct ProjectCreate {
    /// Unique (400/801), at least 3 characters (400/800); a missing name is 400/11.
    pub name: String,
    /// Free text; the SDK sends an empty one.
    #[serde(default, deserialize_with = "opt_string")]
    pub description: Option<String>,
    /// User tags.
    #[serde(default, deserialize_with = "one_or_many")]
    pub tags: Vec<String>,
    /// System tags; `hidden` leaves the project out of `projects.get_all` unless asked for.
    #[serde(default, deserialize_with = "one_or_many")]
    pub system_tags: Vec<String>,
}

/// `projects.get_all` filters.
#[derive(Debug, Deserialize, Default)]
pub struct ProjectGetAll {
    /// Only these project ids (hidden ones included).
    #[serde(default, deserialize_with = "one_or_many")]
    pub id: Vec<String>,
    /// A regular expression searched in the project name (the SDK sends `^name$`).
    #[serde(default, deserialize_with = "opt_string")]
    pub name: Option<String>,
    /// Return only these fields (`id` always comes back).
    #[serde(default, deserialize_with = "one_or_many")]
    pub only_fields: Vec<String>,
    /// Include projects with the system tag `hidden`.
    #[serde(default)]
    pub search_hidden: bool,
}

/// `projects.get_by_id`.
#[derive(Debug, Deserialize)]
pub struct ProjectGetById {
    /// The project id (400/401 when unknown).
    pub project: String,
}

/// The serde default of flags the server defaults to true.
fn yes() -> bool {
    true
}
