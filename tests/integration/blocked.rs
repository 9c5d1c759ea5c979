//! Steps that refuse (`Error::blocked`): not stamped, their table stops, the others go on, and
//! the error, the report and the history carry the reason and the fix.

use crate::harness::{at, each_backend, steps, versions};
use migrate::error::ErrorCategory;
use migrate::report::{Outcome, ReportStatus, SkipReason};
use migrate::Error;

each_backend! {
    async fn a_refusing_step_stops_its_table_and_the_others_go_on(db) {
        let manager = db.manager().await;
        db.control("session@2.1.0", "block").await;
        let before = db.fingerprint().await;

        let err = manager.up().await.expect_err("session@2.1.0 refuses");
        assert_eq!(err.category(), ErrorCategory::Blocked, "{err}");
        assert_eq!(err.refusal(), Some(("session@2.1.0 was told to refuse", "delete the control row of session@2.1.0")));
        let text = err.to_string();
        assert!(text.contains("integration:session@2.1.0") && text.contains("to fix it: delete the control row"), "{text}");
        let Error::Blocked { step: Some(step), report: Some(report), .. } = err else {
            panic!("not a full refusal: {err:?}");
        };
        assert_eq!(step.table, "session");
        assert_eq!(report.status, ReportStatus::Blocked);
        assert_eq!(report.blocked.len(), 1);
        assert_eq!(report.blocked[0].fix, "delete the control row of session@2.1.0");
        // memory@2.3.0 runs after session@2.1.0: it waits too. Every other table went on.
        assert_eq!(
            steps(&report),
            ["eval@2.0.0", "memory@2.0.0", "metrics@2.0.0", "session@2.0.0", "eval@2.1.0", "metrics@2.1.0", "metrics@2.5.0"]
        );
        let mut held: Vec<_> = report
            .skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::Blocked { .. }))
            .map(|s| (s.table.as_str(), s.steps))
            .collect();
        held.sort();
        assert_eq!(held, [("memory", 1), ("session", 1)], "{:?}", report.skipped);
        assert_eq!(
            versions(&manager).await,
            at(&[("eval", Some("2.1.0")), ("memory", Some("2.0.0")), ("metrics", Some("2.5.0")), ("session", Some("2.0.0"))])
        );
        assert!(!db.has_column("session", "created_at").await, "nothing of the refusing step kept");
        assert_ne!(before, db.fingerprint().await, "the other tables moved");

        // The history keeps the refusal with its reason and fix; nothing was stamped.
        let history = manager.history(50).await.expect("history");
        let row = history.iter().find(|h| h.outcome == Outcome::Blocked).expect("a blocked row");
        assert_eq!((row.table.as_str(), row.version.as_str()), ("session", "2.1.0"));
        let message = row.error.as_deref().unwrap_or_default();
        assert!(message.contains("was told to refuse") && message.contains("delete the control row"), "{message}");

        // Once the data is fixed, the next run goes through.
        db.clear_control().await;
        let report = manager.up().await.expect("up after the fix");
        assert_eq!(steps(&report), ["session@2.1.0", "memory@2.3.0", "session@2.3.0"]);
    }

    async fn a_refusing_journalled_step_leaves_no_dirty_mark(db) {
        let manager = db.manager().await;
        db.control("metrics@2.5.0", "block").await;
        let err = manager.up().await.expect_err("metrics@2.5.0 refuses");
        assert_eq!(err.category(), ErrorCategory::Blocked, "{err}");
        let status = manager.status().await.expect("status");
        let metrics = status.iter().find(|s| s.table == "metrics").expect("metrics");
        assert_eq!(metrics.dirty, None, "a refusal changes nothing, so nothing is in doubt");
        assert_eq!(metrics.current.as_ref().map(ToString::to_string).as_deref(), Some("2.1.0"));
        let history = manager.history(50).await.expect("history");
        assert!(history.iter().any(|h| h.version == "2.5.0" && h.outcome == Outcome::Blocked), "{history:?}");
        assert!(!history.iter().any(|h| h.outcome == Outcome::Started), "{history:?}");
        db.clear_control().await;
        manager.up().await.expect("up after the fix");
    }

    async fn a_refusal_whose_reason_holds_a_nul_still_clears_its_mark(db) {
        // PostgreSQL refuses a NUL in text: the history keeps the reason with U+FFFD there, on
        // every backend alike, and the refusal's write (which clears the mark) goes through.
        let manager = db.manager().await;
        db.control("metrics@2.5.0", "block_with_nul").await;
        let err = manager.up().await.expect_err("metrics@2.5.0 refuses");
        assert_eq!(err.category(), ErrorCategory::Blocked, "{err}");
        assert!(err.to_string().contains('\0'), "the error itself is unchanged: {err:?}");
        let status = manager.status().await.expect("status");
        let metrics = status.iter().find(|s| s.table == "metrics").expect("metrics");
        assert_eq!(metrics.dirty, None, "the refusal's write cleared the mark");
        let history = manager.history(50).await.expect("history");
        let row = history.iter().find(|h| h.outcome == Outcome::Blocked).expect("a blocked row");
        let message = row.error.as_deref().unwrap_or_default();
        assert!(message.contains("refuse\u{FFFD} with a NUL"), "{message:?}");
        db.clear_control().await;
        manager.up().await.expect("up after the fix");
    }

    async fn a_refusing_down_stops_its_table(db) {
        let manager = db.manager().await;
        manager.up().await.expect("up");
        db.control("session@2.3.0 down", "block").await;
        let err = manager.down().table("memory").table("session").target("2.0.0").await.expect_err("refuses");
        let Error::Blocked { report: Some(report), .. } = err else { panic!("{err:?}") };
        assert_eq!(report.blocked[0].direction, migrate::report::Direction::Down);
        // memory@2.3.0 does not hold session back, so it came down; session stopped at 2.3.0.
        assert_eq!(steps(&report), ["memory@2.3.0"]);
        let current = |t: &'static str| {
            let m = &manager;
            async move { m.current_version(t).await.unwrap().map(|v| v.to_string()) }
        };
        assert_eq!(current("session").await.as_deref(), Some("2.3.0"));
        assert_eq!(current("memory").await.as_deref(), Some("2.0.0"));
        assert!(db.has_column("session", "state").await, "the refusing down changed nothing");
    }
}
