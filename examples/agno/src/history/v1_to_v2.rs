//! Agno v1 → v2: sessions and memories copied out of the v1 tables (`agent_sessions`,
//! `team_sessions`, `workflow_sessions`, `memories`) into the v2 tables, with the v1 metric
//! keys renamed as Agno 2 reads them. The v1 tables are only read.
//!
//! Better than Agno's script: keyset batches (never OFFSET), memory bounded by the batch,
//! a checkpoint per batch (a killed run resumes; `resumable`), idempotent upserts that never
//! overwrite a newer v2 row, progress through tracing, and counts per reason at the end.

use migrate::data::{Batches, Tally, Upsert};
use migrate::query::{Row, Value};
use migrate::{Conn, Result};
use serde_json::{Map, Value as Json};

/// v1 metric keys and their v2 names; `None`: dropped.
const RENAMES: [(&str, Option<&str>); 9] = [
    ("time", Some("duration")),
    ("audio_tokens", Some("audio_total_tokens")),
    ("input_audio_tokens", Some("audio_input_tokens")),
    ("output_audio_tokens", Some("audio_output_tokens")),
    ("cached_tokens", Some("cache_read_tokens")),
    ("prompt_tokens", None),
    ("completion_tokens", None),
    ("prompt_tokens_details", None),
    ("completion_tokens_details", None),
];

/// Keys that only a v1 metrics object has.
const V1_ONLY: [&str; 5] = [
    "time",
    "audio_tokens",
    "cached_tokens",
    "prompt_tokens",
    "completion_tokens",
];

fn convert_metrics(metrics: &mut Map<String, Json>) {
    for (old, new) in RENAMES {
        if let Some(value) = metrics.remove(old) {
            if let Some(new) = new {
                metrics.entry(new.to_string()).or_insert(value);
            }
        }
    }
}

/// Renames the v1 metric keys everywhere in `value`: under every `metrics` key, and in every
/// object that carries a key only v1 metrics have.
pub fn convert_v1_metrics(value: &mut Json) {
    match value {
        Json::Object(map) => {
            if V1_ONLY.iter().any(|k| map.contains_key(*k)) {
                convert_metrics(map);
            }
            for (key, child) in map.iter_mut() {
                if key == "metrics" {
                    if let Json::Object(metrics) = child {
                        convert_metrics(metrics);
                    }
                }
                convert_v1_metrics(child);
            }
        }
        Json::Array(items) => items.iter_mut().for_each(convert_v1_metrics),
        _ => {}
    }
}

/// A JSON column's value: `Ok(None)` for NULL, an error naming the column when it is not JSON.
fn json(value: Option<&Value>, column: &str) -> std::result::Result<Option<Json>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Text(text)) => serde_json::from_str(text)
            .map(Some)
            .map_err(|_| format!("{column} is not JSON")),
        Some(_) => Err(format!("{column} is not JSON text")),
    }
}

fn text(json: Option<Json>) -> Value {
    json.map_or(Value::Null, |j| Value::Text(j.to_string()))
}

/// The v2 rows of this batch's keys that are at least as new as `updated_at`, by key.
async fn newer_rows(
    db: &mut Conn<'_>,
    table: &str,
    key: &str,
    rows: &[Row],
) -> Result<Vec<(String, i64)>> {
    let keys: Result<Vec<String>> = rows
        .iter()
        .filter_map(|r| r.get(0))
        .map(|k| migrate::data::literal(db.dialect(), k))
        .collect();
    let keys = keys?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT {key}, updated_at FROM {} WHERE {key} IN ({})",
        db.table(table),
        keys.join(", ")
    );
    Ok(db
        .query(&sql)
        .await?
        .iter()
        .filter_map(|r| {
            Some((
                r.get(0)?.as_str()?.to_string(),
                r.get(1)?.as_i64().unwrap_or(0),
            ))
        })
        .collect())
}

/// Copies one v1 session table (`kind`: agent, team or workflow) into the sessions table.
async fn import_sessions(
    db: &mut Conn<'_>,
    source: &str,
    kind: &str,
    batch: usize,
) -> Result<Tally> {
    if !db.table_exists(source).await? {
        return Ok(Tally::default());
    }
    // Refused before the checkpoint is written: a sessions table Agno 3 created itself has
    // no `runs` column to write into (every `up` stopped at the upsert's error).
    if !db.column_exists("session", "runs").await? {
        return Err(migrate::Error::blocked(
            format!(
                "the v1 sessions of `{source}` cannot be imported: the sessions table has no \
                 `runs` column (Agno 3 created it itself)"
            ),
            "import v1 data into a database at 2.x, before 3.0.0, or drop the v1 tables \
             that were imported already",
        ));
    }
    let data = format!("{kind}_data");
    let id = format!("{kind}_id");
    let mut job = Batches::new(&format!("agno_v1_{source}"), source, "session_id")
        .columns(&[
            "session_id",
            &id,
            "user_id",
            "memory",
            "session_data",
            "extra_data",
            &data,
            "created_at",
            "updated_at",
        ])
        .batch_size(batch)
        .start(db)
        .await?;
    while let Some(rows) = job.next(db).await? {
        let newer = newer_rows(db, "session", "session_id", &rows).await?;
        let mut upsert = Upsert::new(
            "session",
            &["session_id"],
            &[
                "session_type",
                &id,
                "user_id",
                "session_data",
                &data,
                "metadata",
                "runs",
                "created_at",
                "updated_at",
            ],
        )
        .newer_wins("updated_at");
        for row in &rows {
            let session_id = row
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let updated_at = row.get(8).and_then(Value::as_i64).unwrap_or(0);
            if newer
                .iter()
                .any(|(k, at)| *k == session_id && *at >= updated_at)
            {
                job.tally().skipped("a newer v2 session exists");
                continue;
            }
            let parsed = (|| {
                let memory = json(row.get(3), "memory")?;
                let mut session_data = json(row.get(4), "session_data")?;
                let mut extra = json(row.get(5), "extra_data")?;
                let own = json(row.get(6), &data)?;
                let mut runs = memory.and_then(|m| m.get("runs").cloned());
                for value in [&mut session_data, &mut extra, &mut runs]
                    .into_iter()
                    .flatten()
                {
                    convert_v1_metrics(value);
                }
                Ok::<_, String>((session_data, extra, own, runs))
            })();
            let (session_data, extra, own, runs) = match parsed {
                Ok(parsed) => parsed,
                Err(reason) => {
                    job.tally().refused(reason);
                    continue;
                }
            };
            upsert.row(vec![
                Value::Text(session_id),
                Value::Text(kind.to_string()),
                row.get(1).cloned().unwrap_or(Value::Null),
                row.get(2).cloned().unwrap_or(Value::Null),
                text(session_data),
                text(own),
                text(extra),
                text(runs),
                row.get(7).cloned().unwrap_or(Value::Int(0)),
                Value::Int(updated_at),
            ]);
            job.tally().moved(1);
        }
        // Statements of at most 4 MiB: a batch of sessions with long histories stays under
        // MariaDB's `max_allowed_packet` (16 MiB by default; text is sent in hex there).
        upsert.execute(db).await?;
    }
    job.finish(db).await
}

/// Rows per batch: `AGNO_V1_BATCH` (for tests), else 1,000.
fn batch_size() -> usize {
    std::env::var("AGNO_V1_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

#[migrate::migration(
    table = "v1_sessions",
    version = "2.0.0",
    after = "session@2.0.0",
    transaction = false,
    resumable,
    down = forget_v1_sessions
)]
pub async fn import_v1_sessions(db: &mut Conn<'_>) -> Result<()> {
    let batch = batch_size();
    for (source, kind) in [
        ("agent_sessions", "agent"),
        ("team_sessions", "team"),
        ("workflow_sessions", "workflow"),
    ] {
        // The counts stay in the job's checkpoint row (migrate_data_checkpoints).
        let tally = import_sessions(db, source, kind, batch).await?;
        tracing::info!(source, %tally, "v1 sessions imported");
    }
    Ok(())
}

/// The imported rows stay (they are v2 data now); the checkpoints go, so that a later up
/// copies again (and skips what is already there).
pub async fn forget_v1_sessions(db: &mut Conn<'_>) -> Result<()> {
    for source in ["agent_sessions", "team_sessions", "workflow_sessions"] {
        Batches::forget(
            db,
            &format!("agno_v1_{source}"),
            migrate::data::DEFAULT_CHECKPOINT_TABLE,
        )
        .await?;
    }
    Ok(())
}

#[migrate::migration(
    table = "v1_memories",
    version = "2.0.0",
    after = "memory@2.0.0",
    transaction = false,
    resumable,
    down = forget_v1_memories
)]
pub async fn import_v1_memories(db: &mut Conn<'_>) -> Result<()> {
    if !db.table_exists("memories").await? {
        return Ok(());
    }
    let mut job = Batches::new("agno_v1_memories", "memories", "id")
        .columns(&["id", "user_id", "memory", "updated_at"])
        .batch_size(batch_size())
        .start(db)
        .await?;
    // From 2.3.0 on, `created_at` is NOT NULL without a default (PostgreSQL and MySQL): a v1
    // memory, which has none, gets its `updated_at` there, as Agno gives it a time.
    let created_at = db.column_exists("memory", "created_at").await?;
    let mut columns = vec!["memory", "user_id", "updated_at"];
    if created_at {
        columns.push("created_at");
    }
    while let Some(rows) = job.next(db).await? {
        let newer = newer_rows(db, "memory", "memory_id", &rows).await?;
        let mut upsert = Upsert::new("memory", &["memory_id"], &columns).newer_wins("updated_at");
        for row in &rows {
            let id = row
                .get(0)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let updated_at = row.get(3).and_then(Value::as_i64).unwrap_or(0);
            if newer.iter().any(|(k, at)| *k == id && *at >= updated_at) {
                job.tally().skipped("a newer v2 memory exists");
                continue;
            }
            match json(row.get(2), "memory") {
                Ok(Some(memory)) => {
                    let mut values = vec![
                        Value::Text(id),
                        Value::Text(memory.to_string()),
                        row.get(1).cloned().unwrap_or(Value::Null),
                        Value::Int(updated_at),
                    ];
                    if created_at {
                        values.push(Value::Int(updated_at));
                    }
                    upsert.row(values);
                    job.tally().moved(1);
                }
                Ok(None) => job.tally().refused("memory is NULL"),
                Err(reason) => job.tally().refused(reason),
            }
        }
        if !upsert.is_empty() {
            // In statements under the server's packet limit.
            upsert.execute(db).await?;
        }
    }
    let tally = job.finish(db).await?;
    tracing::info!(%tally, "v1 memories imported");
    Ok(())
}

pub async fn forget_v1_memories(db: &mut Conn<'_>) -> Result<()> {
    Batches::forget(
        db,
        "agno_v1_memories",
        migrate::data::DEFAULT_CHECKPOINT_TABLE,
    )
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_keys_are_renamed_and_dropped() {
        let mut value = serde_json::json!({
            "session_metrics": {"time": 1.5, "cached_tokens": 3, "prompt_tokens": 9, "input_tokens": 4},
            "runs": [{"metrics": {"audio_tokens": [1], "completion_tokens_details": {}}}]
        });
        super::convert_v1_metrics(&mut value);
        assert_eq!(
            value["session_metrics"],
            serde_json::json!({"duration": 1.5, "cache_read_tokens": 3, "input_tokens": 4})
        );
        assert_eq!(
            value["runs"][0]["metrics"],
            serde_json::json!({"audio_total_tokens": [1]})
        );
    }
}
