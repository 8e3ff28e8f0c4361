//! SQL text for three dialects: statements are written once with PostgreSQL's `$N`
//! placeholders (numbered in the order they appear, each used once) and rewritten to `?` for
//! MySQL/MariaDB and SQLite (SQLite looks named parameters up by a linear scan, which made
//! binding a multi-row statement quadratic); dynamic queries are assembled from fixed fragments by [`Sql`], and user
//! strings only ever travel as bound parameters.

use std::borrow::Cow;

/// Which SQL dialect a statement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Sqlite,
    Postgres,
    Mysql,
}

impl Dialect {
    /// The backend's name, as in `alert_bridge_build_info{backend}`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    /// `statement` with its placeholders in this dialect's syntax.
    pub fn sql(self, statement: &str) -> Cow<'_, str> {
        match self {
            Dialect::Postgres => Cow::Borrowed(statement),
            _ => Cow::Owned(question_marks(statement)),
        }
    }

    /// `ON CONFLICT (cols) DO NOTHING` or its MySQL spelling (a no-op update, so that real
    /// errors are not silenced the way `INSERT IGNORE` would).
    pub fn on_conflict_nothing(self, cols: &str, any_col: &str) -> String {
        match self {
            Dialect::Mysql => format!(" ON DUPLICATE KEY UPDATE {any_col} = {any_col}"),
            _ => format!(" ON CONFLICT ({cols}) DO NOTHING"),
        }
    }

    /// `ON CONFLICT (key) DO UPDATE SET c = excluded.c, …` or MySQL's
    /// `ON DUPLICATE KEY UPDATE c = VALUES(c), …`.
    pub fn on_conflict_update(self, key: &str, cols: &[&str]) -> String {
        match self {
            Dialect::Mysql => {
                let sets: Vec<String> = cols.iter().map(|c| format!("{c} = VALUES({c})")).collect();
                format!(" ON DUPLICATE KEY UPDATE {}", sets.join(", "))
            }
            _ => {
                let sets: Vec<String> =
                    cols.iter().map(|c| format!("{c} = excluded.{c}")).collect();
                format!(" ON CONFLICT ({key}) DO UPDATE SET {}", sets.join(", "))
            }
        }
    }

    /// A row lock on the rows a `SELECT` reads (SQLite's `BEGIN IMMEDIATE` already holds the
    /// database's write lock).
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            _ => " FOR UPDATE",
        }
    }
}

/// Rewrites `$N` placeholders outside string literals to `?`. The numbers must run 1, 2, 3…
/// in the order they appear (MySQL binds by position).
pub fn question_marks(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut in_str = false;
    let mut next = 1usize;
    let mut start = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\'' {
            in_str = !in_str;
        } else if !in_str && c == b'$' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let n: usize = s[i + 1..j].parse().unwrap_or(0);
            debug_assert_eq!(n, next, "placeholders out of order in {s}");
            next += 1;
            out.push_str(&s[start..i]);
            out.push('?');
            start = j;
            i = j;
            continue;
        }
        i += 1;
    }
    out.push_str(&s[start..]);
    out
}

/// A bind parameter of a dynamically built query.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// A set of ids, bound as one parameter (a JSON array): no parameter limit, however
    /// many there are.
    Ids(Vec<i64>),
}

/// A query under construction: its text and its parameters in order.
pub struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub params: Vec<Param>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Self {
            dialect,
            text: String::new(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder (`$N`; see [`Dialect::sql`]).
    pub fn p(&mut self, v: Param) -> String {
        self.params.push(v);
        format!("${}", self.params.len())
    }

    /// A subquery yielding the ids, as one parameter.
    pub fn id_set(&mut self, ids: Vec<i64>) -> String {
        let p = self.p(Param::Ids(ids));
        match self.dialect {
            Dialect::Postgres => {
                format!("(SELECT jsonb_array_elements_text({p}::jsonb)::bigint)")
            }
            Dialect::Sqlite => format!("(SELECT value FROM json_each({p}))"),
            Dialect::Mysql => format!(
                "(SELECT j.v FROM JSON_TABLE({p}, '$[*]' COLUMNS (v BIGINT PATH '$')) AS j)"
            ),
        }
    }

    /// A subquery yielding the strings, as one parameter (a JSON array).
    pub fn text_set(&mut self, items: &[String]) -> String {
        let json = serde_json::to_string(items).unwrap_or_else(|_| "[]".into());
        let p = self.p(Param::Text(json));
        match self.dialect {
            Dialect::Postgres => format!("(SELECT jsonb_array_elements_text({p}::jsonb))"),
            Dialect::Sqlite => format!("(SELECT value FROM json_each({p}))"),
            Dialect::Mysql => format!(
                "(SELECT j.v FROM JSON_TABLE({p}, '$[*]' COLUMNS (v VARCHAR(255) PATH '$')) AS j)"
            ),
        }
    }

    /// The final text in the dialect's placeholder syntax.
    pub fn finish(&self) -> Cow<'_, str> {
        self.dialect.sql(&self.text)
    }
}

/// Binds `Param`s to a `sqlx::query` of any of the three backends.
macro_rules! bind_params {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                $crate::storage::sql::Param::Int(i) => q.bind(*i),
                $crate::storage::sql::Param::Text(s) => q.bind(s.clone()),
                $crate::storage::sql::Param::Bytes(b) => q.bind(b.clone()),
                $crate::storage::sql::Param::Ids(ids) => {
                    q.bind(serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()))
                }
            };
        }
        q
    }};
}

pub(crate) use bind_params;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_question_marks_outside_literals() {
        assert_eq!(
            question_marks("SELECT '$1', $1, x FROM t WHERE a = $2 AND b LIKE '%$%' AND c = $3"),
            "SELECT '$1', ?, x FROM t WHERE a = ? AND b LIKE '%$%' AND c = ?"
        );
        assert_eq!(
            question_marks("JSON_TABLE($1, '$[*]' COLUMNS (v BIGINT PATH '$'))"),
            "JSON_TABLE(?, '$[*]' COLUMNS (v BIGINT PATH '$'))"
        );
    }

    #[test]
    #[should_panic(expected = "out of order")]
    fn placeholders_must_be_in_order() {
        question_marks("SELECT $2, $1");
    }

    #[test]
    fn conflict_clauses() {
        assert_eq!(
            Dialect::Mysql.on_conflict_update("id", &["a", "b"]),
            " ON DUPLICATE KEY UPDATE a = VALUES(a), b = VALUES(b)"
        );
        assert_eq!(
            Dialect::Sqlite.on_conflict_update("id", &["a"]),
            " ON CONFLICT (id) DO UPDATE SET a = excluded.a"
        );
    }
}
