//! Plans: the graph walked from each selected table's current version to its target, in the
//! graph's deterministic order. Planning is pure: it reads the state and changes nothing, so every
//! bad request fails before the database is touched.

use crate::checksum;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::migration::Reversal;
use crate::report::{PlannedStep, SkipReason, Skipped};
use crate::step::{Direction, DirtyMark};
use crate::time::Timestamp;
use semver::Version;

/// The steps a request would run, in order, and the already-satisfied steps it passes over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Plan {
    /// The steps, in the order they run.
    pub(crate) steps: Vec<PlannedStep>,
    /// Per selected table, the steps already where the request wants them.
    pub(crate) skipped: Vec<Skipped>,
}

fn skip(plan: &mut Plan, graph: &Graph, chain: usize, steps: usize, reason: SkipReason) {
    if steps > 0 || reason != SkipReason::AlreadyThere {
        let chain = &graph.chains[chain];
        plan.skipped.push(Skipped {
            module: chain.module.to_string(),
            table: chain.table.to_string(),
            steps,
            reason,
        });
    }
}

/// What the database says about one chain, as the planner needs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChainState {
    /// The stored version, parsed and known to be in the chain.
    pub(crate) stored: Option<Version>,
    /// The stored text, for the compare-and-set.
    pub(crate) raw: Option<String>,
    /// The baseline that applies when nothing is stored.
    pub(crate) baseline: Option<Version>,
    /// The unfinished step, if any.
    pub(crate) dirty: Option<DirtyMark>,
    /// The stored checksums were written by the earlier algorithm: trusted, and re-pinned by
    /// the next run that takes the lock.
    pub(crate) legacy: bool,
    /// A stored version this binary does not know (a newer binary ran, or the row was edited
    /// by hand). Runs refuse it; listings show it.
    pub(crate) unknown: Option<String>,
    /// What the adopted version table says that cannot be taken: its version, and the tracking
    /// table's when it has one. Runs refuse it.
    pub(crate) adoption: Option<(String, Option<String>)>,
    /// The starting version came from the adopted version table: the table exists.
    pub(crate) adopted: bool,
    /// A row with no version would read as `baseline` (a plain or adopted baseline, not one
    /// for existing tables only, which a dropped table does not take): a down keeps the first
    /// step rather than record nothing.
    pub(crate) unrecorded_reads_as_baseline: bool,
}

impl ChainState {
    pub(crate) fn current(&self) -> Option<&Version> {
        self.stored.as_ref().or(self.baseline.as_ref())
    }
}

/// For a fresh install, which is for an empty database: a table with nothing recorded starts
/// from its first step, whatever baseline the manager has (an adopted version still counts:
/// its table exists).
pub(crate) fn without_baselines(states: &mut [ChainState]) {
    for state in states {
        if state.stored.is_none() && !state.adopted {
            state.baseline = None;
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// `up` without a target: each table's latest version.
    Latest,
    /// A version.
    Version(Version),
    /// `down` to nothing applied.
    Base,
    /// `down` by this many steps from where each selected table stands when the run plans
    /// (under the lock: a step another runner applied meanwhile is counted, not reverted too).
    /// A run turns it into [`Target::Each`] once, so that planning again after a race does
    /// not count from where its own downs left a table.
    Back(usize),
    /// A version per chain (by index; `None`: nothing applied): [`Target::Back`] resolved.
    Each(Vec<Option<Version>>),
}

/// A validated request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) direction: Direction,
    pub(crate) target: Target,
    /// Selected chains; all when `None`.
    pub(crate) chains: Option<Vec<usize>>,
    pub(crate) force: bool,
    /// The `resumable` steps this run runs again: cut off, they never finished, whatever a
    /// baseline says (see [`below_resumed`]).
    pub(crate) resumes: Vec<Resumed>,
}

/// A `resumable` step cut off that a run runs again: its chain, its version, and when the
/// mark it left was set (what its start replaces, see
/// [`StepRecord::resumes`](crate::backend::StepRecord::resumes)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resumed {
    pub(crate) chain: usize,
    pub(crate) step: Version,
    pub(crate) since: Timestamp,
}

impl Resumed {
    /// The step that left `mark` on chain `c`, as a run that resumes it names it (`None`: a
    /// version that does not parse).
    pub(crate) fn of(c: usize, mark: &DirtyMark) -> Option<Resumed> {
        Some(Resumed {
            chain: c,
            step: Version::parse(&mark.version).ok()?,
            since: mark.since,
        })
    }

    /// Whether `mark` is the one this step left (its version and its start).
    fn left(&self, mark: &DirtyMark) -> bool {
        mark.since == self.since && Version::parse(&mark.version).is_ok_and(|v| v == self.step)
    }

    /// `state` of this step's chain as a run that resumes the step plans it (see
    /// [`below_resumed`]); what `status` shows of a table whose step the next `up` resumes.
    pub(crate) fn state_of(&self, graph: &Graph, state: &ChainState) -> ChainState {
        below_resumed(graph, self.chain, state, self)
    }
}

impl Request {
    /// A plain `up`: every table to its latest version, not forced.
    pub(crate) fn latest_up() -> Request {
        Request {
            direction: Direction::Up,
            target: Target::Latest,
            chains: None,
            force: false,
            resumes: Vec::new(),
        }
    }

    /// When the mark that the `resumable` step at `version` of chain `c` left was set, if this
    /// request runs it again going `direction` (see [`StepRecord::resumes`]).
    ///
    /// [`StepRecord::resumes`]: crate::backend::StepRecord::resumes
    pub(crate) fn resumed_since(
        &self,
        c: usize,
        direction: Direction,
        version: &Version,
    ) -> Option<Timestamp> {
        let resumed = self.resumes.iter().find(|r| r.chain == c)?;
        (direction == Direction::Up && resumed.step == *version).then_some(resumed.since)
    }

    /// Whether this is [`latest_up`](Self::latest_up).
    pub(crate) fn is_latest_up(&self) -> bool {
        self.direction == Direction::Up
            && matches!(self.target, Target::Latest)
            && self.chains.is_none()
            && !self.force
    }
}

/// The version chain `c`, standing at `state`, should end at: `None` means nothing applied.
fn chain_target(graph: &Graph, c: usize, state: &ChainState, target: &Target) -> Option<Version> {
    let chain = &graph.chains[c];
    match target {
        Target::Latest => chain.head(graph).cloned(),
        Target::Base => None,
        Target::Back(steps) => back_from(graph, c, state, *steps),
        Target::Each(targets) => targets.get(c).cloned().flatten(),
        Target::Version(v) => {
            let len = chain.applied_len(graph, Some(v));
            len.checked_sub(1)
                .map(|i| graph.nodes[chain.nodes[i]].version.clone())
        }
    }
}

/// `request` with a [`Target::Back`] resolved against `states` (each selected table's version
/// that many steps below where it stands), for a run that may plan again.
pub(crate) fn resolved(graph: &Graph, states: &[ChainState], request: &Request) -> Request {
    let mut request = request.clone();
    if let Target::Back(steps) = request.target {
        request.target = Target::Each(
            (0..graph.chains.len())
                .map(|c| back_from(graph, c, &states[c], steps))
                .collect(),
        );
    }
    request
}

/// `state` of chain `c` as a run that resumes a `resumable` step cut off plans it: the
/// step's mark taken away (the run runs it again; the mark itself stays in the database until
/// the step's start replaces it), and a baseline at or above it, with nothing recorded, put
/// below it (the step never finished, and the table it began to build would otherwise read as
/// at the baseline).
fn below_resumed(graph: &Graph, c: usize, state: &ChainState, resumed: &Resumed) -> ChainState {
    let mut state = state.clone();
    state.dirty.take_if(|mark| resumed.left(mark));
    let step = &resumed.step;
    if state.stored.is_none() && state.baseline.as_ref().is_some_and(|b| b >= step) {
        let chain = &graph.chains[c];
        let below = chain.applied_len(graph, Some(step)).saturating_sub(1);
        state.baseline = below
            .checked_sub(1)
            .map(|p| graph.nodes[chain.nodes[p]].version.clone());
    }
    state
}

/// The version `steps` below where chain `c` stands in `state` (`None`: nothing applied).
fn back_from(graph: &Graph, c: usize, state: &ChainState, steps: usize) -> Option<Version> {
    let chain = &graph.chains[c];
    let applied = chain.applied_len(graph, state.current());
    let keep = applied.checked_sub(steps)?;
    keep.checked_sub(1)
        .map(|i| graph.nodes[chain.nodes[i]].version.clone())
}

/// The chains a request selects: the ones it names, else all.
fn selected(graph: &Graph, request: &Request) -> Vec<usize> {
    match &request.chains {
        Some(chains) => chains.clone(),
        None => (0..graph.chains.len()).collect(),
    }
}

/// A version target must be a version of one of the selected tables: checked from the graph
/// alone, so a request can be refused before anything is read.
pub(crate) fn check_target(graph: &Graph, request: &Request) -> Result<()> {
    match &request.target {
        Target::Version(v) => check_declared(graph, &selected(graph, request), v),
        _ => Ok(()),
    }
}

/// `version` must be declared by one of `chains` (a release need not be every table's
/// version, but one no table has is a typo): else [`Error::UnknownVersion`], naming the table
/// when there is one.
pub(crate) fn check_declared(graph: &Graph, chains: &[usize], version: &Version) -> Result<()> {
    if chains
        .iter()
        .any(|&c| graph.chains[c].position(graph, version).is_some())
    {
        return Ok(());
    }
    let table = match chains {
        [only] => Some(graph.chains[*only].table.to_string()),
        _ => None,
    };
    Err(Error::UnknownVersion {
        table,
        version: version.clone(),
    })
}

/// The steps `request` runs from `states`. A version target was checked when the request was
/// made ([`check_target`]).
pub(crate) fn plan(graph: &Graph, states: &[ChainState], request: &Request) -> Result<Plan> {
    let selected = selected(graph, request);
    // The steps this run resumes: their marks do not refuse it, and they never finished,
    // whatever a baseline says (for the plan and for the `after` edges alike).
    let adjusted: Vec<ChainState>;
    let states = if request.resumes.is_empty() {
        states
    } else {
        adjusted = (0..states.len())
            .map(|c| match request.resumes.iter().find(|r| r.chain == c) {
                Some(resumed) => below_resumed(graph, c, &states[c], resumed),
                None => states[c].clone(),
            })
            .collect();
        &adjusted
    };
    for &c in &selected {
        if let Some(mark) = &states[c].dirty {
            let chain = &graph.chains[c];
            return Err(Error::dirty(chain.module, chain.table, mark));
        }
    }
    let mut plan = Plan::default();
    for &c in &selected {
        let state = &states[c];
        let target = chain_target(graph, c, state, &request.target);
        match request.direction {
            Direction::Up => plan_up(graph, c, state, target, request, &mut plan)?,
            Direction::Down => plan_down(graph, c, state, target, request, &mut plan)?,
        }
    }
    match request.direction {
        Direction::Up => plan.steps.sort_by_key(|s| graph.nodes[s.node].rank),
        Direction::Down => plan
            .steps
            .sort_by_key(|s| std::cmp::Reverse(graph.nodes[s.node].rank)),
    }
    check_after_edges(graph, states, request.direction, &plan)?;
    Ok(plan)
}

fn plan_up(
    graph: &Graph,
    c: usize,
    state: &ChainState,
    target: Option<Version>,
    request: &Request,
    plan: &mut Plan,
) -> Result<()> {
    let chain = &graph.chains[c];
    let current = state.current();
    if !request.force {
        if let (Some(cur), Target::Version(requested)) = (current, &request.target) {
            if target.as_ref().is_none_or(|t| cur > t) {
                // A release target over every table (Agno's way): a table already past it
                // stays where it is. A table named in the request is an error instead.
                if request.chains.is_none() {
                    let steps = chain.applied_len(graph, Some(cur))
                        - chain.applied_len(graph, target.as_ref());
                    let reason = SkipReason::AboveTarget {
                        current: cur.clone(),
                        target: requested.clone(),
                    };
                    skip(plan, graph, c, steps, reason);
                    return Ok(());
                }
                return Err(Error::TargetBelowCurrent {
                    table: chain.table.to_string(),
                    current: cur.clone(),
                    target: target.unwrap_or_else(|| Version::new(0, 0, 0)),
                });
            }
        }
    }
    let end = chain.applied_len(graph, target.as_ref());
    let start = if request.force {
        chain.applied_len(graph, state.baseline.as_ref())
    } else {
        chain.applied_len(graph, current).min(end)
    };
    skip(plan, graph, c, start.min(end), SkipReason::AlreadyThere);
    let mut expected = state.raw.clone();
    for i in start..end {
        let node = &graph.nodes[chain.nodes[i]];
        let version = node.version.to_string();
        plan.steps.push(PlannedStep {
            step: node.key(),
            direction: Direction::Up,
            transactional: node.migration.transactional(),
            sql: None,
            node: chain.nodes[i],
            expected: expected.replace(version.clone()),
            new_version: Some(version),
            new_checksum: Some(checksum::render(chain.cumulative[i])),
        });
    }
    Ok(())
}

fn plan_down(
    graph: &Graph,
    c: usize,
    state: &ChainState,
    target: Option<Version>,
    request: &Request,
    plan: &mut Plan,
) -> Result<()> {
    let chain = &graph.chains[c];
    let current = state.current();
    if !request.force && target.is_some() && current < target.as_ref() {
        if let Target::Version(requested) = &request.target {
            // A release target over every table: a table already below it stays where it is,
            // as `up` leaves a table above its target. A table named in the request is an
            // error instead.
            if request.chains.is_none() {
                let reason = SkipReason::BelowTarget {
                    current: current.cloned(),
                    target: requested.clone(),
                };
                skip(plan, graph, c, 0, reason);
                return Ok(());
            }
            return Err(Error::TargetAboveCurrent {
                table: chain.table.to_string(),
                current: current.cloned(),
                target: requested.clone(),
            });
        }
    }
    let mut keep = chain.applied_len(graph, target.as_ref());
    if let (Some(baseline), true) = (&state.baseline, state.unrecorded_reads_as_baseline) {
        // Nothing recorded reads as the baseline: a down to nothing would be taken for the
        // baseline by the next run, which would skip the steps it reverted.
        if keep == 0 && !chain.nodes.is_empty() {
            if let (Target::Version(requested), Some(_)) = (&request.target, &request.chains) {
                return Err(Error::Config(format!(
                    "table `{}` cannot go down to {requested}: with no version recorded it \
                     would read as at its baseline {baseline}; keep its first step",
                    chain.table
                )));
            }
            let reason = SkipReason::FirstStepKept {
                baseline: baseline.clone(),
            };
            skip(plan, graph, c, 1, reason);
            keep = 1;
        }
    }
    let end = if request.force {
        chain.nodes.len()
    } else {
        chain.applied_len(graph, current).max(keep)
    };
    skip(
        plan,
        graph,
        c,
        chain.nodes.len() - end,
        SkipReason::AlreadyThere,
    );
    let mut expected = state.raw.clone();
    for i in (keep..end).rev() {
        let node = &graph.nodes[chain.nodes[i]];
        if matches!(node.migration.reversal(), Reversal::Irreversible) {
            return Err(Error::Irreversible {
                step: Box::new(node.key()),
            });
        }
        let new_version = i
            .checked_sub(1)
            .map(|p| graph.nodes[chain.nodes[p]].version.to_string());
        let new_checksum = i
            .checked_sub(1)
            .map(|p| checksum::render(chain.cumulative[p]));
        let next_expected = new_version.clone();
        plan.steps.push(PlannedStep {
            step: node.key(),
            direction: Direction::Down,
            transactional: node.migration.transactional(),
            sql: None,
            node: chain.nodes[i],
            expected: std::mem::replace(&mut expected, next_expected),
            new_version,
            new_checksum,
        });
    }
    Ok(())
}

/// `after` edges across tables: an up step needs its dependency applied or planned; a reverted
/// step must not leave an applied dependent behind.
fn check_after_edges(
    graph: &Graph,
    states: &[ChainState],
    direction: Direction,
    plan: &Plan,
) -> Result<()> {
    let planned: std::collections::HashSet<usize> = plan.steps.iter().map(|s| s.node).collect();
    let is_applied = |n: usize| {
        let node = &graph.nodes[n];
        states[node.chain]
            .current()
            .is_some_and(|cur| node.version <= *cur)
    };
    // A step with a dirty mark (cut off on its way up or down, in a table the request does
    // not select) may be half applied: an edge to it is refused with its mark, not judged by
    // the version its table records.
    let refuse_marked = |n: usize| -> Result<()> {
        let node = &graph.nodes[n];
        let state = &states[node.chain];
        match &state.dirty {
            Some(mark) if Version::parse(&mark.version).is_ok_and(|v| v == node.version) => {
                let chain = &graph.chains[node.chain];
                Err(Error::dirty(chain.module, chain.table, mark))
            }
            _ => Ok(()),
        }
    };
    match direction {
        Direction::Up => {
            for step in &plan.steps {
                for &dep in &graph.nodes[step.node].after {
                    refuse_marked(dep)?;
                    if !is_applied(dep) && !planned.contains(&dep) {
                        return Err(Error::DependencyNotApplied {
                            step: Box::new(step.step.clone()),
                            dependency: Box::new(graph.nodes[dep].key()),
                        });
                    }
                }
            }
        }
        Direction::Down => {
            for (n, node) in graph.nodes.iter().enumerate() {
                for &dep in &node.after {
                    if !planned.contains(&dep) || planned.contains(&n) {
                        continue;
                    }
                    refuse_marked(n)?;
                    if is_applied(n) {
                        return Err(Error::DependentStillApplied {
                            step: Box::new(graph.nodes[dep].key()),
                            dependent: Box::new(node.key()),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}
