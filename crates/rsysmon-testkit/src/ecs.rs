//! Elastic Common Schema documents checked against ECS's published field
//! list (`ecs/fields-9.4.0.tsv`, vendored from ECS's generated fields.csv):
//! every field outside the custom `rsysmon.*` namespace must be an ECS
//! field, with a JSON value of the type ECS gives it.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

const FIELDS: &str = include_str!("../ecs/fields-9.4.0.tsv");

/// The ECS version of the vendored field list.
pub const ECS_FIELDS_VERSION: &str = "9.4.0";

/// One ECS field: its type, and whether ECS expects an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsField {
    pub ty: &'static str,
    pub array: bool,
}

/// Every ECS field by its dotted name.
pub fn ecs_fields() -> &'static HashMap<&'static str, EcsField> {
    static MAP: OnceLock<HashMap<&'static str, EcsField>> = OnceLock::new();
    MAP.get_or_init(|| {
        FIELDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let mut cols = l.split('\t');
                let name = cols.next()?;
                let ty = cols.next()?;
                let array = cols.next().unwrap_or("").contains("array");
                Some((name, EcsField { ty, array }))
            })
            .collect()
    })
}

/// Every problem with `doc`: a field ECS does not define (outside
/// `rsysmon.*`), or a value of the wrong JSON type. Empty when it conforms.
pub fn ecs_problems(doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let Value::Object(map) = doc else { return vec!["document is not an object".into()] };
    for (key, value) in map {
        walk(key, value, &mut problems);
    }
    problems
}

fn walk(name: &str, value: &Value, problems: &mut Vec<String>) {
    if name == "rsysmon" || name.starts_with("rsysmon.") {
        return;
    }
    let field = ecs_fields().get(name);
    match (value, field) {
        (Value::Object(map), None) | (Value::Object(map), Some(EcsField { ty: "object", .. })) => {
            for (key, value) in map {
                walk(&format!("{name}.{key}"), value, problems);
            }
        }
        (_, None) => problems.push(format!("{name} is not an ECS {ECS_FIELDS_VERSION} field")),
        (Value::Array(items), Some(field)) => {
            if !field.array {
                problems.push(format!("{name} is an array; ECS gives one {}", field.ty));
            }
            for item in items {
                check_scalar(name, item, field, problems);
            }
        }
        (value, Some(field)) => check_scalar(name, value, field, problems),
    }
}

fn check_scalar(name: &str, value: &Value, field: &EcsField, problems: &mut Vec<String>) {
    let ok = match field.ty {
        "keyword" | "constant_keyword" | "wildcard" | "match_only_text" | "text" | "ip" => value.is_string(),
        "date" => value.as_str().is_some_and(|s| s.len() >= 20 && s.as_bytes()[4] == b'-' && s.contains('T')),
        "long" | "integer" => value.is_i64() || value.is_u64(),
        "float" | "double" | "scaled_float" => value.is_number(),
        "boolean" => value.is_boolean(),
        "flattened" | "object" => value.is_object(),
        _ => false,
    };
    if !ok {
        problems.push(format!("{name} = {value} is not an ECS {}", field.ty));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_list_knows_the_fields_and_the_checker_catches_mistakes() {
        assert_eq!(ecs_fields()["process.pid"].ty, "long");
        assert!(ecs_fields()["process.args"].array);
        assert!(ecs_problems(&json!({"process": {"pid": 1, "entity_id": "x"}, "rsysmon": {"any": 1}})).is_empty());
        let bad = ecs_problems(&json!({"process": {"pid": "1", "guid": "x"}, "@timestamp": 5}));
        assert_eq!(bad.len(), 3, "{bad:?}");
    }
}
