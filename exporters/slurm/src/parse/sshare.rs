//! `sshare -a -h -P -o Account,User,RawShares,NormShares,RawUsage,EffectvUsage,FairShare`.

use super::{number, split_fields};

/// The `sshare -o` format (with `-P`: `|`-delimited).
pub const FORMAT: &str = "Account,User,RawShares,NormShares,RawUsage,EffectvUsage,FairShare";

/// One association (an account when `user` is `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    /// Account (leading tree indentation removed).
    pub account: String,
    /// User, for user associations.
    pub user: Option<String>,
    /// Raw shares (`None` for `parent`).
    pub raw_shares: Option<f64>,
    /// Normalised shares.
    pub norm_shares: Option<f64>,
    /// Raw usage.
    pub raw_usage: Option<f64>,
    /// Effective usage.
    pub effective_usage: Option<f64>,
    /// Fair-share factor.
    pub fairshare: Option<f64>,
}

/// Parses the output; unparsable lines are skipped.
pub fn parse(out: &str) -> Vec<Share> {
    out.lines()
        .filter_map(|line| {
            let f = split_fields::<7>(line)?;
            let account = f[0].trim();
            if account.is_empty() || account.contains('|') {
                return None;
            }
            Some(Share {
                account: account.to_string(),
                user: super::non_empty(f[1]).map(str::to_string),
                raw_shares: number(f[2]),
                norm_shares: number(f[3]),
                raw_usage: number(f[4]),
                effective_usage: number(f[5]),
                fairshare: number(f[6]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_users() {
        let out = "root||||3600|1.000000|\n root|root|1|0.500000|0|0.000000|1.000000\n physics||1|0.500000|3600|1.000000|\n  physics|alice|parent|0.500000|3600|1.000000|0.250000\nbroken line\n";
        let s = parse(out);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].account, "root");
        assert_eq!(s[0].user, None);
        assert_eq!(s[3].user.as_deref(), Some("alice"));
        assert_eq!(s[3].raw_shares, None);
        assert_eq!(s[3].fairshare, Some(0.25));
        assert!(parse("").is_empty());
    }
}
