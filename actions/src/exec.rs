//! The executor: one task that takes journaled actions in priority order and carries them
//! out, journaling every step before it happens.
//!
//! For each action:
//!
//! 1. Names get their second check: they must exist in `sinfo`'s answer (IPMI actions: in
//!    the BMC map); `all` becomes what Slurm lists. Unknown names, or more nodes than the
//!    rule's `max_nodes`, reject the action.
//! 2. The current state of every target decides: change it, hold it (already changed by
//!    hpcmon for another alert), or leave it alone (someone else set it so).
//! 3. Dry-run stops here: the action is journaled `dry_run` with its commands.
//! 4. Hold-off (per group and target, from the journal) and the hourly rate limit may defer
//!    the action; the kill switch stops the executor altogether.
//! 5. In one transaction: the action becomes `running`, each target's change is written as
//!    `planned` with its prior state. Then the commands run (argv, deadline).
//! 6. In one transaction: changes become `applied`, the hold-off clock starts, the action is
//!    `done`; or it is deferred for a retry with backoff, or `failed`.
//!
//! A process killed during 5–6 leaves the action `running` with its planned changes; at
//! startup such actions are checked again from step 1, and a planned change whose target is
//! already in the wanted state is recorded as applied (the command had run).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hpcmon_kit::hostlist;
use tokio::sync::Notify;

use crate::ipmi::Ipmi;
use crate::journal::{self, fmt_ms, now_ms, state, ActionRow, Change, Journal};
use crate::metrics::Metrics;
use crate::policy::{ActionKind, Group, Limits, Retry, REASON_PREFIX};
use crate::slurm::{self, Slurm};
use crate::target::Targets;

/// The executor's collaborators.
pub struct Executor {
    pub journal: Journal,
    pub slurm: Slurm,
    pub ipmi: Option<Arc<Ipmi>>,
    pub retry: Retry,
    pub limits: Limits,
    pub notify: Arc<Notify>,
    pub metrics: Arc<Metrics>,
}

/// Why an action cannot go on now.
#[derive(Debug)]
enum Fail {
    /// It never can (unknown names, over a cap): `rejected`.
    Reject(String),
    /// Maybe later (Slurm did not answer): retried with backoff.
    Transient(String),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Transient(format!("journal: {e}"))
    }
}

/// What the targets look like now.
enum Inventory {
    Partitions(slurm::Partitions),
    Nodes(BTreeMap<String, slurm::Node>),
    /// node → power on (`Err`: the BMC did not say).
    Bmc(BTreeMap<String, Result<bool, String>>),
}

impl Inventory {
    /// Whether `t` is in the state the changing action `kind` leaves it in.
    fn changed(&self, kind: ActionKind, t: &str) -> bool {
        match (self, kind) {
            (Inventory::Partitions(p), _) => p.get(t).is_some_and(|s| s != "up"),
            (Inventory::Nodes(n), ActionKind::Drain) => n.get(t).is_some_and(|n| n.drained()),
            (Inventory::Nodes(n), _) => n.get(t).is_some_and(|n| n.powered_down()),
            (Inventory::Bmc(b), _) => matches!(b.get(t), Some(Ok(false))),
        }
    }

    /// Whether `t` still shows hpcmon's change (for a revert): changed, and for a drain
    /// with hpcmon's reason still on it.
    fn still_ours(&self, kind: ActionKind, t: &str) -> bool {
        match (self, kind) {
            (Inventory::Nodes(n), ActionKind::Drain) => {
                n.get(t).is_some_and(|n| n.drained() && n.reason_ours())
            }
            _ => self.changed(kind, t),
        }
    }

    /// The state of `t` in words, for the journal.
    fn describe(&self, t: &str) -> String {
        match self {
            Inventory::Partitions(p) => p.get(t).cloned().unwrap_or_else(|| "unknown".into()),
            Inventory::Nodes(n) => n
                .get(t)
                .map(|n| {
                    if n.reason.is_empty() || n.reason == "none" {
                        n.state.clone()
                    } else {
                        format!("{} ({})", n.state, n.reason)
                    }
                })
                .unwrap_or_else(|| "unknown".into()),
            Inventory::Bmc(b) => match b.get(t) {
                Some(Ok(true)) => "power on".into(),
                Some(Ok(false)) => "power off".into(),
                Some(Err(e)) => format!("power unknown: {e}"),
                None => "unknown".into(),
            },
        }
    }
}

/// What an action will do.
#[derive(Default)]
struct Plan {
    /// Targets to change.
    change: Vec<String>,
    /// Targets already changed by hpcmon (another alert's action): held too.
    hold: Vec<(String, i64)>,
    /// Targets whose planned change (by this action, before a restart) turned out done.
    already: Vec<String>,
    /// For undoing: changes this action claimed before a restart that turned out undone.
    undone_already: Vec<Change>,
    /// Targets left alone, and why.
    left: Vec<(String, String)>,
    /// For undoing: the live changes to undo.
    undo: Vec<Change>,
    /// For undoing: live changes someone else changed since (dropped from the journal).
    abandon: Vec<(Change, String)>,
    /// Holds of the reverted action to drop.
    release: Option<i64>,
    /// Job ids (cancel_jobs).
    jobs: Vec<String>,
}

fn summarize(p: &Plan) -> String {
    let mut parts = Vec::new();
    if !p.change.is_empty() {
        parts.push(format!("change {}", hostlist::compress(&p.change)));
    }
    if !p.undo.is_empty() {
        let t: Vec<String> = p.undo.iter().map(|c| c.target.clone()).collect();
        parts.push(format!("undo on {}", hostlist::compress(&t)));
    }
    let mut before: Vec<String> = p.already.clone();
    before.extend(p.undone_already.iter().map(|c| c.target.clone()));
    if !before.is_empty() {
        parts.push(format!(
            "{} already done before a restart",
            hostlist::compress(&before)
        ));
    }
    for (t, by) in &p.hold {
        parts.push(format!("{t} already changed by hpcmon (#{by}): held"));
    }
    for (t, why) in &p.left {
        parts.push(format!("{t}: {why}"));
    }
    for (c, why) in &p.abandon {
        parts.push(format!("{}: {why}", c.target));
    }
    if !p.jobs.is_empty() {
        parts.push(format!("jobs {}", p.jobs.join(",")));
    }
    if parts.is_empty() {
        "nothing to do".into()
    } else {
        parts.join("; ")
    }
}

impl Executor {
    /// Runs forever: recovers interrupted actions, then takes runnable ones.
    pub async fn run(self: Arc<Self>) {
        match self.journal.interrupted().await {
            Ok(rows) => {
                for a in rows {
                    tracing::warn!(id = a.id, action = %a.action, "action was running when the process stopped; checking it again");
                    if let Ok(mut c) = self.journal.begin().await {
                        let _ = journal::set_state(
                            &mut c,
                            a.id,
                            state::PENDING,
                            "the process stopped while this action ran; checking the targets again to finish it",
                            "",
                            None,
                        )
                        .await;
                        let _ = c.commit().await;
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading interrupted actions"),
        }
        loop {
            let wait = match self.step().await {
                Ok(true) => continue,
                Ok(false) => self.idle_wait().await,
                Err(e) => {
                    tracing::warn!(error = %e, "executor step failed");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = self.notify.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    async fn idle_wait(&self) -> Duration {
        let now = now_ms();
        match self.journal.next_wakeup().await {
            Ok(Some(t)) if t > now => {
                Duration::from_millis((t - now) as u64).min(Duration::from_secs(5))
            }
            Ok(Some(_)) => Duration::from_millis(200),
            _ => Duration::from_secs(5),
        }
    }

    /// Takes one action if there is one; `Ok(false)` when idle or paused.
    pub async fn step(&self) -> Result<bool, sqlx::Error> {
        if self.journal.paused().await? {
            return Ok(false);
        }
        let Some(a) = self.journal.next_runnable(now_ms()).await? else {
            return Ok(false);
        };
        self.process(a).await?;
        Ok(true)
    }

    async fn finish(
        &self,
        a: &ActionRow,
        st: &str,
        detail: &str,
        not_before: Option<i64>,
    ) -> Result<(), sqlx::Error> {
        let mut c = self.journal.begin().await?;
        journal::set_state(&mut c, a.id, st, detail, "", not_before).await?;
        c.commit().await?;
        if !state::active(st) || st == state::DEFERRED {
            self.metrics.outcome(&a.action, st);
        }
        Ok(())
    }

    async fn process(&self, a: ActionRow) -> Result<(), sqlx::Error> {
        let Some(kind) = ActionKind::parse(&a.action) else {
            return self
                .finish(&a, state::REJECTED, "unknown action in the journal", None)
                .await;
        };
        let targets: Targets = match serde_json::from_str(&a.targets) {
            Ok(t) => t,
            Err(_) => {
                return self
                    .finish(&a, state::REJECTED, "no valid targets in the journal", None)
                    .await
            }
        };
        let dry = a.mode != "enforce";
        if !dry {
            let now = now_ms();
            let (n, oldest) = self.journal.started_since(now - 3_600_000).await?;
            // An action being retried was counted when it first started.
            if a.started_ms.is_none() && n >= self.limits.actions_per_hour as i64 {
                let until = oldest.unwrap_or(now) + 3_600_000;
                let why = format!(
                    "rate limit: {n} actions started in the last hour (limit {}); waiting until {}",
                    self.limits.actions_per_hour,
                    fmt_ms(until)
                );
                return self.finish(&a, state::DEFERRED, &why, Some(until)).await;
            }
        }
        let planned = if a.phase == "revert" {
            self.plan_revert(&a, kind).await
        } else if kind == ActionKind::CancelJobs {
            self.plan_cancel(&a, &targets).await
        } else if kind.undoes().is_some() {
            self.plan_undo(&a, kind, &targets).await
        } else {
            self.plan_apply(&a, kind, &targets).await
        };
        let (plan, inv) = match planned {
            Ok(p) => p,
            Err(Fail::Reject(why)) => {
                return self
                    .finish(&a, state::REJECTED, &format!("refused: {why}"), None)
                    .await
            }
            Err(Fail::Transient(why)) => return self.retry_or_fail(&a, &why).await,
        };
        let commands = self.commands(&a, kind, &plan);
        let mut affected: Vec<String> = plan.change.clone();
        affected.extend(plan.undo.iter().map(|c| c.target.clone()));
        if kind == ActionKind::CancelJobs {
            affected = plan.jobs.clone();
        }
        let summary = summarize(&plan);
        if dry {
            let mut c = self.journal.begin().await?;
            journal::set_plan(&mut c, a.id, &commands, &affected).await?;
            let detail = if commands.is_empty() {
                format!("dry-run: nothing would run ({summary})")
            } else {
                format!(
                    "dry-run: would run {} command(s) ({summary}); nothing was changed",
                    commands.len()
                )
            };
            journal::set_state(&mut c, a.id, state::DRY_RUN, &detail, "", None).await?;
            c.commit().await?;
            self.metrics.outcome(&a.action, state::DRY_RUN);
            return Ok(());
        }
        // Hold-off: the same kind of change on the same target waits.
        let group = kind.group();
        if group != Group::Cancel && a.hold_off_ms > 0 {
            let mut until = 0i64;
            let mut on = String::new();
            let touched: Vec<&String> = plan
                .change
                .iter()
                .chain(plan.undo.iter().map(|c| &c.target))
                .collect();
            for t in touched {
                if let Some(at) = self.journal.last_change(group.as_str(), t).await? {
                    if at + a.hold_off_ms > until {
                        until = at + a.hold_off_ms;
                        on = format!("{t} (changed at {})", fmt_ms(at));
                    }
                }
            }
            if until > now_ms() {
                let why = format!(
                    "hold-off: last {} change on {on}; waiting {}s, until {}",
                    group.as_str(),
                    a.hold_off_ms / 1000,
                    fmt_ms(until)
                );
                return self.finish(&a, state::DEFERRED, &why, Some(until)).await;
            }
        }
        // Journal first: running, with each planned change and its prior state.
        let undone_kind = kind.undoes().unwrap_or(kind);
        let mut c = self.journal.begin().await?;
        journal::mark_started(&mut c, a.id).await?;
        journal::set_plan(&mut c, a.id, &commands, &affected).await?;
        // (first: an abandoned change's holders go before new ones are added)
        for (ch, _) in &plan.abandon {
            journal::drop_holders(&mut c, undone_kind.as_str(), &ch.target).await?;
            journal::set_change(&mut c, ch.id, "abandoned", None).await?;
        }
        for t in &plan.change {
            let live = journal_live(&mut c, kind, t).await?;
            match live {
                Some(ch) if ch.action_id == a.id && ch.status == "planned" => {}
                _ => journal::plan_change(&mut c, kind.as_str(), t, a.id, &inv.describe(t)).await?,
            }
        }
        for (t, _) in &plan.hold {
            journal::add_holder(&mut c, kind.as_str(), t, a.id).await?;
        }
        if let Some(r) = plan.release {
            journal::release(&mut c, r).await?;
        }
        for ch in &plan.undo {
            journal::drop_holders(&mut c, undone_kind.as_str(), &ch.target).await?;
            journal::set_change(&mut c, ch.id, "reverting", Some(a.id)).await?;
        }
        let detail = if commands.is_empty() {
            format!("checked: {summary}")
        } else {
            format!("running {} command(s): {summary}", commands.len())
        };
        journal::set_state(&mut c, a.id, state::RUNNING, &detail, "", None).await?;
        c.commit().await?;

        // Run.
        let (ok, failed) = self.run_commands(kind, &plan, &commands).await;

        // Record the outcome.
        let mut c = self.journal.begin().await?;
        let mut done_targets: Vec<String> = Vec::new();
        for t in plan.change.iter().chain(&plan.already) {
            if ok.contains(t) || plan.already.contains(t) {
                journal::change_status(&mut c, a.id, std::slice::from_ref(t), "planned", "applied")
                    .await?;
                done_targets.push(t.clone());
            }
        }
        for ch in &plan.undo {
            if ok.contains(&ch.target) {
                journal::set_change(&mut c, ch.id, "reverted", None).await?;
                done_targets.push(ch.target.clone());
            }
        }
        for ch in &plan.undone_already {
            journal::set_change(&mut c, ch.id, "reverted", None).await?;
        }
        if group != Group::Cancel {
            let changed: Vec<String> = done_targets
                .iter()
                .filter(|t| !plan.already.contains(t))
                .cloned()
                .collect();
            journal::touch(&mut c, group.as_str(), &changed, a.id).await?;
        }
        c.commit().await?;
        if failed.is_empty() {
            let detail = if commands.is_empty() {
                format!("done: {summary}")
            } else {
                format!("done: ran {} command(s): {summary}", commands.len())
            };
            self.finish(&a, state::DONE, &detail, None).await
        } else {
            let errs: Vec<String> = failed.iter().map(|(t, e)| format!("{t}: {e}")).collect();
            self.retry_or_fail(&a, &errs.join("; ")).await
        }
    }

    async fn retry_or_fail(&self, a: &ActionRow, why: &str) -> Result<(), sqlx::Error> {
        let mut c = self.journal.begin().await?;
        // A run that started counted its attempt; a failure before starting counts one here.
        let fresh = journal::get_id_in(&mut c, a.id).await?;
        let ran = fresh.as_ref().is_some_and(|f| f.attempts > a.attempts);
        if !ran {
            sqlx::query("UPDATE actions SET attempts = attempts + 1 WHERE id = ?")
                .bind(a.id)
                .execute(&mut *c)
                .await?;
        }
        let attempts = a.attempts + 1;
        if attempts < self.retry.attempts as i64 {
            let backoff = self.retry.backoff.as_millis() as i64 * (1i64 << (attempts - 1).min(10));
            let until = now_ms() + backoff;
            journal::set_state(
                &mut c,
                a.id,
                state::DEFERRED,
                &format!(
                    "attempt {attempts} of {} failed: {why}; retrying at {}",
                    self.retry.attempts,
                    fmt_ms(until)
                ),
                "",
                Some(until),
            )
            .await?;
            c.commit().await?;
            self.metrics.outcome(&a.action, "retry");
            return Ok(());
        }
        // Final: planned changes that never happened are not hpcmon's; claimed reverts go
        // back to being live changes.
        sqlx::query(
            "DELETE FROM holders WHERE action_id = ?1 AND EXISTS (SELECT 1 FROM changes ch WHERE ch.action_id = ?1 \
             AND ch.kind = holders.kind AND ch.target = holders.target AND ch.status = 'planned')",
        )
        .bind(a.id)
        .execute(&mut *c)
        .await?;
        sqlx::query("UPDATE changes SET status = 'failed', ended_ms = ? WHERE action_id = ? AND status = 'planned'")
            .bind(now_ms())
            .bind(a.id)
            .execute(&mut *c)
            .await?;
        sqlx::query("UPDATE changes SET status = 'applied', revert_action_id = NULL WHERE revert_action_id = ? AND status = 'reverting'")
            .bind(a.id)
            .execute(&mut *c)
            .await?;
        journal::set_state(
            &mut c,
            a.id,
            state::FAILED,
            &format!("failed after {attempts} attempt(s): {why}"),
            "",
            None,
        )
        .await?;
        c.commit().await?;
        self.metrics.outcome(&a.action, state::FAILED);
        Ok(())
    }

    /// Names of `targets` after the second check, with the inventory they were checked on.
    async fn resolve(
        &self,
        a: &ActionRow,
        kind: ActionKind,
        targets: &Targets,
    ) -> Result<(Vec<String>, Inventory), Fail> {
        let max = a.max_nodes.max(1) as usize;
        match kind {
            ActionKind::PartitionDown | ActionKind::PartitionUp => {
                let inv = self.slurm.partitions().await.map_err(Fail::Transient)?;
                let names = match targets {
                    Targets::AllPartitions => inv.keys().cloned().collect(),
                    Targets::Partitions(p) => {
                        let unknown: Vec<&String> =
                            p.iter().filter(|p| !inv.contains_key(*p)).collect();
                        if !unknown.is_empty() {
                            return Err(Fail::Reject(format!(
                                "partition(s) {} do not exist (Slurm has: {})",
                                unknown
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(","),
                                inv.keys().cloned().collect::<Vec<_>>().join(",")
                            )));
                        }
                        p.clone()
                    }
                    _ => return Err(Fail::Reject("this action takes partitions".into())),
                };
                Ok((names, Inventory::Partitions(inv)))
            }
            ActionKind::IpmiPowerOff | ActionKind::IpmiPowerOn => {
                let Some(ipmi) = &self.ipmi else {
                    return Err(Fail::Reject(
                        "IPMI is not configured (--ipmi.config.file and --ipmi.bmc-map)".into(),
                    ));
                };
                let names: Vec<String> = match targets {
                    Targets::AllNodes => ipmi.bmcs.keys().cloned().collect(),
                    Targets::Nodes(n) => {
                        let unknown: Vec<&String> =
                            n.iter().filter(|n| !ipmi.bmcs.contains_key(*n)).collect();
                        if !unknown.is_empty() {
                            return Err(Fail::Reject(format!(
                                "no BMC is configured for {} (--ipmi.bmc-map)",
                                hostlist::compress(&unknown)
                            )));
                        }
                        n.clone()
                    }
                    _ => return Err(Fail::Reject("this action takes nodes".into())),
                };
                check_cap(&names, max)?;
                let mut set = tokio::task::JoinSet::new();
                for n in &names {
                    let (ipmi, n) = (ipmi.clone(), n.clone());
                    set.spawn(async move {
                        let r = ipmi.is_on(&n).await;
                        (n, r)
                    });
                }
                let mut inv = BTreeMap::new();
                while let Some(r) = set.join_next().await {
                    if let Ok((n, r)) = r {
                        inv.insert(n, r);
                    }
                }
                Ok((names, Inventory::Bmc(inv)))
            }
            _ => {
                let inv = self.slurm.nodes().await.map_err(Fail::Transient)?;
                let names: Vec<String> = match targets {
                    Targets::AllNodes => inv.keys().cloned().collect(),
                    Targets::Nodes(n) => {
                        let unknown: Vec<&String> =
                            n.iter().filter(|n| !inv.contains_key(*n)).collect();
                        if !unknown.is_empty() {
                            return Err(Fail::Reject(format!(
                                "node(s) {} do not exist in Slurm (sinfo lists {} nodes)",
                                hostlist::compress(&unknown),
                                inv.len()
                            )));
                        }
                        n.clone()
                    }
                    _ => return Err(Fail::Reject("this action takes nodes".into())),
                };
                check_cap(&names, max)?;
                Ok((names, Inventory::Nodes(inv)))
            }
        }
    }

    async fn plan_apply(
        &self,
        a: &ActionRow,
        kind: ActionKind,
        targets: &Targets,
    ) -> Result<(Plan, Inventory), Fail> {
        let (names, inv) = self.resolve(a, kind, targets).await?;
        let mut p = Plan::default();
        for t in names {
            let live = self.journal.live_change(kind.as_str(), &t).await?;
            let changed = inv.changed(kind, &t);
            match (changed, live) {
                (true, Some(ch)) if ch.action_id == a.id && ch.status == "planned" => {
                    p.already.push(t)
                }
                (true, Some(ch)) if ch.action_id == a.id => {}
                (true, Some(ch)) => p.hold.push((t, ch.action_id)),
                (true, None) => p.left.push((
                    t.clone(),
                    format!("already {}, not by hpcmon: left alone", inv.describe(&t)),
                )),
                (false, Some(ch)) if ch.action_id != a.id || ch.status != "planned" => {
                    // Someone undid hpcmon's change meanwhile: that change is over.
                    p.abandon.push((
                        ch,
                        format!(
                            "was changed back by someone else (now {})",
                            inv.describe(&t)
                        ),
                    ));
                    p.change.push(t);
                }
                (false, _) => p.change.push(t),
            }
        }
        // An abandoned change is not "undone" by this action, only forgotten.
        Ok((p, inv))
    }

    async fn plan_undo(
        &self,
        a: &ActionRow,
        kind: ActionKind,
        targets: &Targets,
    ) -> Result<(Plan, Inventory), Fail> {
        let undone = kind.undoes().expect("undoing action");
        let (names, inv) = self.resolve(a, kind, targets).await?;
        let mut p = Plan::default();
        let claimed = self.journal.reverting_for(a.id).await?;
        for t in names {
            if let Some(ch) = claimed.iter().find(|c| c.target == t) {
                if inv.still_ours(undone, &t) {
                    p.undo.push(ch.clone());
                } else {
                    p.undone_already.push(ch.clone());
                }
                continue;
            }
            match self.journal.live_change(undone.as_str(), &t).await? {
                Some(ch) if inv.still_ours(undone, &t) => p.undo.push(ch),
                Some(ch) => p.abandon.push((
                    ch,
                    format!(
                        "no longer as hpcmon left it (now {}): left alone",
                        inv.describe(&t)
                    ),
                )),
                None => p.left.push((
                    t.clone(),
                    format!("{}: not changed by hpcmon, left alone", inv.describe(&t)),
                )),
            }
        }
        Ok((p, inv))
    }

    async fn plan_revert(
        &self,
        a: &ActionRow,
        kind: ActionKind,
    ) -> Result<(Plan, Inventory), Fail> {
        let undone = kind.undoes().expect("revert of a changing action");
        let Some(apply_id) = a.revert_of else {
            return Err(Fail::Reject("revert without the action it reverts".into()));
        };
        let mut p = Plan {
            release: Some(apply_id),
            ..Default::default()
        };
        if a.mode != "enforce" {
            // A dry-run revert shows the inverse of what the dry-run apply would have done.
            let apply = self.journal.get(apply_id).await?;
            let names: Vec<String> = apply
                .map(|r| serde_json::from_str(&r.affected).unwrap_or_default())
                .unwrap_or_default();
            p.change = names;
            return Ok((p, Inventory::Partitions(Default::default())));
        }
        let held = self.journal.held_by(apply_id).await?;
        let claimed = self.journal.reverting_for(a.id).await?;
        let mut names: Vec<String> = held.iter().map(|(_, t)| t.clone()).collect();
        names.extend(claimed.iter().map(|c| c.target.clone()));
        names.sort();
        names.dedup();
        if names.is_empty() {
            return Ok((p, Inventory::Partitions(Default::default())));
        }
        let targets = if kind.takes_nodes() {
            Targets::Nodes(names.clone())
        } else {
            Targets::Partitions(names.clone())
        };
        // The names were checked when they were changed; a node removed from Slurm since
        // is simply gone.
        let (_, inv) = match self.resolve(a, kind, &targets).await {
            Ok(x) => x,
            Err(Fail::Reject(_)) => {
                let all = if kind.takes_nodes() {
                    Targets::AllNodes
                } else {
                    Targets::AllPartitions
                };
                self.resolve(a, kind, &all).await?
            }
            Err(e) => return Err(e),
        };
        for t in names {
            if let Some(ch) = claimed.iter().find(|c| c.target == t) {
                if inv.still_ours(undone, &t) {
                    p.undo.push(ch.clone());
                } else {
                    p.undone_already.push(ch.clone());
                }
                continue;
            }
            let others = self
                .journal
                .other_holders(undone.as_str(), &t, apply_id)
                .await?;
            if !others.is_empty() {
                let ids: Vec<String> = others.iter().map(|i| format!("#{i}")).collect();
                p.left
                    .push((t, format!("still needed by {}: kept", ids.join(", "))));
                continue;
            }
            match self.journal.live_change(undone.as_str(), &t).await? {
                Some(ch) if inv.still_ours(undone, &t) => p.undo.push(ch),
                Some(ch) => p.abandon.push((
                    ch,
                    format!(
                        "no longer as hpcmon left it (now {}): left alone",
                        inv.describe(&t)
                    ),
                )),
                None => p.left.push((t, "no change of hpcmon's to undo".into())),
            }
        }
        Ok((p, inv))
    }

    async fn plan_cancel(
        &self,
        a: &ActionRow,
        targets: &Targets,
    ) -> Result<(Plan, Inventory), Fail> {
        let mut p = Plan::default();
        let jobs = match targets {
            Targets::AllPartitions | Targets::AllNodes => self.slurm.running_jobs(None, None).await,
            Targets::Partitions(_) => {
                let (names, _) = self.resolve(a, ActionKind::PartitionDown, targets).await?;
                self.slurm.running_jobs(Some(&names), None).await
            }
            Targets::Nodes(_) => {
                let (names, _) = self.resolve(a, ActionKind::Drain, targets).await?;
                self.slurm.running_jobs(None, Some(&names)).await
            }
        }
        .map_err(Fail::Transient)?;
        if jobs.is_empty() {
            p.left.push(("jobs".into(), "none running".into()));
        }
        p.jobs = jobs;
        Ok((p, Inventory::Partitions(Default::default())))
    }

    /// The commands of a plan, as argv.
    fn commands(&self, a: &ActionRow, kind: ActionKind, p: &Plan) -> Vec<Vec<String>> {
        let undo: Vec<String> = p.undo.iter().map(|c| c.target.clone()).collect();
        // A dry-run revert lists its targets in `change`.
        let dry_revert = a.phase == "revert" && a.mode != "enforce";
        let names: &[String] = if kind.undoes().is_some() && !dry_revert {
            &undo
        } else {
            &p.change
        };
        if kind == ActionKind::CancelJobs {
            return if p.jobs.is_empty() {
                vec![]
            } else {
                vec![slurm::cancel(&p.jobs)]
            };
        }
        if names.is_empty() {
            return vec![];
        }
        let reason = sanitize_reason(&a.reason);
        match kind {
            ActionKind::PartitionDown => names
                .iter()
                .map(|n| slurm::partition_state(n, "DOWN"))
                .collect(),
            ActionKind::PartitionUp => names
                .iter()
                .map(|n| slurm::partition_state(n, "UP"))
                .collect(),
            ActionKind::Drain => vec![slurm::node_state(names, "DRAIN", Some(&reason))],
            ActionKind::Resume => vec![slurm::node_state(names, "RESUME", None)],
            ActionKind::PowerDown => vec![slurm::node_state(names, "POWER_DOWN", Some(&reason))],
            ActionKind::PowerUp => vec![slurm::node_state(names, "POWER_UP", None)],
            ActionKind::IpmiPowerOff | ActionKind::IpmiPowerOn => {
                let on = kind == ActionKind::IpmiPowerOn;
                match &self.ipmi {
                    Some(i) => names.iter().map(|n| i.describe(n, on)).collect(),
                    None => vec![],
                }
            }
            ActionKind::CancelJobs => unreachable!(),
        }
    }

    /// Runs the commands; returns the targets done and the failures.
    async fn run_commands(
        &self,
        kind: ActionKind,
        p: &Plan,
        commands: &[Vec<String>],
    ) -> (Vec<String>, Vec<(String, String)>) {
        let targets: Vec<String> = if kind.undoes().is_some() {
            p.undo.iter().map(|c| c.target.clone()).collect()
        } else {
            p.change.clone()
        };
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        match kind {
            ActionKind::IpmiPowerOff | ActionKind::IpmiPowerOn => {
                let Some(ipmi) = self.ipmi.clone() else {
                    return (ok, vec![("ipmi".into(), "not configured".into())]);
                };
                let on = kind == ActionKind::IpmiPowerOn;
                let mut set = tokio::task::JoinSet::new();
                for t in targets {
                    let ipmi = ipmi.clone();
                    set.spawn(async move {
                        let r = ipmi.set(&t, on).await;
                        (t, r)
                    });
                }
                while let Some(r) = set.join_next().await {
                    match r {
                        Ok((t, Ok(()))) => ok.push(t),
                        Ok((t, Err(e))) => {
                            self.metrics.command("ipmi-power", false);
                            failed.push((t, e));
                            continue;
                        }
                        Err(e) => failed.push(("ipmi".into(), e.to_string())),
                    }
                    self.metrics.command("ipmi-power", true);
                }
            }
            ActionKind::PartitionDown | ActionKind::PartitionUp => {
                for (t, argv) in targets.iter().zip(commands) {
                    match self.slurm.execute(argv).await {
                        Ok(()) => {
                            self.metrics.command("scontrol", true);
                            ok.push(t.clone())
                        }
                        Err(e) => {
                            self.metrics.command("scontrol", false);
                            failed.push((t.clone(), e))
                        }
                    }
                }
            }
            _ => {
                for argv in commands {
                    match self.slurm.execute(argv).await {
                        Ok(()) => {
                            self.metrics.command(&argv[0], true);
                            ok.extend(targets.iter().cloned())
                        }
                        Err(e) => {
                            self.metrics.command(&argv[0], false);
                            failed.push((hostlist::compress(&targets), e))
                        }
                    }
                }
            }
        }
        (ok, failed)
    }
}

async fn journal_live(
    c: &mut sqlx::SqliteConnection,
    kind: ActionKind,
    t: &str,
) -> Result<Option<Change>, sqlx::Error> {
    sqlx::query_as::<_, Change>(
        "SELECT id, kind, target, action_id, status, prior, at_ms, revert_action_id FROM changes \
         WHERE kind = ? AND target = ? AND status IN ('planned','applied','reverting') ORDER BY id DESC LIMIT 1",
    )
    .bind(kind.as_str())
    .bind(t)
    .fetch_optional(c)
    .await
}

fn check_cap(names: &[String], max: usize) -> Result<(), Fail> {
    if names.len() > max {
        return Err(Fail::Reject(format!(
            "{} nodes, more than this rule's max_nodes of {max}",
            names.len()
        )));
    }
    Ok(())
}

/// The reason as written into Slurm: the journaled reason (policy text), with the prefix
/// guaranteed and anything but printable characters removed.
fn sanitize_reason(r: &str) -> String {
    let clean: String = r
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\'' | '=' | '`' | '\\' | '$'))
        .take(250)
        .collect();
    if clean.starts_with(REASON_PREFIX) {
        clean
    } else {
        format!("{REASON_PREFIX} {clean}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_keep_the_prefix_and_lose_quotes() {
        assert_eq!(
            sanitize_reason("hpcmon: hot [rule r]"),
            "hpcmon: hot [rule r]"
        );
        assert_eq!(
            sanitize_reason("x\" State=RESUME\n"),
            "hpcmon: x StateRESUME"
        );
    }
}
