//! # hpcmon-actions
//!
//! An Alertmanager webhook receiver that carries out a policy through Slurm and IPMI: the
//! ACMS room-temperature tiers (hold the queue, cancel jobs, power nodes down) and idle-node
//! power-down, safely.
//!
//! * [`policy`]: the policy file (rules: matchers → one action of a fixed set, targets,
//!   priority, revert, hold-off, caps, agreement and confirmation).
//! * [`target`]: targets from the policy or alert labels, checked before they are journaled.
//! * [`engine`]: a notification → decisions, journaled in one transaction (idempotent).
//! * [`journal`]: the SQLite journal: decisions, events, owned changes, hold-off clock.
//! * [`exec`]: the executor: checks names against Slurm, plans, journals, runs, records.
//! * [`slurm`] and [`ipmi`]: the commands (argv with deadlines, never a shell).
//! * [`app`]: the webhook, API, page, kill switch and metrics ([`metrics`]).
//!
//! Nothing runs unless the policy says `mode: enforce` (and `--dry-run` is not given); every
//! action is journaled before it runs, and its outcome after.

pub mod app;
pub mod engine;
pub mod exec;
pub mod ipmi;
pub mod journal;
pub mod metrics;
pub mod policy;
pub mod slurm;
pub mod target;
