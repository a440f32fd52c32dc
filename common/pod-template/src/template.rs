//! [`Template`]: a values-shaped template parsed and normalised, with errors that name the key and its path.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Error;
use crate::fields::{Kind, RESOURCE_KEYS, known_keys, lookup};

/// A parsed, normalised values-shaped template. Only the keys the user wrote are present: an absent key means
/// "inherit", which is what makes the chart's override semantics work.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Template {
    pub(crate) fields: BTreeMap<String, Value>,
}

impl Template {
    /// Parse a template from JSON. `path` names where it came from (e.g. `agentk8sglue.basePodTemplate`) so errors
    /// point at the exact key. `null` is the empty template. Keys whose value is `null` are treated as absent, as
    /// Helm's `default` does.
    pub fn from_value(value: &Value, path: &str) -> Result<Self, Error> {
        let object = match value {
            Value::Null => return Ok(Self::default()),
            Value::Object(object) => object,
            other => return Err(invalid(path, "a map of pod template fields", other)),
        };
        let mut fields = BTreeMap::new();
        for (key, value) in object {
            let field = lookup(key).ok_or_else(|| Error::UnknownKey {
                path: path.to_owned(),
                key: key.clone(),
                known: known_keys().collect::<Vec<_>>().join(", "),
            })?;
            if value.is_null() {
                continue;
            }
            let field_path = join(path, key);
            fields.insert(key.clone(), normalise(field.kind, value, &field_path)?);
        }
        Ok(Self { fields })
    }

    /// The normalised value of a key, if the template sets it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// True when the template sets nothing (`{}`, the chart's "does not override").
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The keys this template sets, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The template as a JSON object (the normalised values shape).
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_value(&value, "template").map_err(serde::de::Error::custom)
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn invalid(path: &str, expected: &'static str, found: &Value) -> Error {
    Error::InvalidType {
        path: path.to_owned(),
        expected,
        found: type_name(found),
    }
}

/// A YAML scalar where Kubernetes wants a string: `1` -> `"1"`, `true` -> `"true"`.
fn scalar_string(value: &Value, path: &str, expected: &'static str) -> Result<Value, Error> {
    match value {
        Value::String(_) => Ok(value.clone()),
        Value::Number(n) => Ok(Value::String(n.to_string())),
        Value::Bool(b) => Ok(Value::String(b.to_string())),
        other => Err(invalid(path, expected, other)),
    }
}

fn string_map(value: &Value, path: &str, expected: &'static str) -> Result<Value, Error> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "a map", value))?;
    let mut out = Map::new();
    for (key, value) in object {
        out.insert(
            key.clone(),
            scalar_string(value, &join(path, key), expected)?,
        );
    }
    Ok(Value::Object(out))
}

fn normalise(kind: Kind, value: &Value, path: &str) -> Result<Value, Error> {
    match kind {
        Kind::StringMap => string_map(value, path, "a string"),
        Kind::Resources => {
            let object = value
                .as_object()
                .ok_or_else(|| invalid(path, "a map with limits/requests", value))?;
            let mut out = Map::new();
            for (key, value) in object {
                let sub = join(path, key);
                let normalised = match key.as_str() {
                    "limits" | "requests" => {
                        string_map(value, &sub, "a quantity (e.g. 2, 500m, 1Gi)")?
                    }
                    "claims" => value
                        .as_array()
                        .map(|_| value.clone())
                        .ok_or_else(|| invalid(&sub, "a list", value))?,
                    _ => {
                        return Err(Error::UnknownKey {
                            path: path.to_owned(),
                            key: key.clone(),
                            known: RESOURCE_KEYS.join(", "),
                        });
                    }
                };
                out.insert(key.clone(), normalised);
            }
            Ok(Value::Object(out))
        }
        Kind::Env => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(path, "a list of {name, value}", value))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let object = item
                    .as_object()
                    .ok_or_else(|| invalid(&item_path, "a map with `name`", item))?;
                named(object, &item_path)?;
                let mut object = object.clone();
                if let Some(v) = object.get("value").filter(|v| !v.is_null()) {
                    let v = scalar_string(v, &join(&item_path, "value"), "a string")?;
                    object.insert("value".to_owned(), v);
                }
                out.push(Value::Object(object));
            }
            Ok(Value::Array(out))
        }
        Kind::NamedList => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(path, "a list", value))?;
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let object = item
                    .as_object()
                    .ok_or_else(|| invalid(&item_path, "a map with `name`", item))?;
                named(object, &item_path)?;
            }
            Ok(value.clone())
        }
        Kind::List => value
            .as_array()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a list", value)),
        Kind::Object => value
            .as_object()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a map", value)),
        Kind::String => value
            .as_str()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a string", value)),
        Kind::Bool => value
            .as_bool()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "true or false", value)),
        Kind::Integer => value
            .as_i64()
            .map(|_| value.clone())
            .ok_or_else(|| invalid(path, "a whole number", value)),
    }
}

fn named(object: &Map<String, Value>, path: &str) -> Result<(), Error> {
    match object.get("name") {
        Some(Value::String(_)) => Ok(()),
        Some(other) => Err(invalid(&join(path, "name"), "a string", other)),
        None => Err(Error::InvalidType {
            path: join(path, "name"),
            expected: "a string",
            found: "nothing",
        }),
    }
}
