//! An [`Error`] as one JSON object: what `--json` prints and the HTTP routes answer with.

use crate::error::ErrorCategory;
use crate::Error;
use serde_json::{json, Value};

/// The category's name in JSON.
pub(crate) fn category_name(category: ErrorCategory) -> &'static str {
    match category {
        ErrorCategory::BadInput => "bad_input",
        ErrorCategory::Locked => "locked",
        ErrorCategory::Dirty => "dirty",
        ErrorCategory::Drift => "drift",
        ErrorCategory::Refused => "refused",
        ErrorCategory::StepFailed => "step_failed",
        ErrorCategory::Blocked => "blocked",
        ErrorCategory::Unreachable => "unreachable",
        _ => "other",
    }
}

/// `{"kind", "category", "message", "causes", ...}` with the details of the errors an operator
/// acts on: the failed step, the lock's holder, the dirty mark.
pub(crate) fn error_json(err: &Error) -> Value {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(Value::String(cause.to_string()));
        source = cause.source();
    }
    let mut body = json!({
        "kind": err.kind(),
        "category": category_name(err.category()),
        "message": err.to_string(),
        "causes": causes,
    });
    let details = match err {
        Error::StepFailed {
            step,
            direction,
            applied,
            source,
        } => json!({
            "step": step,
            "direction": direction,
            "applied": applied,
            "cause": source.to_string(),
            "cause_kind": source.kind(),
        }),
        Error::LockTimeout { waited, holder } => json!({
            "holder": holder,
            "waited_ms": waited.as_secs_f64() * 1_000.0,
        }),
        Error::Dirty {
            module,
            table,
            version,
            name,
            direction,
            since,
        } => json!({
            "module": module,
            "table": table,
            "version": version,
            "name": name,
            "direction": direction,
            "since": since,
        }),
        Error::ChecksumMismatch {
            step,
            location,
            applied,
            current,
        } => json!({
            "step": step,
            "location": location,
            "applied": applied,
            "current": current,
        }),
        Error::UnknownAppliedVersion {
            module,
            table,
            version,
        } => json!({ "module": module, "table": table, "version": version }),
        Error::UnknownTable { table, known } => json!({ "table": table, "known": known }),
        Error::Blocked {
            reason,
            fix,
            step,
            report,
        } => json!({ "reason": reason, "fix": fix, "step": step, "report": report }),
        Error::AdoptedVersion {
            table,
            from,
            adopted,
            tracking,
            current,
        } => json!({
            "table": table,
            "from": from,
            "adopted": adopted,
            "tracking": tracking,
            "current": current,
        }),
        _ => Value::Null,
    };
    if let (Value::Object(body), Value::Object(details)) = (&mut body, details) {
        body.extend(details);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_adopted_version_conflict_carries_its_rows() {
        let body = error_json(&Error::AdoptedVersion {
            table: "memory".into(),
            from: "agno_schema_versions".into(),
            adopted: "2.2.0".into(),
            tracking: "migrate_schema_versions".into(),
            current: Some("2.1.0".into()),
        });
        assert_eq!(body["kind"], "AdoptedVersion");
        assert_eq!(body["category"], "drift");
        for (key, value) in [
            ("table", "memory"),
            ("from", "agno_schema_versions"),
            ("adopted", "2.2.0"),
            ("tracking", "migrate_schema_versions"),
            ("current", "2.1.0"),
        ] {
            assert_eq!(body[key], value, "{key}: {body}");
        }
    }
}
