//! The collector registry: one table row per collector.
//!
//! An exporter lists its collectors once, in a `&'static [Registration<C>]` table (`C` is the
//! exporter's own settings type, e.g. paths). Everything else is derived from that table:
//! `--collector.NAME` / `--no-collector.NAME` (with the default and help of the row), the
//! collector's own flags (a `clap::Args` struct named in the row, parsed once and handed out
//! by type through [`CollectorFlags`]), the landing page list, and the scraper's entries.
//! Adding a collector is then one file (the collector and its `Flags`) plus one row:
//!
//! ```
//! use std::sync::Arc;
//! use hpcmon_kit::registry::{flags, CollectorFlags, Registration};
//! use hpcmon_kit::{Collector, Context, MetricSet};
//!
//! /// The exporter's settings: what every collector may read.
//! struct Config {
//!     flags: CollectorFlags,
//! }
//!
//! /// Flags of the `demo` collector (`#[group(skip)]`: groups of several collectors coexist).
//! #[derive(Debug, Clone, clap::Args)]
//! #[group(skip)]
//! struct DemoFlags {
//!     /// The value to report.
//!     #[arg(long = "collector.demo.value", default_value_t = 1.0)]
//!     value: f64,
//! }
//!
//! struct Demo(f64);
//! impl Collector for Demo {
//!     fn collect(&self, _: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
//!         out.gauge("demo_value", "A value.").sample(&[], self.0);
//!         Ok(())
//!     }
//! }
//!
//! fn new_demo(cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
//!     Ok(Arc::new(Demo(cfg.flags.get::<DemoFlags>()?.value)))
//! }
//!
//! const REGISTRY: &[Registration<Config>] = &[
//!     Registration::new("demo", true, "A demonstration", new_demo).flags(flags::<DemoFlags>()),
//! ];
//!
//! let cmd = hpcmon_kit::registry::augment(clap::Command::new("demo"), REGISTRY);
//! let m = cmd.try_get_matches_from(["demo", "--collector.demo.value=2"]).unwrap();
//! let cfg = Config { flags: CollectorFlags::from_matches(&m, REGISTRY).unwrap() };
//! assert_eq!(hpcmon_kit::registry::enabled(&m, REGISTRY), ["demo"]);
//! assert_eq!(cfg.flags.get::<DemoFlags>().unwrap().value, 2.0);
//! ```
//!
//! [`Exporter::main`] runs a whole exporter from such a table; all four exporters (node,
//! GPU, IPMI, Slurm) do. State that several collectors share (the GPU set, the Slurm poller,
//! the FreeIPMI runtime) is made once in its `config` step, which also sees which
//! collectors are enabled ([`CollectorFlags::enabled`]), and lives in the settings `C` that
//! every constructor reads; extra endpoints (`/ipmi`, `/sd/nodes`) are added to the
//! [`App`](crate::App) in its `app` step. A collector that applies only where something is
//! present (the local BMC) says so in its row with [`Registration::when`].

use std::any::{Any, TypeId};
use std::collections::BTreeSet;
use std::sync::Arc;

use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::collector::{Collector, CollectorSpec, Scraper};

/// Builds a collector from the exporter's settings `C`.
pub type BuildFn<C> = fn(&C) -> anyhow::Result<Arc<dyn Collector>>;

/// One collector: its name, default, help line, own flags and constructor.
pub struct Registration<C: 'static> {
    /// Name used in `--collector.NAME`, the `collector` label and `collect[]`.
    pub name: &'static str,
    /// Enabled unless `--no-collector.NAME` (or `--collector.disable-defaults`).
    pub default_enabled: bool,
    /// One line for `--help`.
    pub help: &'static str,
    /// The collector's own flags, if any (see [`flags`]).
    pub flags: Option<FlagGroup>,
    /// The constructor, called once at startup when the collector is enabled.
    pub build: BuildFn<C>,
    /// Whether the collector applies to this host at all (see [`Registration::when`]).
    pub when: Option<fn(&C) -> bool>,
}

impl<C> Registration<C> {
    /// A row without flags of its own.
    pub const fn new(
        name: &'static str,
        default_enabled: bool,
        help: &'static str,
        build: BuildFn<C>,
    ) -> Self {
        Self {
            name,
            default_enabled,
            help,
            flags: None,
            build,
            when: None,
        }
    }

    /// The same row with the collector's flags (`flags::<module::Flags>()`).
    pub const fn flags(mut self, group: FlagGroup) -> Self {
        self.flags = Some(group);
        self
    }

    /// The same row, built only where `applies(&settings)` holds (e.g. the device the
    /// collector reads exists on this host). Where it does not, the enabled collector is
    /// skipped as if disabled: it is not scraped, and `collect[]` naming it gets
    /// `disabled collector`. The settings are made before any collector is built, so one
    /// check there (a device probe) decides for every row that shares it.
    pub const fn when(mut self, applies: fn(&C) -> bool) -> Self {
        self.when = Some(applies);
        self
    }

    /// The row as a plain [`CollectorSpec`] (name, default, help).
    pub const fn spec(&self) -> CollectorSpec {
        CollectorSpec {
            name: self.name,
            default_enabled: self.default_enabled,
            help: self.help,
        }
    }
}

type ParseFn = fn(&ArgMatches) -> Result<Arc<dyn Any + Send + Sync>, clap::Error>;

/// A collector's flags: a `clap::Args` struct, added to the command line and parsed once.
/// Made by [`flags`]. Several rows may name the same struct; it is added and parsed once.
#[derive(Clone, Copy)]
pub struct FlagGroup {
    augment: fn(Command) -> Command,
    parse: ParseFn,
    type_id: fn() -> TypeId,
    type_name: fn() -> &'static str,
}

impl std::fmt::Debug for FlagGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str((self.type_name)())
    }
}

fn parse_group<F>(m: &ArgMatches) -> Result<Arc<dyn Any + Send + Sync>, clap::Error>
where
    F: clap::FromArgMatches + Send + Sync + 'static,
{
    Ok(Arc::new(F::from_arg_matches(m)?))
}

/// The flag group of the `clap::Args` struct `F`. `F` should carry `#[group(skip)]` (clap
/// would otherwise add an argument group named after the struct, and two collectors' `Flags`
/// would clash) and give every argument an explicit `id` equal to its long name (ids are
/// global to the command line).
pub const fn flags<F>() -> FlagGroup
where
    F: clap::Args + Send + Sync + 'static,
{
    FlagGroup {
        augment: <F as clap::Args>::augment_args,
        parse: parse_group::<F>,
        type_id: TypeId::of::<F>,
        type_name: std::any::type_name::<F>,
    }
}

/// The parsed flags of every registered collector, looked up by type.
/// Also says which collectors the command line enabled ([`CollectorFlags::enabled`]), for
/// settings that depend on them (which sources a shared poller runs, what a shared device
/// set reads in the background).
#[derive(Clone, Default)]
pub struct CollectorFlags {
    groups: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
    enabled: Vec<&'static str>,
}

impl std::fmt::Debug for CollectorFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CollectorFlags({} groups, enabled {:?})",
            self.groups.len(),
            self.enabled
        )
    }
}

impl CollectorFlags {
    /// Parses every row's flag group, and which collectors are enabled, from `m` (a command
    /// made with [`augment`]).
    pub fn from_matches<C>(
        m: &ArgMatches,
        registry: &[Registration<C>],
    ) -> clap::error::Result<Self> {
        let mut out = Self {
            enabled: enabled(m, registry),
            ..Self::default()
        };
        for g in registry.iter().filter_map(|r| r.flags) {
            let id = (g.type_id)();
            if !out.groups.iter().any(|(t, _)| *t == id) {
                out.groups.push((id, (g.parse)(m)?));
            }
        }
        Ok(out)
    }

    /// The flags of type `F`; an error if no row registered them.
    pub fn get<F: Any>(&self) -> anyhow::Result<&F> {
        self.groups
            .iter()
            .find(|(t, _)| *t == TypeId::of::<F>())
            .and_then(|(_, v)| v.downcast_ref::<F>())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "flags {} are not registered (add .flags(flags::<..>()) to the collector's row)",
                    std::any::type_name::<F>()
                )
            })
    }

    /// The collectors enabled on the command line (`--collector.NAME`, `--no-collector.NAME`,
    /// `--collector.disable-defaults`), in table order: what [`Exporter::main`] builds.
    pub fn enabled(&self) -> &[&'static str] {
        &self.enabled
    }

    /// Whether collector `name` is enabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.contains(&name)
    }

    /// Sets the enabled collectors, for tests that build settings directly.
    pub fn set_enabled(&mut self, names: &[&'static str]) {
        self.enabled = names.to_vec();
    }

    /// Sets (or replaces) the flags of type `F`, for tests that build settings directly.
    pub fn set<F: Any + Send + Sync>(&mut self, value: F) {
        let id = TypeId::of::<F>();
        self.groups.retain(|(t, _)| *t != id);
        self.groups.push((id, Arc::new(value)));
    }
}

/// The rows as plain [`CollectorSpec`]s.
pub fn specs<C>(registry: &[Registration<C>]) -> Vec<CollectorSpec> {
    registry.iter().map(Registration::spec).collect()
}

/// Adds `--collector.NAME` / `--no-collector.NAME` for every row, `--collector.disable-defaults`
/// and every row's own flags (each group once) to `cmd`.
pub fn augment<C>(mut cmd: Command, registry: &[Registration<C>]) -> Command {
    cmd = crate::cli::with_collector_flags(cmd, &specs(registry));
    // A derived `Args` struct's doc comment would replace the command's description.
    let about = cmd.get_about().cloned();
    let long_about = cmd.get_long_about().cloned();
    let mut seen = Vec::new();
    for g in registry.iter().filter_map(|r| r.flags) {
        let id = (g.type_id)();
        if !seen.contains(&id) {
            seen.push(id);
            cmd = (g.augment)(cmd);
        }
    }
    cmd = match about {
        Some(a) => cmd.about(a),
        None => cmd.about(None::<&str>),
    };
    match long_about {
        Some(a) => cmd.long_about(a),
        None => cmd.long_about(None::<&str>),
    }
}

/// The enabled collectors' names, in table order.
pub fn enabled<C>(m: &ArgMatches, registry: &[Registration<C>]) -> Vec<&'static str> {
    crate::cli::enabled_collectors(m, &specs(registry))
}

/// Builds every collector named in `enabled` (unless its row's [`Registration::when`] says
/// it does not apply) and adds it to `scraper`, which also learns the names of all rows (so
/// that `collect[]` can tell a disabled collector from an unknown one).
pub fn build_into<C>(
    scraper: &mut Scraper,
    registry: &[Registration<C>],
    enabled: &[&str],
    cfg: &C,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    scraper.known_collectors(registry.iter().map(|r| r.name));
    for r in registry.iter().filter(|r| enabled.contains(&r.name)) {
        if r.when.is_some_and(|applies| !applies(cfg)) {
            continue;
        }
        let c = (r.build)(cfg).with_context(|| format!("collector {}", r.name))?;
        scraper.add(r.name, c);
    }
    Ok(())
}

/// Builds the row called `name` from `cfg`, enabled or not: for tests and benchmarks that
/// run one collector (the binary builds the enabled ones with [`build_into`]).
pub fn build_named<C>(
    registry: &[Registration<C>],
    name: &str,
    cfg: &C,
) -> anyhow::Result<Arc<dyn Collector>> {
    let row = registry
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| anyhow::anyhow!("unknown collector {name:?}"))?;
    (row.build)(cfg)
}

/// A flag of the exporter this one replaces that is accepted (so that existing unit files
/// keep working) but has no effect here; using it logs one warning.
#[derive(Debug, Clone, Copy)]
pub struct IgnoredFlag {
    /// The long name without dashes, e.g. `runtime.gomaxprocs`.
    pub long: &'static str,
    /// Whether it takes a value (`--long=VALUE`); otherwise a switch, accepted with its
    /// kingpin negation `--no-long` as well.
    pub takes_value: bool,
    /// Why it is ignored, for the warning and `--help`.
    pub why: &'static str,
}

impl IgnoredFlag {
    /// A switch (`--long`, `--no-long`).
    pub const fn switch(long: &'static str, why: &'static str) -> Self {
        Self {
            long,
            takes_value: false,
            why,
        }
    }

    /// A flag with a value (`--long=VALUE`, repeatable).
    pub const fn value(long: &'static str, why: &'static str) -> Self {
        Self {
            long,
            takes_value: true,
            why,
        }
    }
}

/// A collector of the replaced exporter that this one does not have: `--collector.NAME` and
/// `--no-collector.NAME` are accepted and ignored with one warning.
#[derive(Debug, Clone, Copy)]
pub struct IgnoredCollector {
    /// Collector name.
    pub name: &'static str,
    /// Why it is absent, for the warning.
    pub why: &'static str,
}

/// Prefix of the ids of ignored flags (their long names follow).
const IGNORED_ID: &str = "ignored:";
const IGNORED_HEADING: &str = "Accepted for compatibility, no effect here";

/// Adds the `ignored` flags and collectors to `cmd`, skipping any that `cmd` already defines
/// (so that once a collector or flag is implemented it is no longer ignored).
pub fn with_ignored(
    mut cmd: Command,
    ignored: &[IgnoredFlag],
    collectors: &[IgnoredCollector],
) -> Command {
    let defined: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let add = |cmd: Command, long: String, takes_value: bool, help: String, hide: bool| {
        if defined.contains(&long) || cmd.get_arguments().any(|a| a.get_long() == Some(&long)) {
            return cmd;
        }
        let arg = Arg::new(format!("{IGNORED_ID}{long}"))
            .long(long)
            .help(help)
            .hide(hide)
            .help_heading(IGNORED_HEADING);
        let arg = if takes_value {
            arg.action(ArgAction::Append)
                .value_name("VALUE")
                .num_args(1)
                .allow_hyphen_values(true)
        } else {
            arg.action(ArgAction::SetTrue)
        };
        cmd.arg(arg)
    };
    for f in ignored {
        cmd = add(
            cmd,
            f.long.to_string(),
            f.takes_value,
            format!("Ignored: {}", f.why),
            false,
        );
        if !f.takes_value {
            cmd = add(cmd, format!("no-{}", f.long), false, String::new(), true);
        }
    }
    for c in collectors {
        cmd = add(
            cmd,
            format!("collector.{}", c.name),
            false,
            format!("Ignored: no {} collector here ({})", c.name, c.why),
            false,
        );
        cmd = add(
            cmd,
            format!("no-collector.{}", c.name),
            false,
            String::new(),
            true,
        );
    }
    cmd
}

/// The long names of the ignored flags and collector switches that `cmd` (made with
/// [`with_ignored`]) accepts, without the hidden `--no-` negations: what a README lists.
pub fn ignored_in_command(cmd: &Command) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| a.get_id().as_str().starts_with(IGNORED_ID) && !a.is_hide_set())
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect()
}

/// One warning line per ignored flag or collector that `m` sets: `(flag, why)`, in
/// command-line order of the tables.
pub fn ignored_in_use(
    m: &ArgMatches,
    ignored: &[IgnoredFlag],
    collectors: &[IgnoredCollector],
) -> Vec<(String, &'static str)> {
    let used: BTreeSet<&str> = m
        .ids()
        .map(clap::Id::as_str)
        .filter(|id| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        .filter_map(|id| id.strip_prefix(IGNORED_ID))
        .collect();
    let mut out = Vec::new();
    for f in ignored {
        for long in [f.long.to_string(), format!("no-{}", f.long)] {
            if used.contains(long.as_str()) {
                out.push((format!("--{long}"), f.why));
            }
        }
    }
    for c in collectors {
        for long in [
            format!("collector.{}", c.name),
            format!("no-collector.{}", c.name),
        ] {
            if used.contains(long.as_str()) {
                out.push((format!("--{long}"), c.why));
            }
        }
    }
    out
}

/// A whole exporter described by its tables; [`Exporter::main`] runs it.
pub struct Exporter<C: 'static> {
    /// Who the exporter is.
    pub meta: crate::Meta,
    /// Its collectors.
    pub registry: &'static [Registration<C>],
    /// Flags of the exporter it replaces that are accepted and ignored.
    pub ignored_flags: &'static [IgnoredFlag],
    /// Collectors of the exporter it replaces that it does not have.
    pub ignored_collectors: &'static [IgnoredCollector],
}

impl<C: 'static> Exporter<C> {
    /// The complete command line: `A`'s flags (which flatten [`crate::KitArgs`]), the
    /// registry's, and the ignored ones.
    pub fn command<A: clap::CommandFactory>(&self) -> Command {
        let cmd = crate::base_command::<A>(self.meta);
        let cmd = augment(cmd, self.registry);
        let cmd = crate::cli::with_kingpin_negations(cmd);
        with_ignored(cmd, self.ignored_flags, self.ignored_collectors)
    }

    /// Parses the command line, sets up logging and the runtime, makes the settings with
    /// `config` (from `A` and the collectors' parsed flags), builds the enabled collectors
    /// into a [`Scraper`], hands it to `app` (to tune it and add routes) and serves the
    /// result until SIGTERM. Returns the process exit code.
    pub fn main<A>(
        self,
        config: impl FnOnce(A, CollectorFlags) -> anyhow::Result<C>,
        app: impl FnOnce(&C, Scraper) -> anyhow::Result<crate::App>,
    ) -> std::process::ExitCode
    where
        A: clap::Parser,
    {
        let m = self.command::<A>().get_matches();
        let flags = match CollectorFlags::from_matches(&m, self.registry) {
            Ok(f) => f,
            Err(e) => e.exit(),
        };
        let enabled = enabled(&m, self.registry);
        let warnings = ignored_in_use(&m, self.ignored_flags, self.ignored_collectors);
        let registry = self.registry;
        let namespace = self.meta.namespace;
        crate::run_parsed::<A, _>(self.meta, &m, enabled.clone(), move |args| {
            for (flag, why) in &warnings {
                tracing::warn!(flag = %flag, reason = why, "flag accepted for compatibility and ignored");
            }
            let cfg = config(args, flags)?;
            let mut scraper = Scraper::new(namespace);
            build_into(&mut scraper, registry, &enabled, &cfg)?;
            app(&cfg, scraper)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, MetricSet};

    struct Cfg {
        flags: CollectorFlags,
    }

    #[derive(Debug, Clone, clap::Args)]
    #[group(skip)]
    struct AFlags {
        #[arg(
            long = "collector.a.level",
            id = "collector.a.level",
            default_value_t = 3
        )]
        level: u32,
        #[arg(long = "collector.a.loud", id = "collector.a.loud")]
        loud: bool,
    }

    #[derive(Debug, Clone, clap::Args)]
    #[group(skip)]
    struct BFlags {
        #[arg(long = "collector.b.name", id = "collector.b.name")]
        name: Option<String>,
    }

    struct Level(u32);
    impl Collector for Level {
        fn collect(&self, _: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
            out.gauge("t_level", "Level.").sample(&[], self.0 as f64);
            Ok(())
        }
    }

    fn new_a(c: &Cfg) -> anyhow::Result<Arc<dyn Collector>> {
        Ok(Arc::new(Level(c.flags.get::<AFlags>()?.level)))
    }
    fn new_b(c: &Cfg) -> anyhow::Result<Arc<dyn Collector>> {
        let n = c.flags.get::<BFlags>()?.name.clone().unwrap_or_default();
        Ok(Arc::new(Level(n.len() as u32)))
    }
    fn new_c(_: &Cfg) -> anyhow::Result<Arc<dyn Collector>> {
        anyhow::bail!("no hardware")
    }

    const REG: &[Registration<Cfg>] = &[
        Registration::new("a", true, "A", new_a).flags(flags::<AFlags>()),
        Registration::new("b", false, "B", new_b).flags(flags::<BFlags>()),
        // Shares a's flags: added and parsed once.
        Registration::new("a2", false, "A again", new_a).flags(flags::<AFlags>()),
        Registration::new("c", false, "C", new_c),
    ];
    const IGN: &[IgnoredFlag] = &[
        IgnoredFlag::value("runtime.gomaxprocs", "no Go runtime"),
        IgnoredFlag::switch("web.systemd-socket", "not supported"),
        // Defined by a row already: not added twice, never reported.
        IgnoredFlag::value("collector.a.level", "shadowed"),
    ];
    const IGN_C: &[IgnoredCollector] = &[
        IgnoredCollector {
            name: "wifi",
            why: "not on HPC nodes",
        },
        IgnoredCollector {
            name: "b",
            why: "shadowed",
        },
    ];

    fn command() -> Command {
        let cmd = augment(Command::new("t"), REG);
        let cmd = crate::cli::with_kingpin_negations(cmd);
        with_ignored(cmd, IGN, IGN_C)
    }

    fn parse(args: &[&str]) -> ArgMatches {
        command()
            .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn command_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn flag_groups_keep_the_commands_description() {
        /// Flags with a doc comment, which clap would make the command's description.
        #[derive(Debug, Clone, clap::Args)]
        #[group(skip)]
        struct Documented {
            #[arg(long = "collector.d.x", id = "collector.d.x")]
            x: bool,
        }
        fn new_d(_: &Cfg) -> anyhow::Result<Arc<dyn Collector>> {
            anyhow::bail!("unused")
        }
        let reg = [Registration::new("d", true, "D", new_d).flags(flags::<Documented>())];
        let cmd = augment(Command::new("t").about("The exporter."), &reg);
        assert_eq!(
            cmd.get_about().map(|a| a.to_string()).as_deref(),
            Some("The exporter.")
        );
    }

    #[test]
    fn rows_make_flags_and_parsed_groups() {
        let m = parse(&[
            "--collector.b",
            "--collector.b.name=xyz",
            "--collector.a.level=7",
        ]);
        assert_eq!(enabled(&m, REG), ["a", "b"]);
        let cfg = Cfg {
            flags: CollectorFlags::from_matches(&m, REG).unwrap(),
        };
        assert_eq!(cfg.flags.get::<AFlags>().unwrap().level, 7);
        assert_eq!(
            cfg.flags.get::<BFlags>().unwrap().name.as_deref(),
            Some("xyz")
        );
        assert!(cfg.flags.get::<u8>().is_err());
        let mut s = Scraper::new("t");
        build_into(&mut s, REG, &enabled(&m, REG), &cfg).unwrap();
        assert_eq!(s.names(), ["a", "b"]);
    }

    #[test]
    fn collector_flags_know_the_enabled_collectors() {
        let m = parse(&["--collector.b", "--no-collector.a"]);
        let f = CollectorFlags::from_matches(&m, REG).unwrap();
        assert_eq!(f.enabled(), ["b"]);
        assert!(f.is_enabled("b") && !f.is_enabled("a"));
        let m = parse(&[]);
        assert_eq!(
            CollectorFlags::from_matches(&m, REG).unwrap().enabled(),
            ["a"]
        );
    }

    struct Host {
        has_device: bool,
    }
    fn new_dev(_: &Host) -> anyhow::Result<Arc<dyn Collector>> {
        Ok(Arc::new(Level(1)))
    }
    fn has_device(h: &Host) -> bool {
        h.has_device
    }
    const HOST_REG: &[Registration<Host>] = &[
        Registration::new("dev", true, "Device", new_dev).when(has_device),
        Registration::new("always", true, "Always", new_dev),
    ];

    #[test]
    fn rows_that_do_not_apply_are_skipped_as_disabled() {
        let enabled = ["dev", "always"];
        let mut s = Scraper::new("t");
        build_into(&mut s, HOST_REG, &enabled, &Host { has_device: false }).unwrap();
        assert_eq!(s.names(), ["always"]);
        let only = ["dev".to_string()].into();
        assert_eq!(
            s.check_filter(&only),
            Err("disabled collector: dev".to_string())
        );
        let mut s = Scraper::new("t");
        build_into(&mut s, HOST_REG, &enabled, &Host { has_device: true }).unwrap();
        assert_eq!(s.names(), ["dev", "always"]);
    }

    #[test]
    fn a_failing_constructor_names_its_collector() {
        let m = parse(&["--collector.c"]);
        let cfg = Cfg {
            flags: CollectorFlags::from_matches(&m, REG).unwrap(),
        };
        let mut s = Scraper::new("t");
        let e = build_into(&mut s, REG, &enabled(&m, REG), &cfg).unwrap_err();
        assert!(
            format!("{e:#}").contains("collector c: no hardware"),
            "{e:#}"
        );
    }

    #[test]
    fn one_row_is_built_by_name() {
        let mut cfg = Cfg {
            flags: CollectorFlags::default(),
        };
        cfg.flags.set(BFlags {
            name: Some("four".into()),
        });
        let c = build_named(REG, "b", &cfg).unwrap();
        let mut out = MetricSet::new();
        c.collect(
            &Context::with_timeout(std::time::Duration::from_secs(1)),
            &mut out,
        )
        .unwrap();
        assert_eq!(out.families()[0].samples[0].value, 4.0);
        let e = build_named(REG, "nonesuch", &cfg).err().unwrap();
        assert_eq!(e.to_string(), "unknown collector \"nonesuch\"");
        // A constructor that needs flags nobody set says so.
        assert!(build_named(REG, "a", &cfg).is_err());
    }

    #[test]
    fn ignored_flags_are_accepted_and_reported_once_each() {
        let m = parse(&[
            "--runtime.gomaxprocs=4",
            "--no-web.systemd-socket",
            "--collector.wifi",
            "--no-collector.a",
        ]);
        let used = ignored_in_use(&m, IGN, IGN_C);
        let flags: Vec<&str> = used.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            flags,
            [
                "--runtime.gomaxprocs",
                "--no-web.systemd-socket",
                "--collector.wifi"
            ]
        );
        assert!(enabled(&m, REG).is_empty());
        assert_eq!(
            ignored_in_command(&command()),
            ["runtime.gomaxprocs", "web.systemd-socket", "collector.wifi"]
        );
        // A real collector's flags are not reported as ignored.
        let m = parse(&["--collector.b", "--collector.a.level=1"]);
        assert!(ignored_in_use(&m, IGN, IGN_C).is_empty());
        assert_eq!(enabled(&m, REG), ["a", "b"]);
    }

    #[test]
    fn unknown_flags_are_still_errors() {
        let e = command()
            .try_get_matches_from(["t", "--collector.nonesuch"])
            .unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::UnknownArgument);
    }

    #[test]
    fn kingpin_negations_of_switches() {
        let m = parse(&["--collector.a.loud", "--no-collector.a.loud"]);
        let f = CollectorFlags::from_matches(&m, REG).unwrap();
        assert!(!f.get::<AFlags>().unwrap().loud);
        let m = parse(&["--no-collector.a.loud", "--collector.a.loud"]);
        let f = CollectorFlags::from_matches(&m, REG).unwrap();
        assert!(f.get::<AFlags>().unwrap().loud);
    }
}
