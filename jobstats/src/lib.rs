//! `hpcmon-jobstats`: a Slurm job's efficiency report with advice, a compact summary kept at
//! job end, and a scaling prediction from accounting history.
//!
//! | module | role |
//! | --- | --- |
//! | [`model`] | the report's data: job header, usage, notes, runs |
//! | [`slurm`] | the job header and history from `sacct`/`squeue`; writing the AdminComment |
//! | [`prom`] | the Prometheus HTTP API client (Prometheus or VictoriaMetrics) |
//! | [`usage`] | the fixed set of PromQL queries that give a job's [`model::Usage`] |
//! | [`advice`] | declarative advice rules (YAML) evaluated on a report's facts |
//! | [`render`] | the report as text for a terminal |
//! | [`summary`] | the compact, versioned summary stored at job end (AdminComment) |
//! | [`store`] | the summary table in SQLite or PostgreSQL |
//! | [`scaling`] | speedup, efficiency, Karp–Flatt fit and predictions; [`plot`] draws them |
//! | [`report`] | builds a report: header, usage or stored summary, advice |
//! | [`serve`] | the HTTP API and the report page |

pub mod advice;
pub mod model;
pub mod plot;
pub mod prom;
pub mod render;
pub mod report;
pub mod scaling;
pub mod serve;
pub mod slurm;
pub mod store;
pub mod summary;
pub mod usage;
