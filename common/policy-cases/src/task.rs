//! The one `task.yaml` reader, used by the host ([`TaskContext`](../policy_runtime/task/struct.TaskContext.html))
//! and by the guests' native runner alike.
//!
//! Keys are the WIT `task` record's, kebab-case (`queue-name`) or snake_case (`queue_name`); unknown keys are
//! refused. Every text field takes any YAML scalar, so `id: 42` or a property `k8s/gpus: 2` reads as the text
//! `"42"` / `"2"` (a number is read as its decimal text; quote it to keep leading zeros or trailing decimals).
//! `properties` is a map `"section/name": value`, kept sorted by key so evaluation is deterministic. Errors name
//! the field's path: `properties: invalid type: sequence, expected a map of "section/name": value`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A task as a case file (or the CLI's `--task`) writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CaseTask {
    /// ClearML task id.
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// Task name.
    #[serde(default, deserialize_with = "text")]
    pub name: String,
    /// Project name.
    #[serde(default, deserialize_with = "optional_text")]
    pub project: Option<String>,
    /// Owner.
    #[serde(default, deserialize_with = "optional_text")]
    pub user: Option<String>,
    /// Queue id.
    #[serde(default, alias = "queue_id", deserialize_with = "text")]
    pub queue_id: String,
    /// Queue name.
    #[serde(default, alias = "queue_name", deserialize_with = "text")]
    pub queue_name: String,
    /// Tags.
    #[serde(default, deserialize_with = "texts")]
    pub tags: Vec<String>,
    /// Requested container image.
    #[serde(default, deserialize_with = "optional_text")]
    pub image: Option<String>,
    /// `"section/name" -> value`, sorted by key.
    #[serde(default, deserialize_with = "text_map")]
    pub properties: BTreeMap<String, String>,
}

/// A task file that cannot be read as a task; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TaskError {
    /// Path of the offending field (`tags[1]`, `properties`, `.` for the whole document).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl CaseTask {
    /// Read a task from YAML (or JSON) text.
    pub fn from_yaml(text: &str) -> Result<Self, TaskError> {
        serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|err| {
            let path = err.path().to_string();
            // serde_yaml names the path itself for nested fields (not for the root); say it once. Its location
            // suffix (`at line 3 column 1`) stays: it helps in a long file.
            let inner = err.inner().to_string();
            let message = inner
                .strip_prefix(&format!("{path}: "))
                .map_or_else(|| inner.clone(), str::to_owned);
            TaskError {
                path: if path == "." { "task".to_owned() } else { path },
                message,
            }
        })
    }
}

/// Any scalar as text: strings as they are, numbers and booleans as they print.
struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string (or a number or boolean, read as text)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

/// A text field; also the element of `tags` and the value of `properties`.
#[derive(Debug)]
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Text::deserialize(deserializer).map(|t| t.0)
}

fn optional_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Option::<Text>::deserialize(deserializer).map(|t| t.map(|t| t.0))
}

fn texts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    struct ListVisitor;
    impl<'de> Visitor<'de> for ListVisitor {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of tags")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Text(tag)) = seq.next_element()? {
                out.push(tag);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(ListVisitor)
}

fn text_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct MapVisitor;
    impl<'de> Visitor<'de> for MapVisitor {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map of \"section/name\": value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((Text(key), Text(value))) = map.next_entry()? {
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(MapVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_text_everywhere() {
        let task = CaseTask::from_yaml(
            "id: 42\nname: 2024\nqueue_name: gpu\nqueue-id: 7\ntags: [a, 3]\nproject: 1\n\
             properties: {k8s/gpus: 2, flag: true}\n",
        )
        .unwrap();
        assert_eq!(task.id, "42");
        assert_eq!(task.name, "2024");
        assert_eq!(task.queue_name, "gpu");
        assert_eq!(task.queue_id, "7");
        assert_eq!(task.tags, ["a", "3"]);
        assert_eq!(task.project.as_deref(), Some("1"));
        assert_eq!(task.properties["k8s/gpus"], "2");
        assert_eq!(task.properties["flag"], "true");
    }

    #[test]
    fn errors_name_the_field() {
        let err = CaseTask::from_yaml("id: t\nproperties: [a, b]\n").unwrap_err();
        assert_eq!(err.path, "properties");
        assert!(
            err.to_string()
                .starts_with("properties: invalid type: sequence"),
            "{err}"
        );
        let err = CaseTask::from_yaml("id: t\ntags: [a, {b: 1}]\n").unwrap_err();
        assert_eq!(err.path, "tags[1]");
        let err = CaseTask::from_yaml("id: t\nqueue: q\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `queue`"), "{err}");
        let err = CaseTask::from_yaml("name: n\n").unwrap_err();
        assert!(err.to_string().contains("missing field `id`"), "{err}");
        let err = CaseTask::from_yaml("- id\n").unwrap_err();
        assert!(
            err.to_string().starts_with("task: invalid type: sequence"),
            "{err}"
        );
    }

    #[test]
    fn empty_lists_and_maps_may_be_null() {
        let task = CaseTask::from_yaml("id: t\ntags:\nproperties:\nproject:\n").unwrap();
        assert!(task.tags.is_empty() && task.properties.is_empty() && task.project.is_none());
    }
}
