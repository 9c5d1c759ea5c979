//! The SQL of the steps that SQL files declare, rendered for the database a run is on: shown
//! by a dry run, and checked for every planned step before the first one runs.

use super::setup::MigrationManager;
use crate::error::{Error, Result};
use crate::report::PlannedStep;
use crate::step::Direction;
use crate::template;
use std::borrow::Cow;

impl MigrationManager {
    /// The planned steps with the SQL of the steps that SQL files declare, rendered for this
    /// database: the offline `--sql` view of a run.
    pub(super) fn with_sql(&self, mut steps: Vec<PlannedStep>) -> Result<Vec<PlannedStep>> {
        for step in &mut steps {
            step.sql = self.rendered_sql(step)?.map(Cow::into_owned);
        }
        Ok(steps)
    }

    /// The SQL of a step a SQL file declares, rendered for this database; a template it cannot
    /// render (`{{schema}}` with no schema configured) is an [`Error::Template`] naming the
    /// step and its file (its down's, going down).
    fn rendered_sql(&self, step: &PlannedStep) -> Result<Option<Cow<'static, str>>> {
        let migration = self.graph.nodes[step.node].migration;
        let sql = match step.direction {
            Direction::Up => migration.sql(),
            Direction::Down => migration.down_sql(),
        };
        let Some(sql) = sql else {
            return Ok(None);
        };
        let schema = self.backend.schema();
        template::render(self.backend.dialect(), schema, &self.table_names, sql)
            .map(Some)
            .map_err(|err| match err {
                Error::Template(why) => Error::Template(format!(
                    "{} ({}{}): {why}",
                    step.step,
                    migration.location(),
                    match step.direction {
                        Direction::Up => "",
                        Direction::Down => ", its down",
                    }
                )),
                other => other,
            })
    }

    /// Every SQL-file step of `steps` renders: checked before the first of them runs, so a
    /// template no step could render refuses the run before any step (a step of a
    /// no-transaction file, rendered statement by statement as it runs, would fail after its
    /// journal mark and its earlier statements). A file without templates costs a scan.
    pub(super) fn check_sql_templates(&self, steps: &[PlannedStep]) -> Result<()> {
        steps
            .iter()
            .try_for_each(|step| self.rendered_sql(step).map(drop))
    }
}
